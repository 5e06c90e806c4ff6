//! Group membership as edges: one key per (group, member) and its reverse, never an array that
//! is rewritten on each change. Adding one member to a 100 000-member group writes four small
//! keys; two requests adding different members never conflict.
//!
//! Keys ([`crate::persist::keys`]):
//! - `m/{group}/{user}` and `g/{user}/{group}`: the edge and its reverse (empty values);
//! - `s/Group/{group}`: the group's membership stamp (`lastModified`), rewritten by every
//!   membership change; its store version is part of the group's ETag, and whole-membership
//!   operations (replace, delete) check it so they never miss a concurrent change;
//! - `s/User/{user}`: the user's membership stamp, which user deletion checks for the same reason.
//!
//! A member's `display` (RFC 7643 §2.4: "A human-readable name, primarily used for display
//! purposes"; read-only in the published schema) is the user's `displayName`, else its
//! `userName`. It is looked up when members are read, never stored on the edge: a stored copy
//! would go stale when the user is renamed unless every rename rewrote the user's edge in each
//! of its groups (O(groups) writes per rename, and a new way for two writes to conflict), while
//! the lookup keeps an add at the same four keys and is always current. It costs one point read
//! per member shown, batched with the edge scan ([`Membership::for_each_member`]), and only when
//! the response keeps `display`: `excludedAttributes=members`, `attributes=displayName` or
//! `attributes=members.value` read no user at all.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::model::clock;
use crate::model::error::ScimResult;
use crate::model::resource_type::Kind;
use crate::model::schema::AttrPath;
use crate::persist::keys::{self, edge, group_stamp, members_prefix, reverse};
use crate::persist::store::{Entry, Scan, Store, Write};
use crate::rules::resource::Projection;

/// Writes that add or remove one edge (both directions).
pub fn link(group: &str, user: &str) -> [Write; 2] {
    [
        Write::Put(edge(group, user), Vec::new()),
        Write::Put(reverse(user, group), Vec::new()),
    ]
}

pub fn unlink(group: &str, user: &str) -> [Write; 2] {
    [
        Write::Delete(edge(group, user)),
        Write::Delete(reverse(user, group)),
    ]
}

/// A stamp write: the time of the change; its version comes from the commit.
pub fn stamp(key: String) -> Write {
    Write::Put(key, stamp_value())
}

/// The value of a stamp written now (one for all the stamps of a commit).
pub fn stamp_value() -> Vec<u8> {
    let body = json!({"lastModified": clock::rfc3339(clock::now_millis())});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `lastModified` a stamp carries.
pub fn stamp_time(entry: &Entry) -> Option<String> {
    let v: Value = serde_json::from_slice(&entry.value).ok()?;
    v.get("lastModified")?.as_str().map(str::to_string)
}

/// Reads of the membership graph.
pub struct Membership<'a> {
    /// The tenant's store.
    pub store: &'a dyn Store,
}

impl<'a> Membership<'a> {
    /// Reads membership from this store.
    pub fn new(store: &'a dyn Store) -> Self {
        Membership { store }
    }

    fn ids_under(&self, prefix: &str) -> ScimResult<Vec<String>> {
        let entries = self.store.scan(&Scan::prefix(prefix).keys_only())?;
        Ok(entries
            .into_iter()
            .filter_map(|e| e.key.strip_prefix(prefix).map(str::to_string))
            .collect())
    }

    /// Every member id of a group, in key order.
    pub fn members(&self, group: &str) -> ScimResult<Vec<String>> {
        self.ids_under(&members_prefix(group))
    }

