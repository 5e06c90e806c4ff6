//! The store contract of scimlet: the tenant-scoped, ordered key-value store the SCIM
//! component persists through (WIT `scimlet:scim/store`), defined once for both sides.
//!
//! The guest's SCIM core is written against [`Store`]; the component implements it over the
//! host's `store` import, the guest's tests over [`MemStore`], and the host's backends are held
//! to the same behaviour by [`conformance`] (feature `conformance`). The types mirror the WIT
//! records one to one, so the two adapters (guest import, host export) are plain field copies.

#![deny(missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

/// A stored entry with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, ordered bytewise (UTF-8 code unit order).
    pub key: String,
    /// The value; empty when the read asked for keys only.
    pub value: Vec<u8>,
    /// Sequence number of the commit that last wrote the key (> 0).
    pub version: u64,
}

/// An optimistic check: `key` must still have `version` (`None`: must still be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The key to check.
    pub key: String,
    /// The version the key must still have, or `None` if it must still be absent.
    pub version: Option<u64>,
}

impl Check {
    /// The check that keeps a read entry (or its absence) unchanged until the commit.
    pub fn unchanged(key: impl Into<String>, read: Option<&Entry>) -> Self {
        Check {
            key: key.into(),
            version: read.map(|e| e.version),
        }
    }
}

/// One write of an atomic commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Create or overwrite the key with the value.
    Put(String, Vec<u8>),
    /// Remove the key; removing an absent key is not an error.
    Delete(String),
}

/// What kind of change an [`Event`] reports (WIT `event-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A user was created.
    UserCreated,
    /// A user's attributes changed, other than `active` alone.
    UserUpdated,
    /// `active` went from true to false.
    UserDeactivated,
    /// `active` went from false to true.
    UserReactivated,
    /// A user was deleted (its memberships with it).
    UserDeleted,
    /// A team was created.
    GroupCreated,
    /// An identity-provider group was linked to an existing team.
    GroupLinked,
    /// A team's attributes changed, not its members.
    GroupUpdated,
    /// A team was deleted (its memberships with it).
    GroupDeleted,
    /// The identity provider's group went away and the team stayed, unlinked.
    GroupUnlinked,
    /// A user became a member of a team.
    GroupMemberAdded,
    /// A user stopped being a member of a team.
    GroupMemberRemoved,
}

impl EventKind {
    /// Every kind, in the order the contract declares them.
    pub const ALL: [EventKind; 12] = [
        EventKind::UserCreated,
        EventKind::UserUpdated,
        EventKind::UserDeactivated,
        EventKind::UserReactivated,
        EventKind::UserDeleted,
        EventKind::GroupCreated,
        EventKind::GroupLinked,
        EventKind::GroupUpdated,
        EventKind::GroupDeleted,
        EventKind::GroupUnlinked,
        EventKind::GroupMemberAdded,
        EventKind::GroupMemberRemoved,
    ];

