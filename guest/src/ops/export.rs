//! The export in pages: the same rows as [`Service::export`] (teams first, then users, so the
//! output imports back as is), a bounded number per call, resumed from an opaque cursor.
//!
//! A cursor names the last id returned, not an offset: a page stays correct when resources are
//! created or deleted between calls (each resource is exported once, at its state when its page
//! is read), and resuming is a range scan rather than skipping over everything before it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::error::{ScimError, ScimResult};
use crate::model::resource_type::Kind;
use crate::ops::import::{user_row, Row};
use crate::ops::service::Service;
use crate::persist::members::Membership;
use crate::persist::repo::{Repo, Stored};

/// The most rows one page holds, whatever the caller asks: the guest builds a page in memory.
pub const MAX_PAGE: u32 = 1000;

/// One page of the export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    /// The rows of this page, in import order.
    pub rows: Vec<Row>,
    /// The cursor of the next page, `None` after the last.
    pub next: Option<String>,
}

/// Where a page starts: after an id of one phase, or at the start of the phase.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    Teams(Option<String>),
    Users(Option<String>),
}

/// Why an export call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the export cursor is not valid: pass the 'next' of the previous page, or none to start"
    )]
    /// The cursor is not one this export returned.
    BadCursor,
    #[error("the export page limit must be at least 1")]
    /// A page of zero rows was asked for.
    ZeroLimit,
}

impl From<ExportError> for ScimError {
    fn from(e: ExportError) -> Self {
        ScimError::invalid_value(e.to_string())
    }
}

impl Cursor {
    fn encode(&self) -> String {
        let (phase, after) = match self {
            Cursor::Teams(a) => ("t", a),
            Cursor::Users(a) => ("u", a),
        };
        match after {
            Some(id) => format!("{phase}/{id}"),
            None => phase.to_string(),
        }
    }

    fn decode(text: &str) -> Result<Cursor, ExportError> {
        let (phase, after) = match text.split_once('/') {
            Some((phase, id)) => (phase, Some(id)),
            None => (text, None),
        };
        // Ids are the guest's own (UUIDs); refusing anything else also keeps the scan's start
        // below its end, which a key with U+10FFFF or a control character could break.
        let id_ok = |id: &str| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        let after = match after {
            Some(id) if id_ok(id) => Some(id.to_string()),
            Some(_) => return Err(ExportError::BadCursor),
            None => None,
        };
        match phase {
            "t" => Ok(Cursor::Teams(after)),
            "u" => Ok(Cursor::Users(after)),
            _ => Err(ExportError::BadCursor),
        }
    }
}