    /// Calls `visit` with every member of a group, in key order, as the `members` value
    /// `fields` keeps (`$ref` under `base_url`). The edges are read in pages so that a large
    /// group is never held in memory as a whole; `display` costs one batched read per page.
    pub fn for_each_member(
        &self,
        group: &str,
        fields: MemberFields,
        base_url: &str,
        mut visit: impl FnMut(Value),
    ) -> ScimResult<()> {
        const BATCH: u32 = 2000;
        let mut after: Option<String> = None;
        loop {
            let ids = self.page(group, after.as_deref(), BATCH)?;
            for item in self.items(&ids, fields, base_url)? {
                visit(item);
            }
            match ids.last() {
                Some(last) if ids.len() == BATCH as usize => after = Some(last.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// Up to `limit` member ids of a group in key order, after `after` (from the first when
    /// `None`): one keys-only scan.
    pub fn page(&self, group: &str, after: Option<&str>, limit: u32) -> ScimResult<Vec<String>> {
        let prefix = members_prefix(group);
        let start = match after {
            // The smallest key greater than the last edge read.
            Some(id) => format!("{prefix}{id}\u{0}"),
            None => prefix.clone(),
        };
        let scan = Scan {
            start,
            end: crate::persist::store::prefix_end(&prefix),
            skip: 0,
            limit,
            descending: false,
            keys_only: true,
        };
        Ok(self
            .store
            .scan(&scan)?
            .into_iter()
            .filter_map(|e| e.key.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// The `members` values of these users, as `fields` keeps them; `display` costs one
    /// batched read of the users.
    pub fn items(
        &self,
        ids: &[String],
        fields: MemberFields,
        base_url: &str,
    ) -> ScimResult<Vec<Value>> {
        let displays = if fields.display {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            self.displays(&ids)?
        } else {
            vec![None; ids.len()]
        };
        Ok(ids
            .iter()
            .zip(displays)
            .map(|(id, display)| fields.item(id, display, base_url))
            .collect())
    }

    /// Each user's `displayName`, else its `userName` (`None` for a user that is gone).
    fn displays(&self, users: &[&str]) -> ScimResult<Vec<Option<String>>> {
        /// Only the two names: the rest of the document is skipped unparsed.
        #[derive(Deserialize)]
        struct Names {
            #[serde(rename = "displayName")]
            display_name: Option<String>,
            #[serde(rename = "userName")]
            user_name: Option<String>,
        }
        const LOOKUP: usize = 500;
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(LOOKUP) {
            let keys: Vec<String> = chunk.iter().map(|u| Kind::User.resource_key(u)).collect();
            for entry in self.store.get_many(&keys)? {
                let names = entry.and_then(|e| serde_json::from_slice::<Names>(&e.value).ok());
                out.push(names.and_then(|n| {
                    let shown = n.display_name.filter(|d| !d.is_empty());
                    shown.or(n.user_name)
                }));
            }
        }
        Ok(out)
    }

    /// Every group id a user belongs to.
    pub fn groups_of(&self, user: &str) -> ScimResult<Vec<String>> {
        self.ids_under(&keys::groups_prefix(user))
    }

    /// Whether each user is a member, without reading the rest of the group.
    pub fn contains(&self, group: &str, users: &[String]) -> ScimResult<Vec<bool>> {
        let keys: Vec<String> = users.iter().map(|u| keys::edge(group, u)).collect();
        Ok(self
            .store
            .get_many(&keys)?
            .into_iter()
            .map(|e| e.is_some())
            .collect())
    }

    /// How many members a group has (a key-only scan of its edges).
    pub fn count(&self, group: &str) -> ScimResult<u64> {
        let prefix = members_prefix(group);
        Ok(self
            .store
            .count(&prefix, &crate::persist::store::prefix_end(&prefix))?)
    }

    /// Whether the group has more than `n` members, reading at most one edge past the first
    /// `n` instead of counting them all (a count is O(members) in the store).
    pub fn more_than(&self, group: &str, n: u64) -> ScimResult<bool> {
        let prefix = members_prefix(group);
        let probe = Scan {
            start: prefix.clone(),
            end: crate::persist::store::prefix_end(&prefix),
            skip: n,
            limit: 1,
            descending: false,
            keys_only: true,
        };
        Ok(!self.store.scan(&probe)?.is_empty())
    }

    /// The group's membership stamp, if it ever had a member.
    pub fn stamp(&self, group: &str) -> ScimResult<Option<Entry>> {
        Ok(self.store.get(&group_stamp(group))?)
    }
}

/// Which sub-attributes of `members` a response keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberFields {
    pub value: bool,
    pub reference: bool,
    pub kind: bool,
    pub display: bool,
}

impl MemberFields {
    pub const ALL: MemberFields = MemberFields {
        value: true,
        reference: true,
        kind: true,
        display: true,
    };

    /// The sub-attributes a projection keeps (`attributes=members.value`,
    /// `excludedAttributes=members.display`, …).
    pub fn of(proj: &Projection) -> MemberFields {
        let (picked, dropped) = (member_subs(&proj.attributes), member_subs(&proj.excluded));
        let names = |s: &Option<&str>, sub: &str| s.is_some_and(|s| s.eq_ignore_ascii_case(sub));
        let keep = |sub: &str| {
            let kept = picked.is_empty() || picked.iter().any(|p| p.is_none() || names(p, sub));
            kept && !dropped.iter().any(|d| names(d, sub))
        };
        MemberFields {
            value: keep("value"),
            reference: keep("$ref"),
            kind: keep("type"),
            display: keep("display"),
        }
    }

    /// One member as a `members` value.
    fn item(&self, uid: &str, display: Option<String>, base_url: &str) -> Value {
        let mut item = Map::new();
        if self.value {
            item.insert("value".into(), uid.into());
        }
        if self.reference {
            item.insert("$ref".into(), format!("{base_url}/Users/{uid}").into());
        }
        if let Some(d) = display {
            item.insert("display".into(), d.into());
        }
        if self.kind {
            item.insert("type".into(), "User".into());
        }
        Value::Object(item)
    }
}

/// The sub-attribute each `members` path names (`None`: all of `members`).
fn member_subs(paths: &[AttrPath]) -> Vec<Option<&str>> {
    paths
        .iter()
        .filter(|p| p.name.eq_ignore_ascii_case("members"))
        .map(|p| p.sub.as_deref())
        .collect()
}