    /// The name consumers see (`user.created`, `group.member_added`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::UserCreated => "user.created",
            EventKind::UserUpdated => "user.updated",
            EventKind::UserDeactivated => "user.deactivated",
            EventKind::UserReactivated => "user.reactivated",
            EventKind::UserDeleted => "user.deleted",
            EventKind::GroupCreated => "group.created",
            EventKind::GroupLinked => "group.linked",
            EventKind::GroupUpdated => "group.updated",
            EventKind::GroupDeleted => "group.deleted",
            EventKind::GroupUnlinked => "group.unlinked",
            EventKind::GroupMemberAdded => "group.member_added",
            EventKind::GroupMemberRemoved => "group.member_removed",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A change event, stored by a commit atomically with its writes (WIT `event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What changed.
    pub kind: EventKind,
    /// A JSON object: the resource after the change (before it, for deletions).
    pub data: String,
    /// For updates, a JSON object of each changed attribute path and its previous value.
    pub previous: Option<String>,
}

/// A range read over `start <= key < end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// First key of the range (inclusive).
    pub start: String,
    /// End of the range (exclusive).
    pub end: String,
    /// Entries skipped from the start of the range (from its end when `descending`).
    pub skip: u64,
    /// Most entries answered.
    pub limit: u32,
    /// Highest key first.
    pub descending: bool,
    /// Answer keys and versions with empty values.
    pub keys_only: bool,
}

impl Scan {
    /// All keys starting with `prefix`, ascending.
    pub fn prefix(prefix: &str) -> Self {
        Scan {
            start: prefix.to_string(),
            end: prefix_end(prefix),
            skip: 0,
            limit: u32::MAX,
            descending: false,
            keys_only: false,
        }
    }
    /// The same range, keys and versions only.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }
    /// The same range, `limit` entries after the first `skip`.
    pub fn page(mut self, skip: u64, limit: u32) -> Self {
        self.skip = skip;
        self.limit = limit;
        self
    }
}

/// The smallest string greater than every string that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A check of a commit failed: another writer came first. Re-read and retry.
    #[error("conflicting concurrent write")]
    Conflict,
    /// The backend failed or is unavailable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The call was malformed (an empty key, a range with start > end).
    #[error("invalid store call: {0}")]
    Invalid(String),
}

/// Ordered key-value storage with atomic, optimistically checked multi-key commits.
pub trait Store {
    /// Reads one key.
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;
    /// Reads several keys; one slot per requested key, in order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError>;
    /// Reads a range.
    fn scan(&self, scan: &Scan) -> Result<Vec<Entry>, StoreError>;
    /// Counts the entries with `start <= key < end`.
    fn count(&self, start: &str, end: &str) -> Result<u64, StoreError>;
    /// Applies `writes` atomically if every check holds, stores `events` with them, and
    /// answers the commit's sequence number; [`StoreError::Conflict`] (and nothing written)
    /// otherwise. A commit without writes changes nothing and answers the current sequence
    /// number; it may carry no events ([`StoreError::Invalid`]). The lists are taken by value
    /// so that an implementation that converts them (the component's host import) can move a
    /// large commit (a group replaced with 100 000 members writes 300 000 keys) instead of
    /// holding it twice.
    fn commit_events(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<Event>,
    ) -> Result<u64, StoreError>;

    /// [`Store::commit_events`] without events (tests, stores' own bookkeeping).
    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<u64, StoreError> {
        self.commit_events(checks.to_vec(), writes.to_vec(), Vec::new())
    }
}

/// Refuses events on a commit that writes nothing: an event reports a change.
pub fn check_events(writes: &[Write], events: &[Event]) -> Result<(), StoreError> {
    if writes.is_empty() && !events.is_empty() {
        return Err(StoreError::Invalid(
            "a commit without writes cannot carry events".into(),
        ));
    }
    Ok(())
}

/// Keys are never empty (the host's backends refuse them alike).
fn valid_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid("empty key".into()));
    }
    Ok(())
}

/// An in-memory [`Store`] for tests and native embedding (single-threaded).
#[derive(Debug, Default)]
pub struct MemStore {
    inner: RefCell<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    map: BTreeMap<String, (Vec<u8>, u64)>,
    seq: u64,
    events: Vec<(u64, Event)>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of keys stored (for tests).
    pub fn len(&self) -> usize {
        self.inner.borrow().map.len()
    }
    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// All keys (for tests that check indexes).
    pub fn keys(&self) -> Vec<String> {
        self.inner.borrow().map.keys().cloned().collect()
    }
    /// Every event committed so far with its commit's sequence number, in commit order.
    pub fn events(&self) -> Vec<(u64, Event)> {
        self.inner.borrow().events.clone()
    }
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        valid_key(key)?;
        let inner = self.inner.borrow();
        Ok(inner.map.get(key).map(|(v, ver)| Entry {
            key: key.to_string(),
            value: v.clone(),
            version: *ver,
        }))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn scan(&self, scan: &Scan) -> Result<Vec<Entry>, StoreError> {
        if scan.start > scan.end {
            return Err(StoreError::Invalid("range start after end".into()));
        }
        let inner = self.inner.borrow();
        let range = inner.map.range(scan.start.clone()..scan.end.clone());
        let to_entry = |(k, (v, ver)): (&String, &(Vec<u8>, u64))| Entry {
            key: k.clone(),
            value: if scan.keys_only {
                Vec::new()
            } else {
                v.clone()
            },
            version: *ver,
        };
        let skip = usize::try_from(scan.skip).unwrap_or(usize::MAX);
        let limit = scan.limit as usize;
        Ok(if scan.descending {
            range.rev().skip(skip).take(limit).map(to_entry).collect()
        } else {
            range.skip(skip).take(limit).map(to_entry).collect()
        })
    }