fn display_name(doc: &Value) -> String {
    doc.get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Service<'_> {
    /// Up to `limit` export rows (at most [`MAX_PAGE`]) from `cursor` (`None`: the first page).
    pub fn export_page(&self, cursor: Option<&str>, limit: u32) -> ScimResult<ExportPage> {
        let cursor = cursor.map_or(Ok(Cursor::Teams(None)), Cursor::decode)?;
        if limit == 0 {
            return Err(ExportError::ZeroLimit.into());
        }
        let limit = limit.min(MAX_PAGE) as usize;
        let mut rows = Vec::new();
        let users_after = match cursor {
            Cursor::Teams(after) => {
                let groups = Repo::new(
                    self.store(),
                    Kind::Group,
                    self.schema(Kind::Group),
                    &self.base_url,
                );
                // One more than the page, to know whether teams remain without a second call.
                let mut page = groups.page_after(after.as_deref(), limit as u32 + 1)?;
                let more = page.len() > limit;
                page.truncate(limit);
                rows.extend(page.iter().map(|g| Row::Team {
                    name: display_name(&g.doc),
                }));
                if more {
                    let last = page.last().map(|g| g.id().to_string());
                    return Ok(ExportPage {
                        rows,
                        next: Some(Cursor::Teams(last).encode()),
                    });
                }
                None
            }
            Cursor::Users(after) => after,
        };
        let remaining = limit - rows.len();
        let users = Repo::new(
            self.store(),
            Kind::User,
            self.schema(Kind::User),
            &self.base_url,
        );
        let mut page = users.page_after(users_after.as_deref(), remaining as u32 + 1)?;
        let more = page.len() > remaining;
        page.truncate(remaining);
        let next = more.then(|| {
            let last = page.last().map(|u| u.id().to_string());
            Cursor::Users(last.or(users_after)).encode()
        });
        rows.extend(self.user_rows(&page)?);
        Ok(ExportPage { rows, next })
    }

    /// Rows for a page of users, with the names of just the teams these users are in.
    fn user_rows(&self, users: &[Stored]) -> ScimResult<Vec<Row>> {
        let m = Membership::new(self.store());
        let memberships: Vec<Vec<String>> = users
            .iter()
            .map(|u| m.groups_of(u.id()))
            .collect::<ScimResult<_>>()?;
        let ids: Vec<String> = memberships
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let groups = Repo::new(
            self.store(),
            Kind::Group,
            self.schema(Kind::Group),
            &self.base_url,
        );
        let names: BTreeMap<String, String> = groups
            .get_many(&ids)?
            .iter()
            .map(|g| (g.id().to_string(), display_name(&g.doc)))
            .collect();
        Ok(users
            .iter()
            .zip(memberships)
            .map(|(u, gids)| {
                // A membership edge to a team deleted meanwhile is skipped, as `export` does.
                let teams = gids.iter().filter_map(|g| names.get(g).cloned()).collect();
                Row::User(user_row(self, &u.doc, teams))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::import::Outcome;
    use crate::persist::store::MemStore;

    fn seeded(store: &MemStore) -> Service<'_> {
        let svc = Service::new(store, "", r#"{"profile":"writer"}"#).unwrap();
        let texts: Vec<String> = [
            r#"{"type":"team","name":"Sales"}"#,
            r#"{"type":"team","name":"Ops"}"#,
            r#"{"type":"user","userName":"ada@x.com","givenName":"Ada","email":"ada@x.com","role":"admin","teams":["Sales","Ops"]}"#,
            r#"{"type":"user","userName":"bob@x.com","active":false,"teams":["Ops"]}"#,
            r#"{"type":"user","userName":"cy@x.com","teams":["Legal"]}"#,
            r#"{"type":"user","userName":"di@x.com","externalId":"e-4"}"#,
        ]
        .map(String::from)
        .to_vec();
        let out = svc.import_texts(&texts).unwrap();
        assert!(out.iter().all(|o| *o == Outcome::Created), "{out:?}");
        svc
    }

    fn all_pages(svc: &Service<'_>, limit: u32) -> Vec<Vec<Row>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = svc.export_page(cursor.as_deref(), limit).unwrap();
            assert!(page.rows.len() <= limit as usize);
            pages.push(page.rows);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn small_pages_give_exactly_the_rows_of_one_big_page() {
        let store = MemStore::new();
        let svc = seeded(&store);
        let mut whole = Vec::new();
        svc.export(|r| {
            whole.push(r);
            Ok(())
        })
        .unwrap();
        // Sales, Ops, Legal (created by cy's row), then 4 users.
        assert_eq!(whole.len(), 7);
        let big = all_pages(&svc, 1000);
        assert_eq!(big, [whole.clone()], "one big page is the whole export");
        for limit in 1..=8 {
            let pages = all_pages(&svc, limit);
            assert_eq!(pages.concat(), whole, "limit {limit}");
            let full = pages.iter().filter(|p| p.len() == limit as usize).count();
            assert!(
                full >= pages.len() - 1,
                "limit {limit}: only the last page is short"
            );
        }
        // Three teams: a page of three ends exactly at the boundary, the next holds the users.
        let first = svc.export_page(None, 3).unwrap();
        assert_eq!(first.rows.len(), 3);
        assert!(first.rows.iter().all(|r| matches!(r, Row::Team { .. })));
        let second = svc.export_page(first.next.as_deref(), 4).unwrap();
        assert!(second.rows.iter().all(|r| matches!(r, Row::User(_))));
        assert_eq!((second.rows.len(), second.next), (4, None));
    }

    #[test]
    fn paged_rows_import_back_as_is() {
        let store = MemStore::new();
        let svc = seeded(&store);
        let texts: Vec<String> = all_pages(&svc, 3)
            .concat()
            .iter()
            .map(|r| r.to_json().to_string())
            .collect();
        let again = svc.import_texts(&texts).unwrap();
        assert!(again.iter().all(|o| *o == Outcome::Unchanged), "{again:?}");
        let fresh = MemStore::new();
        let copy = Service::new(&fresh, "", r#"{"profile":"writer"}"#).unwrap();
        let out = copy.import_texts(&texts).unwrap();
        assert!(out.iter().all(|o| *o == Outcome::Created), "{out:?}");
        assert_eq!(all_pages(&copy, 1000), all_pages(&svc, 1000));
    }

    #[test]
    fn empty_and_teams_only_tenants_end_after_one_page() {
        let store = MemStore::new();
        let svc = Service::new(&store, "", "").unwrap();
        assert_eq!(
            svc.export_page(None, 10).unwrap(),
            ExportPage {
                rows: vec![],
                next: None
            }
        );
        crate::ops::teams::create(&svc, "Sales").unwrap();
        let page = svc.export_page(None, 1).unwrap();
        assert_eq!((page.rows.len(), page.next), (1, None));
    }

    #[test]
    fn a_cursor_survives_the_deletion_of_its_resource() {
        let store = MemStore::new();
        let svc = seeded(&store);
        let whole = all_pages(&svc, 1000).concat();
        let page = svc.export_page(None, 4).unwrap();
        let Some(Row::User(ada)) = page.rows.last() else {
            panic!("the fourth row is the first user");
        };
        let index = Kind::User.index("userName").unwrap();
        let users = Repo::new(
            svc.store(),
            Kind::User,
            svc.schema(Kind::User),
            &svc.base_url,
        );
        let id = users.lookup(index, &ada.user_name).unwrap().remove(0);
        svc.delete(Kind::User, &id, None).unwrap();
        let rest = svc.export_page(page.next.as_deref(), 1000).unwrap();
        assert_eq!(rest.rows, whole[4..]);
    }

    #[test]
    fn bad_cursors_and_limits_are_invalid_value_errors() {
        let store = MemStore::new();
        let svc = seeded(&store);
        for cursor in [
            "",
            "x",
            "t/",
            "u/",
            "x/abc",
            "t/a/b",
            "u/a\nb",
            "u/\u{10FFFF}",
            "teams",
            "T/abc",
        ] {
            let err = svc.export_page(Some(cursor), 10).unwrap_err();
            assert_eq!(
                (err.status, err.scim_type),
                (400, Some(crate::model::error::ScimType::InvalidValue)),
                "{cursor:?}"
            );
            assert!(err.detail.contains("cursor"), "{}", err.detail);
        }
        let err = svc.export_page(None, 0).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.detail.contains("limit"), "{}", err.detail);
        // A well-formed cursor past every id is simply the end.
        let end = svc.export_page(Some("u/zzzz"), 10).unwrap();
        assert_eq!((end.rows.len(), end.next), (0, None));
    }

    #[test]
    fn limits_above_the_maximum_are_lowered() {
        let store = MemStore::new();
        let svc = Service::new(&store, "", "").unwrap();
        let texts: Vec<String> = (0..MAX_PAGE + 5)
            .map(|i| format!(r#"{{"type":"team","name":"T{i}"}}"#))
            .collect();
        svc.import_texts(&texts).unwrap();
        let first = svc.export_page(None, u32::MAX).unwrap();
        assert_eq!(first.rows.len(), MAX_PAGE as usize);
        let rest = svc.export_page(first.next.as_deref(), u32::MAX).unwrap();
        assert_eq!((rest.rows.len(), rest.next), (5, None));
    }
}
