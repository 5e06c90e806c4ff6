//! Verification of one tenant's store invariants (`scimlet check`).
//!
//! The writer keeps resources, their secondary indexes, membership edges and stamps in step by
//! committing them together; this module re-derives every index key from the stored documents
//! with the very definitions the writer uses ([`Kind::indexes`], [`IndexDef::key`]) and compares
//! both ways, then walks the membership graph and the stamps. It only reads.
//!
//! The reads are not one snapshot: run it on a quiet store (or confirm a finding with a second
//! pass), since a commit between two scans can look like a problem.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde_json::Value;

use crate::model::policy::Policy;
use crate::model::resource_type::Kind;
use crate::persist::keys;
use crate::persist::keys::{IndexDef, SEP};
use crate::persist::store::{prefix_end, Entry, Scan, Store, StoreError};

/// One invariant that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An index entry whose resource is gone or no longer has that value.
    DanglingIndex {
        /// The offending key.
        key: String,
        /// Why no resource calls for it.
        reason: String,
    },
    /// A resource's indexed value without its index entry (or with one naming another resource).
    MissingIndex {
        /// The resource (`User {id}`).
        resource: String,
        /// The indexed attribute.
        attr: &'static str,
        /// The value, as indexed.
        value: String,
        /// The index key that should exist.
        key: String,
        /// The id the unique entry names instead, if any.
        owner: Option<String>,
    },
    /// A membership edge without its reverse (or a reverse without its edge).
    HalfEdge {
        /// The key that exists.
        key: String,
        /// The key that should exist with it.
        reverse: String,
    },
    /// A membership edge whose group or user does not exist.
    EdgeToMissing {
        /// The edge key.
        key: String,
        /// The missing end (`Group {id}`).
        resource: String,
    },
    /// A membership stamp whose resource does not exist.
    OrphanStamp {
        /// The stamp key.
        key: String,
    },
    /// A key or document that cannot be interpreted.
    Malformed {
        /// The offending key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tenant's policy does not parse.
    Policy(String),
    /// The store failed, so the check is incomplete.
    Store(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::DanglingIndex { key, reason } => {
                write!(f, "index entry {}: {reason}", show(key))
            }
            Problem::MissingIndex {
                resource,
                attr,
                value,
                key,
                owner: None,
            } => write!(
                f,
                "{resource} has {attr} {value:?} but its index entry {} is missing",
                show(key)
            ),
            Problem::MissingIndex {
                resource,
                attr,
                value,
                key,
                owner: Some(other),
            } => write!(
                f,
                "{resource} has {attr} {value:?} but index entry {} names {other}",
                show(key)
            ),
            Problem::HalfEdge { key, reverse } => write!(
                f,
                "membership key {} has no reverse {}",
                show(key),
                show(reverse)
            ),
            Problem::EdgeToMissing { key, resource } => write!(
                f,
                "membership key {} names {resource}, which does not exist",
                show(key)
            ),
            Problem::OrphanStamp { key } => {
                write!(f, "stamp {} belongs to no existing resource", show(key))
            }
            Problem::Malformed { key, reason } => write!(f, "{}: {reason}", show(key)),
            Problem::Policy(why) => write!(f, "tenant policy: {why}"),
            Problem::Store(why) => write!(f, "store failed, check incomplete: {why}"),
        }
    }
}

