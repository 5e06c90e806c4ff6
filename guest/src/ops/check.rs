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
