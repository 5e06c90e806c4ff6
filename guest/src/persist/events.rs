//! Change events: what each commit tells the product (WIT `store.event`). Every commit that
//! changes a user, a team or a membership carries its events, and the host stores them in the
//! same transaction as the writes, so an event can be neither lost nor invented: a commit that
//! conflicts and is retried is planned again and its events with it.
//!
//! The events are derived here, in one place, from what the commit does rather than from what
//! the request asked: the document a commit replaces and the one it writes
//! ([`resource`]), and the membership edges it puts or deletes ([`memberships`]). The callers
//! guarantee that an edge put is a new edge and an edge delete an existing one (their checks
//! make the commit conflict otherwise), so each edge write is exactly one membership change.
//!
//! Payloads are the resources as SCIM renders them (RFC 7643 §3; `meta.location` included,
//! attributes `returned: never` such as `password` left out); groups are shown without members.
//! An update lists each changed attribute path with its previous value (`previous`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::model::error::ScimResult;
use crate::model::resource_type::Kind;
use crate::model::schema::ResourceSchema;
use crate::persist::keys::{self, INTERNAL};
use crate::persist::store::{Event, EventKind, Store, Write};
use crate::rules::resource::{self, Projection};

/// Whether a team is linked to an identity-provider group (internal state; teams created
/// before the state existed count as linked).
pub fn is_linked(doc: &Value) -> bool {
    doc.get(INTERNAL)
        .and_then(|i| i.get("linked"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// Whether a user may sign in: `active` absent counts as active (RFC 7643 §4.1.1 leaves its
/// default to the service provider; this one treats an unstated user as active).
fn is_active(doc: &Value) -> bool {
    doc.get("active").and_then(Value::as_bool) != Some(false)
}

/// The event of one resource's change from `before` to `after` (`None`: absent), or `None`
/// when nothing a consumer sees changed.
pub fn resource(
    kind: Kind,
    rs: &ResourceSchema,
    base_url: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Option<Event> {
    let render = |d: &Value| resource::render(d, rs, &Projection::default(), base_url);
    let (event_kind, shown, previous) = match (before, after) {
        (None, None) => return None,
        (None, Some(a)) => (created(kind), render(a), None),
        (Some(b), None) => (deleted(kind), render(b), None),
        (Some(b), Some(a)) => {
            let (shown_before, shown) = (render(b), render(a));
            let previous = changed_paths(&shown_before, &shown);
            let event_kind = match kind {
                Kind::User if is_active(b) && !is_active(a) => EventKind::UserDeactivated,
                Kind::User if !is_active(b) && is_active(a) => EventKind::UserReactivated,
                Kind::Group if !is_linked(b) && is_linked(a) => EventKind::GroupLinked,
                Kind::Group if is_linked(b) && !is_linked(a) => EventKind::GroupUnlinked,
                _ if previous.is_empty() => return None,
                Kind::User => EventKind::UserUpdated,
                _ => EventKind::GroupUpdated,
            };
            (event_kind, shown, Some(Value::Object(previous).to_string()))
        }
    };
    Some(Event {
        kind: event_kind,
        data: shown.to_string(),
        previous,
    })
}

fn created(kind: Kind) -> EventKind {
    match kind {
        Kind::User => EventKind::UserCreated,
        _ => EventKind::GroupCreated,
    }
}

fn deleted(kind: Kind) -> EventKind {
    match kind {
        Kind::User => EventKind::UserDeleted,
        _ => EventKind::GroupDeleted,
    }
}

/// Each attribute path whose rendered value differs, with its previous value (`null` where it
/// was absent). Complex attributes are compared by sub-attribute (`name.givenName`), extension
/// attributes under their schema URN (`urn:…:User:department`); multi-valued attributes as a
/// whole (`emails`).
fn changed_paths(before: &Value, after: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    diff_into(&mut out, "", before, after, true);
    out
}

fn diff_into(out: &mut Map<String, Value>, prefix: &str, before: &Value, after: &Value, top: bool) {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if top && matches!(name.as_str(), "id" | "meta" | "schemas") {
            continue;
        }
        let (old, new) = (b.get(name), a.get(name));
        if old == new {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else if top {
            format!("{prefix}:{name}")
        } else {
            format!("{prefix}.{name}")
        };
        let extension = top && name.starts_with("urn:");
        match (old, new) {
            (Some(o @ Value::Object(_)), Some(n @ Value::Object(_))) if extension => {
                // An extension's attributes are top-level attributes of their own schema.
                let mut inner = Map::new();
                diff_into(&mut inner, "", o, n, false);
                for (k, v) in inner {
                    out.insert(format!("{name}:{k}"), v);
                }
            }
            (Some(o @ Value::Object(_)), Some(n @ Value::Object(_))) if prefix.is_empty() => {
                diff_into(out, &path, o, n, false);
            }
            (Some(o @ Value::Object(_)), None) if extension => {
                for (k, v) in o.as_object().into_iter().flatten() {
                    out.insert(format!("{name}:{k}"), v.clone());
                }
            }
            (None, Some(Value::Object(n))) if extension => {
                for k in n.keys() {
                    out.insert(format!("{name}:{k}"), Value::Null);
                }
            }
            _ => {
                out.insert(path, old.cloned().unwrap_or(Value::Null));
            }
        }
    }
}

/// A group as member events show it: its id, `displayName` and `externalId`.
fn group_ref(doc: &Value) -> Value {
    let mut out = Map::new();
    for k in ["id", "displayName", "externalId"] {
        if let Some(v) = doc.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// One event per membership edge the commit adds or removes, in write order. Groups named
/// in `known` (documents the commit writes or deletes) are shown as given; others are read.
pub fn memberships(
    store: &dyn Store,
    writes: &[Write],
    known: &[&Value],
) -> ScimResult<Vec<Event>> {
    let changes: Vec<(EventKind, &str, &str)> = writes
        .iter()
        .filter_map(|w| {
            let (kind, key) = match w {
                Write::Put(k, _) => (EventKind::GroupMemberAdded, k),
                Write::Delete(k) => (EventKind::GroupMemberRemoved, k),
            };
            let (g, u) = keys::split_edge(key)?;
            Some((kind, g, u))
        })
        .collect();
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut groups: BTreeMap<&str, String> = known
        .iter()
        .filter_map(|d| Some((d.get("id")?.as_str()?, group_ref(d).to_string())))
        .collect();
    let mut missing: Vec<&str> = changes
        .iter()
        .map(|(_, g, _)| *g)
        .filter(|g| !groups.contains_key(g))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let keys: Vec<String> = missing
            .iter()
            .map(|g| Kind::Group.resource_key(g))
            .collect();
        for (g, entry) in missing.iter().zip(store.get_many(&keys)?) {
            let doc = entry
                .and_then(|e| serde_json::from_slice::<Value>(&e.value).ok())
                .unwrap_or_else(|| json!({"id": g}));
            groups.insert(g, group_ref(&doc).to_string());
        }
    }
    Ok(changes
        .into_iter()
        .map(|(kind, g, u)| Event {
            kind,
            // Built as text: a 100 000-member replacement makes as many events.
            data: format!(
                "{{\"group\":{},\"user\":{{\"id\":{}}}}}",
                groups[g],
                Value::from(u)
            ),
            previous: None,
        })
        .collect())
}

/// A commit's events in the order a consumer applies them: a deletion's memberships go before
/// it, a creation's after it.
pub fn ordered(resource: Option<Event>, members: Vec<Event>) -> Vec<Event> {
    let Some(r) = resource else {
        return members;
    };
    let mut out = Vec::with_capacity(members.len() + 1);
    if matches!(r.kind, EventKind::UserDeleted | EventKind::GroupDeleted) {
        out.extend(members);
        out.push(r);
    } else {
        out.push(r);
        out.extend(members);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_name_sub_and_extension_attributes() {
        let before = json!({
            "id": "1", "meta": {"version": "W/\"1\""},
            "userName": "ada", "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"value": "a@x"}],
            "urn:ext:User": {"department": "R&D"}
        });
        let after = json!({
            "id": "1", "meta": {"version": "W/\"2\""},
            "userName": "ada", "name": {"givenName": "Augusta", "familyName": "L"},
            "emails": [{"value": "b@x"}], "title": "Countess",
            "urn:ext:User": {"department": "Math"}
        });
        let p = changed_paths(&before, &after);
        assert_eq!(
            Value::Object(p),
            json!({
                "name.givenName": "Ada",
                "emails": [{"value": "a@x"}],
                "title": null,
                "urn:ext:User:department": "R&D"
            })
        );
    }
}