/// A key as text a terminal shows unambiguously (the index separator is a control character).
fn show(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Every invariant of one tenant's store that does not hold; empty when the store is sound.
pub fn verify(store: &dyn Store, policy_json: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(e) = Policy::from_json(policy_json) {
        problems.push(Problem::Policy(e.detail));
    }
    if let Err(e) = Checker::new(store).run(&mut problems) {
        problems.push(Problem::Store(e.to_string()));
    }
    problems
}

/// [`verify`]'s problems in words, as operators read them.
pub fn report(store: &dyn Store, policy_json: &str) -> Vec<String> {
    verify(store, policy_json)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Reads every key under `prefix` in batches, so that a large tenant is never one huge read.
fn scan_all(
    store: &dyn Store,
    prefix: &str,
    keys_only: bool,
    mut visit: impl FnMut(Entry),
) -> Result<(), StoreError> {
    const BATCH: u32 = 1000;
    let mut start = prefix.to_string();
    loop {
        let scan = Scan {
            start: start.clone(),
            end: prefix_end(prefix),
            skip: 0,
            limit: BATCH,
            descending: false,
            keys_only,
        };
        let batch = store.scan(&scan)?;
        let done = batch.len() < BATCH as usize;
        if let Some(last) = batch.last() {
            start = format!("{}\u{0}", last.key);
        }
        batch.into_iter().for_each(&mut visit);
        if done {
            return Ok(());
        }
    }
}

/// The index entry a resource needs.
struct Wanted {
    kind: Kind,
    id: String,
    attr: &'static str,
    value: String,
}

struct Checker<'a> {
    store: &'a dyn Store,
    /// Existing resource ids per type.
    ids: HashMap<&'static str, BTreeSet<String>>,
    /// Every index key the documents call for.
    wanted: BTreeMap<String, Wanted>,
}

impl<'a> Checker<'a> {
    fn new(store: &'a dyn Store) -> Self {
        Checker {
            store,
            ids: HashMap::new(),
            wanted: BTreeMap::new(),
        }
    }

    fn run(mut self, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
        for kind in Kind::ALL {
            self.resources(kind, problems)?;
        }
        self.indexes(problems)?;
        self.edges(problems)?;
        self.stamps(problems)
    }

    fn exists(&self, kind: Kind, id: &str) -> bool {
        self.ids.get(kind.name()).is_some_and(|s| s.contains(id))
    }

    /// Reads every resource of a type and records the index entries it needs.
    fn resources(&mut self, kind: Kind, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
        let prefix = kind.resource_prefix();
        let mut docs = Vec::new();
        scan_all(self.store, &prefix, false, |e| docs.push(e))?;
        for entry in docs {
            let id = entry.key[prefix.len()..].to_string();
            let doc: Value = match serde_json::from_slice(&entry.value) {
                Ok(doc) => doc,
                Err(e) => {
                    problems.push(Problem::Malformed {
                        key: entry.key,
                        reason: format!("stored document is not JSON: {e}"),
                    });
                    continue;
                }
            };
            if doc.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                problems.push(Problem::Malformed {
                    key: entry.key.clone(),
                    reason: format!("stored document has id {}", doc["id"]),
                });
            }
            for index in kind.indexes() {
                for value in index.normalized_values(&doc) {
                    self.want(kind, &id, index, value, problems);
                }
            }
            self.ids.entry(kind.name()).or_default().insert(id);
        }
        Ok(())
    }

    fn want(
        &mut self,
        kind: Kind,
        id: &str,
        index: &'static IndexDef,
        value: String,
        problems: &mut Vec<Problem>,
    ) {
        let key = index.key(kind, id, &value);
        if let Some(first) = self.wanted.get(&key) {
            // Two resources share a unique value: the entry can name only one of them.
            problems.push(Problem::Malformed {
                key: kind.resource_key(id),
                reason: format!(
                    "{} {:?} is also held by {} {}, but it must be unique",
                    index.attr,
                    value,
                    kind.name(),
                    first.id
                ),
            });
            return;
        }
        let wanted = Wanted {
            kind,
            id: id.to_string(),
            attr: index.attr,
            value,
        };
        self.wanted.insert(key, wanted);
    }

    /// Compares the stored index entries with the wanted ones, both ways.
    fn indexes(&mut self, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
        let mut found = BTreeMap::new();
        for family in [keys::UNIQUE, keys::MULTI] {
            scan_all(self.store, family, false, |e| {
                found.insert(e.key, e.value);
            })?;
        }
        for (key, value) in &found {
            let owner = String::from_utf8_lossy(value);
            match self.wanted.get(key) {
                Some(w) if !key.starts_with(keys::UNIQUE) || owner == w.id => {}
                Some(w) => problems.push(Problem::MissingIndex {
                    resource: format!("{} {}", w.kind.name(), w.id),
                    attr: w.attr,
                    value: w.value.clone(),
                    key: key.clone(),
                    owner: Some(format!("{} {owner}", w.kind.name())),
                }),
                None => problems.push(self.dangling(key, &owner)),
            }
        }
        for (key, w) in &self.wanted {
            if !found.contains_key(key) {
                problems.push(Problem::MissingIndex {
                    resource: format!("{} {}", w.kind.name(), w.id),
                    attr: w.attr,
                    value: w.value.clone(),
                    key: key.clone(),
                    owner: None,
                });
            }
        }
        Ok(())
    }

    /// Why an index entry no resource calls for is wrong.
    fn dangling(&self, key: &str, unique_owner: &str) -> Problem {
        let parsed = Kind::ALL.iter().find_map(|&kind| {
            kind.indexes().iter().find_map(|index| {
                let rest = key.strip_prefix(&index.key_prefix(kind))?;
                Some((kind, index, rest))
            })
        });
        let Some((kind, index, rest)) = parsed else {
            return Problem::DanglingIndex {
                key: key.to_string(),
                reason: "not an index scimlet keeps".into(),
            };
        };
        let (value, id) = if index.unique {
            (rest, unique_owner)
        } else {
            match rest.rsplit_once(SEP) {
                Some(split) => split,
                None => {
                    return Problem::DanglingIndex {
                        key: key.to_string(),
                        reason: "has no id after the value".into(),
                    }
                }
            }
        };
        let reason = if self.exists(kind, id) {
            format!(
                "{} {id} does not have {} {value:?}",
                kind.name(),
                index.attr
            )
        } else {
            format!("names {} {id}, which does not exist", kind.name())
        };
        Problem::DanglingIndex {
            key: key.to_string(),
            reason,
        }
    }

    /// Membership keys: `(first, second)` id pairs under `prefix`, malformed ones reported.
    fn pairs(
        &self,
        prefix: &str,
        problems: &mut Vec<Problem>,
    ) -> Result<BTreeSet<(String, String)>, StoreError> {
        let mut pairs = BTreeSet::new();
        scan_all(self.store, prefix, true, |e| {
            match e.key[prefix.len()..].split_once('/') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() => {
                    pairs.insert((a.to_string(), b.to_string()));
                }
                _ => problems.push(Problem::Malformed {
                    key: e.key,
                    reason: "not a membership key of two ids".into(),
                }),
            }
        })?;
        Ok(pairs)
    }

    /// Every edge has its reverse and both ends exist.
    fn edges(&self, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
        let edges = self.pairs(keys::EDGES, problems)?;
        let reverses = self.pairs(keys::REVERSE_EDGES, problems)?;
        for (group, user) in &edges {
            let key = keys::edge(group, user);
            if !reverses.contains(&(user.clone(), group.clone())) {
                problems.push(Problem::HalfEdge {
                    key: key.clone(),
                    reverse: keys::reverse(user, group),
                });
            }
            for (kind, id) in [(Kind::Group, group), (Kind::User, user)] {
                if !self.exists(kind, id) {
                    problems.push(Problem::EdgeToMissing {
                        key: key.clone(),
                        resource: format!("{} {id}", kind.name()),
                    });
                }
            }
        }
        for (user, group) in &reverses {
            if !edges.contains(&(group.clone(), user.clone())) {
                problems.push(Problem::HalfEdge {
                    key: keys::reverse(user, group),
                    reverse: keys::edge(group, user),
                });
            }
        }
        Ok(())
    }

    /// Every membership stamp belongs to an existing group or user.
    fn stamps(&self, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
        let mut keys = Vec::new();
        scan_all(self.store, keys::STAMPS, true, |e| keys.push(e.key))?;
        for key in keys {
            let owner = Kind::ALL.iter().find_map(|&kind| {
                let stamp = match kind {
                    Kind::User => keys::user_stamp(""),
                    Kind::Group => keys::group_stamp(""),
                };
                key.strip_prefix(&stamp).map(|id| (kind, id))
            });
            match owner {
                Some((kind, id)) if self.exists(kind, id) => {}
                Some(_) => problems.push(Problem::OrphanStamp { key }),
                None => problems.push(Problem::Malformed {
                    key,
                    reason: "a stamp of no known resource type".into(),
                }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::persist::members;
    use crate::persist::store::{MemStore, Write};
    use crate::protocol::http::{handle, Request, Response};

    const POLICY: &str = r#"{"profile":"writer"}"#;

    fn call<'s>(store: &'s MemStore, method: &str, path: &str, body: Value) -> Response<'s> {
        let req = Request {
            method: method.into(),
            path: path.into(),
            headers: vec![("content-type".into(), "application/scim+json".into())],
            body: body.to_string().into_bytes(),
            base_url: "https://scim.example.com/scim/v2".into(),
            policy: POLICY.into(),
            ..Request::default()
        };
        let resp = handle(store, &req);
        assert!(resp.status < 300, "{method} {path}: {}", resp.json_body());
        resp
    }

    fn create_user(store: &MemStore, name: &str) -> String {
        let body = json!({
            "userName": name,
            "externalId": format!("ext-{name}"),
            "emails": [{"value": format!("{name}@Example.com")}, {"value": "shared@example.com"}],
        });
        let resp = call(store, "POST", "/Users", body);
        resp.json_body()["id"].as_str().unwrap().to_string()
    }

    /// Two users in the default team plus a deleted one, so every key family is present.
    fn populated() -> (MemStore, String, String) {
        let store = MemStore::new();
        let ada = create_user(&store, "Ada");
        let bob = create_user(&store, "bob");
        let gone = create_user(&store, "gone");
        let req = Request {
            method: "DELETE".into(),
            path: format!("/Users/{gone}"),
            policy: POLICY.into(),
            ..Request::default()
        };
        assert_eq!(handle(&store, &req).status, 204);
        (store, ada, bob)
    }

    fn put(store: &MemStore, key: &str, value: &[u8]) {
        store
            .commit(&[], &[Write::Put(key.into(), value.to_vec())])
            .unwrap();
    }

    fn delete(store: &MemStore, key: &str) {
        store.commit(&[], &[Write::Delete(key.into())]).unwrap();
    }

    fn team_id(store: &MemStore) -> String {
        let prefix = Kind::Group.resource_prefix();
        let key = store
            .keys()
            .into_iter()
            .find(|k| k.starts_with(&prefix))
            .expect("the default team exists");
        key[prefix.len()..].to_string()
    }

    fn only(problems: Vec<Problem>) -> Problem {
        assert_eq!(problems.len(), 1, "{problems:#?}");
        problems.into_iter().next().unwrap()
    }

    #[test]
    fn a_store_written_by_the_guest_is_clean() {
        let (store, _, _) = populated();
        for family in [
            "r/User/", "r/Group/", "u/", "n/", "m/", "g/", "s/User/", "s/Group/",
        ] {
            assert!(
                store.keys().iter().any(|k| k.starts_with(family)),
                "{family} present"
            );
        }
        assert_eq!(verify(&store, POLICY), []);
        assert_eq!(verify(&MemStore::new(), ""), []);
    }

    #[test]
    fn a_dangling_index_key_is_reported() {
        let (store, ada, _) = populated();
        put(&store, "u/User/userName/nobody", b"no-such-id");
        let p = only(verify(&store, POLICY));
        assert!(
            matches!(&p, Problem::DanglingIndex { key, .. } if key == "u/User/userName/nobody")
        );
        assert!(
            p.to_string()
                .contains("User no-such-id, which does not exist"),
            "{p}"
        );

        delete(&store, "u/User/userName/nobody");
        put(&store, &format!("n/User/externalId/stale\u{1f}{ada}"), b"");
        let p = only(verify(&store, POLICY));
        assert!(
            p.to_string()
                .contains(&format!("User {ada} does not have externalId \"stale\"")),
            "{p}"
        );
        assert!(p.to_string().contains("\\u{1f}"), "separator shown: {p}");
    }

    #[test]
    fn a_missing_index_entry_is_reported_with_case_folding() {
        let (store, ada, bob) = populated();
        delete(
            &store,
            &format!("n/User/emails.value/ada@example.com\u{1f}{ada}"),
        );
        let p = only(verify(&store, POLICY));
        assert_eq!(
            p,
            Problem::MissingIndex {
                resource: format!("User {ada}"),
                attr: "emails.value",
                value: "ada@example.com".into(),
                key: format!("n/User/emails.value/ada@example.com\u{1f}{ada}"),
                owner: None,
            }
        );
        put(
            &store,
            &format!("n/User/emails.value/ada@example.com\u{1f}{ada}"),
            b"",
        );

        put(&store, "u/User/userName/ada", bob.as_bytes());
        let p = only(verify(&store, POLICY));
        assert!(
            p.to_string().contains(&format!(
                "has userName \"ada\" but index entry u/User/userName/ada names User {bob}"
            )),
            "{p}"
        );
    }

    #[test]
    fn half_edges_are_reported_from_either_side() {
        let (store, ada, _) = populated();
        let team = team_id(&store);
        delete(&store, &keys::reverse(&ada, &team));
        let p = only(verify(&store, POLICY));
        assert_eq!(
            p,
            Problem::HalfEdge {
                key: keys::edge(&team, &ada),
                reverse: keys::reverse(&ada, &team),
            }
        );
        put(&store, &keys::reverse(&ada, &team), b"");
        delete(&store, &keys::edge(&team, &ada));
        assert!(matches!(
            only(verify(&store, POLICY)),
            Problem::HalfEdge { key, .. } if key == keys::reverse(&ada, &team)
        ));
    }

    #[test]
    fn an_edge_to_a_missing_user_and_an_orphan_stamp_are_reported() {
        let (store, _, _) = populated();
        let team = team_id(&store);
        let writes: Vec<Write> = members::link(&team, "ghost").into();
        store.commit(&[], &writes).unwrap();
        let p = only(verify(&store, POLICY));
        assert_eq!(
            p.to_string(),
            format!("membership key m/{team}/ghost names User ghost, which does not exist")
        );

        store.commit(&[], &members::unlink(&team, "ghost")).unwrap();
        put(&store, &keys::user_stamp("ghost"), b"{}");
        assert_eq!(
            only(verify(&store, POLICY)),
            Problem::OrphanStamp {
                key: keys::user_stamp("ghost")
            }
        );
    }

    #[test]
    fn corrupt_documents_and_bad_policies_are_reported_not_fatal() {
        let (store, ada, _) = populated();
        put(&store, &Kind::User.resource_key(&ada), b"{not json");
        let problems = verify(&store, "{");
        assert!(matches!(problems[0], Problem::Policy(_)), "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::Malformed { .. })),
            "{problems:#?}"
        );
        // Its index entries and edges now dangle, and each is named.
        assert!(problems.len() > 3, "{problems:#?}");
    }

    #[test]
    fn the_report_is_one_line_per_problem_and_empty_when_sound() {
        let (store, ada, _) = populated();
        assert!(report(&store, "").is_empty());
        put(&store, "u/User/userName/nobody", b"no-such-id");
        delete(&store, &Kind::User.resource_key(&ada));
        let lines = report(&store, r#"{"roles":[]}"#);
        assert_eq!(
            lines,
            verify(&store, r#"{"roles":[]}"#)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        assert!(lines[0].contains("roles must not be empty"), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("u/User/userName/nobody")),
            "{lines:#?}"
        );
    }
}