    fn count(&self, start: &str, end: &str) -> Result<u64, StoreError> {
        if start > end {
            return Err(StoreError::Invalid("range start after end".into()));
        }
        Ok(self
            .inner
            .borrow()
            .map
            .range(start.to_string()..end.to_string())
            .count() as u64)
    }

    fn commit_events(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<Event>,
    ) -> Result<u64, StoreError> {
        check_events(&writes, &events)?;
        for c in &checks {
            valid_key(&c.key)?;
        }
        for w in &writes {
            match w {
                Write::Put(k, _) | Write::Delete(k) => valid_key(k)?,
            }
        }
        let mut inner = self.inner.borrow_mut();
        for c in &checks {
            if inner.map.get(&c.key).map(|(_, v)| *v) != c.version {
                return Err(StoreError::Conflict);
            }
        }
        // Nothing to write: nothing changes, the sequence included (as in the host's backends).
        if writes.is_empty() {
            return Ok(inner.seq);
        }
        inner.seq += 1;
        let seq = inner.seq;
        for w in writes {
            match w {
                Write::Put(k, v) => {
                    inner.map.insert(k, (v, seq));
                }
                Write::Delete(k) => {
                    inner.map.remove(&k);
                }
            }
        }
        inner.events.extend(events.into_iter().map(|e| (seq, e)));
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_store_conforms() {
        conformance::run_all(&MemStore::new());
    }

    #[test]
    fn commit_applies_all_or_nothing() {
        let s = MemStore::new();
        s.commit(&[], &[Write::Put("a".into(), b"1".to_vec())])
            .unwrap();
        let a = s.get("a").unwrap();
        let stale = Check {
            key: "a".into(),
            version: Some(a.as_ref().unwrap().version + 7),
        };
        let err = s
            .commit(&[stale], &[Write::Put("b".into(), b"2".to_vec())])
            .unwrap_err();
        assert_eq!(err, StoreError::Conflict);
        assert_eq!(s.get("b").unwrap(), None);
        s.commit(
            &[Check::unchanged("a", a.as_ref())],
            &[Write::Put("b".into(), b"2".to_vec())],
        )
        .unwrap();
        assert!(s.get("b").unwrap().is_some());
    }

    #[test]
    fn scan_orders_pages_and_counts_a_prefix() {
        let s = MemStore::new();
        let writes: Vec<_> = ["p/3", "p/1", "p/2", "q/1"]
            .iter()
            .map(|k| Write::Put(k.to_string(), vec![]))
            .collect();
        s.commit(&[], &writes).unwrap();
        let keys = |scan: Scan| {
            s.scan(&scan)
                .unwrap()
                .into_iter()
                .map(|e| e.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Scan::prefix("p/")), ["p/1", "p/2", "p/3"]);
        assert_eq!(keys(Scan::prefix("p/").page(1, 1)), ["p/2"]);
        let mut desc = Scan::prefix("p/");
        desc.descending = true;
        assert_eq!(keys(desc), ["p/3", "p/2", "p/1"]);
        assert_eq!(s.count("p/", &prefix_end("p/")).unwrap(), 3);
    }
}
