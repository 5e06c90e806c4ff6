//! Group membership as edges: one key per (group, member) and its reverse, never an array that
//! is rewritten on each change. Adding one member to a 100 000-member group writes four small
//! keys; two requests adding different members never conflict.
//!
//! Keys:
//! - `m/{group}/{user}` and `g/{user}/{group}`: the edge and its reverse (empty values);
//! - `s/Group/{group}`: the group's membership stamp (`lastModified`), rewritten by every
//!   membership change; its store version is part of the group's ETag, and whole-membership
//!   operations (replace, delete) check it so they never miss a concurrent change;
//! - `s/User/{user}`: the user's membership stamp, which user deletion checks for the same reason.

use serde_json::{json, Value};

use crate::clock;
use crate::error::ScimResult;
use crate::store::{Entry, Scan, Store, Write};

pub fn edge(group: &str, user: &str) -> String {
    format!("{}{user}", members_prefix(group))
}

/// The prefix of every member edge of a group.
fn members_prefix(group: &str) -> String {
    format!("m/{group}/")
}

pub fn reverse(user: &str, group: &str) -> String {
    format!("g/{user}/{group}")
}

pub fn group_stamp(group: &str) -> String {
    format!("s/Group/{group}")
}

pub fn user_stamp(user: &str) -> String {
    format!("s/User/{user}")
}

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
    let body = json!({"lastModified": clock::rfc3339(clock::now_millis())});
    Write::Put(key, serde_json::to_vec(&body).unwrap_or_default())
}

/// The `lastModified` a stamp carries.
pub fn stamp_time(entry: &Entry) -> Option<String> {
    let v: Value = serde_json::from_slice(&entry.value).ok()?;
    v.get("lastModified")?.as_str().map(str::to_string)
}

/// Reads of the membership graph.
pub struct Membership<'a> {
    pub store: &'a dyn Store,
}

impl<'a> Membership<'a> {
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

    /// Calls `visit` with every member id of a group, reading the edges in batches so that a
    /// large group is never held in memory as a whole.
    pub fn for_each_member(&self, group: &str, mut visit: impl FnMut(&str)) -> ScimResult<()> {
        const BATCH: u32 = 2000;
        let prefix = members_prefix(group);
        let mut start = prefix.clone();
        loop {
            let scan = Scan {
                start: start.clone(),
                end: crate::store::prefix_end(&prefix),
                skip: 0,
                limit: BATCH,
                descending: false,
                keys_only: true,
            };
            let batch = self.store.scan(&scan)?;
            for e in &batch {
                if let Some(id) = e.key.strip_prefix(&prefix) {
                    visit(id);
                }
            }
            match batch.last() {
                Some(last) if batch.len() == BATCH as usize => start = format!("{}\u{0}", last.key),
                _ => return Ok(()),
            }
        }
    }

    /// Every group id a user belongs to.
    pub fn groups_of(&self, user: &str) -> ScimResult<Vec<String>> {
        self.ids_under(&format!("g/{user}/"))
    }

    /// Whether each user is a member, without reading the rest of the group.
    pub fn contains(&self, group: &str, users: &[String]) -> ScimResult<Vec<bool>> {
        let keys: Vec<String> = users.iter().map(|u| edge(group, u)).collect();
        Ok(self
            .store
            .get_many(&keys)?
            .into_iter()
            .map(|e| e.is_some())
            .collect())
    }

    pub fn count(&self, group: &str) -> ScimResult<u64> {
        let prefix = members_prefix(group);
        Ok(self
            .store
            .count(&prefix, &crate::store::prefix_end(&prefix))?)
    }

    /// Whether the group has more than `n` members, reading at most one edge past the first
    /// `n` instead of counting them all (a count is O(members) in the store).
    pub fn more_than(&self, group: &str, n: u64) -> ScimResult<bool> {
        let prefix = members_prefix(group);
        let probe = Scan {
            start: prefix.clone(),
            end: crate::store::prefix_end(&prefix),
            skip: n,
            limit: 1,
            descending: false,
            keys_only: true,
        };
        Ok(!self.store.scan(&probe)?.is_empty())
    }

    pub fn stamp(&self, group: &str) -> ScimResult<Option<Entry>> {
        Ok(self.store.get(&group_stamp(group))?)
    }
}
