//! What the SQLite and PostgreSQL backends remember about key ranges between reads: how many
//! keys a range holds and which key sits at some positions in it. Both answer `count(*)` and
//! `LIMIT … OFFSET n` by walking every row before the page, so `totalResults` and a deep
//! `startIndex` page cost O(N) each; with these memos an IdP paging through 100 000 users (each
//! page starting where the previous one ended) and a repeated list cost O(page).
//!
//! Validity rests on the store's commit sequence: every commit of key-value data, from this
//! process or another one sharing the file, advances `seq`. A memo records the `seq` of the
//! snapshot it was read from; this process's commits mark the ranges they touch as changed at
//! their `seq`; and a reader uses a memo only if its own snapshot is at the last `seq` this
//! process accounts for (so no commit it does not know about has happened).
//!
//! Hosts sharing a PostgreSQL database see none of one another's commits, so [`Stamped`] keys
//! validity to per-range stamps the database keeps instead (see `postgres/stamps.rs`).

use std::collections::{BTreeMap, HashMap};

/// Ranges remembered at once; beyond it all are forgotten (cheap to relearn).
const MAX_RANGES: usize = 4096;
/// Positions remembered per range and direction.
const MAX_ANCHORS: usize = 256;

#[derive(Debug, Default)]
pub struct Positions {
    /// Every commit up to this `seq` is accounted for in `ranges`.
    known_seq: u64,
    /// Memos read before this `seq` are void (commits of another process happened up to it).
    reset_seq: u64,
    ranges: HashMap<RangeKey, Memo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RangeKey {
    tenant: String,
    start: String,
    end: String,
}

#[derive(Debug, Default)]
struct Memo {
    /// The `seq` of the last commit known to have written a key of this range.
    changed_seq: u64,
    count: Option<(u64, u64)>,
    ascending: BTreeMap<u64, (String, u64)>,
    descending: BTreeMap<u64, (String, u64)>,
}

/// Where to resume a scan: the key at a position at or before the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub position: u64,
    pub key: String,
}

impl Positions {
    /// Whether memos may be used by a reader whose snapshot is at `seq`.
    pub fn usable_at(&self, seq: u64) -> bool {
        seq == self.known_seq
    }

    pub fn count(&self, tenant: &str, start: &str, end: &str, seq: u64) -> Option<u64> {
        let memo = self.memo(tenant, start, end, seq)?;
        let (n, at) = memo.count?;
        self.fresh(memo, at).then_some(n)
    }

    pub fn remember_count(&mut self, tenant: &str, start: &str, end: &str, seq: u64, n: u64) {
        self.memo_mut(tenant, start, end).count = Some((n, seq));
    }

    /// The nearest remembered position at or before `position`.
    pub fn anchor(
        &self,
        tenant: &str,
        start: &str,
        end: &str,
        descending: bool,
        position: u64,
        seq: u64,
    ) -> Option<Anchor> {
        let memo = self.memo(tenant, start, end, seq)?;
        let anchors = if descending {
            &memo.descending
        } else {
            &memo.ascending
        };
        let (&at, (key, read_at)) = anchors.range(..=position).next_back()?;
        self.fresh(memo, *read_at).then(|| Anchor {
            position: at,
            key: key.clone(),
        })
    }

    /// Records that in the snapshot at `seq`, `key` sits at `position` of the range.
    #[allow(clippy::too_many_arguments)]
    pub fn remember_anchor(
        &mut self,
        tenant: &str,
        start: &str,
        end: &str,
        descending: bool,
        position: u64,
        key: &str,
        seq: u64,
    ) {
        let memo = self.memo_mut(tenant, start, end);
        let anchors = if descending {
            &mut memo.descending
        } else {
            &mut memo.ascending
        };
        if anchors.len() >= MAX_ANCHORS && !anchors.contains_key(&position) {
            anchors.clear();
        }
        anchors.insert(position, (key.to_string(), seq));
    }

    /// Accounts for a commit of this process at `seq`, which found the store at `seq_before`
    /// and added or removed `keys` (replacing a value moves no position and changes no count).
    pub fn committed<'k>(
        &mut self,
        tenant: &str,
        keys: impl Iterator<Item = &'k str> + Clone,
        seq_before: u64,
        seq: u64,
    ) {
        if seq_before != self.known_seq {
            // Another process committed in between: what it wrote is unknown.
            self.forget_all(seq);
            return;
        }
        for (range, memo) in &mut self.ranges {
            if range.tenant == tenant
                && keys
                    .clone()
                    .any(|k| range.start.as_str() <= k && k < range.end.as_str())
            {
                memo.changed_seq = seq;
            }
        }
        self.known_seq = seq;
    }

    /// Accounts for commits of other processes, found when the store is at `seq`.
    pub fn forget_all(&mut self, seq: u64) {
        self.ranges.clear();
        self.known_seq = seq;
        self.reset_seq = seq;
    }

    fn memo(&self, tenant: &str, start: &str, end: &str, seq: u64) -> Option<&Memo> {
        if !self.usable_at(seq) {
            return None;
        }
        self.ranges.get(&RangeKey {
            tenant: tenant.to_string(),
            start: start.to_string(),
            end: end.to_string(),
        })
    }

    fn memo_mut(&mut self, tenant: &str, start: &str, end: &str) -> &mut Memo {
        if self.ranges.len() >= MAX_RANGES {
            self.ranges.clear();
        }
        let known = self.known_seq;
        self.ranges
            .entry(RangeKey {
                tenant: tenant.to_string(),
                start: start.to_string(),
                end: end.to_string(),
            })
            // Commits before this range was first seen were not recorded against it: treat it
            // as changed by the latest one, so that only reads at least that recent count.
            .or_insert_with(|| Memo {
                changed_seq: known,
                ..Memo::default()
            })
    }

    fn fresh(&self, memo: &Memo, read_at: u64) -> bool {
        read_at >= memo.changed_seq && read_at >= self.reset_seq && read_at <= self.known_seq
    }
}

/// The same memos for a store shared by several processes that do not see one another's commits
/// (PostgreSQL): each range's memos are valid while the range's *stamp* is unchanged. The stamp
/// is read from the database in the same statement as the count or page it guards and only
/// grows (every commit that adds or removes a key in the range raises it, on any host), so a
/// memo is used only when the database itself vouches that the range did not change since.
#[derive(Debug, Default)]
pub struct Stamped {
    ranges: HashMap<RangeKey, StampedMemo>,
}

#[derive(Debug, Default)]
struct StampedMemo {
    /// The stamp every memo below was read at.
    stamp: i64,
    count: Option<u64>,
    ascending: BTreeMap<u64, String>,
    descending: BTreeMap<u64, String>,
}

impl Stamped {
    /// The remembered count of the range and the stamp it was read at.
    pub fn count(&self, tenant: &str, start: &str, end: &str) -> Option<(u64, i64)> {
        let memo = self.ranges.get(&range_key(tenant, start, end))?;
        Some((memo.count?, memo.stamp))
    }

    /// Records that the range held `n` keys when its stamp was `stamp`.
    pub fn remember_count(&mut self, tenant: &str, start: &str, end: &str, stamp: i64, n: u64) {
        if let Some(memo) = self.memo_at(tenant, start, end, stamp) {
            memo.count = Some(n);
        }
    }

    /// The nearest remembered position at or before `position`, and the stamp it holds at.
    pub fn anchor(
        &self,
        tenant: &str,
        start: &str,
        end: &str,
        descending: bool,
        position: u64,
    ) -> Option<(Anchor, i64)> {
        let memo = self.ranges.get(&range_key(tenant, start, end))?;
        let anchors = if descending {
            &memo.descending
        } else {
            &memo.ascending
        };
        let (&at, key) = anchors.range(..=position).next_back()?;
        Some((
            Anchor {
                position: at,
                key: key.clone(),
            },
            memo.stamp,
        ))
    }

    /// Records that `key` sat at `position` of the range when its stamp was `stamp`.
    #[allow(clippy::too_many_arguments)]
    pub fn remember_anchor(
        &mut self,
        tenant: &str,
        start: &str,
        end: &str,
        descending: bool,
        position: u64,
        key: &str,
        stamp: i64,
    ) {
        let Some(memo) = self.memo_at(tenant, start, end, stamp) else {
            return;
        };
        let anchors = if descending {
            &mut memo.descending
        } else {
            &mut memo.ascending
        };
        if anchors.len() >= MAX_ANCHORS && !anchors.contains_key(&position) {
            anchors.clear();
        }
        anchors.insert(position, key.to_string());
    }

    /// The range's memos to record into at `stamp`: emptied when `stamp` is newer than what
    /// they were read at, `None` when it is older (a slower reader: what it read is stale).
    fn memo_at(
        &mut self,
        tenant: &str,
        start: &str,
        end: &str,
        stamp: i64,
    ) -> Option<&mut StampedMemo> {
        if self.ranges.len() >= MAX_RANGES {
            self.ranges.clear();
        }
        let memo = self
            .ranges
            .entry(range_key(tenant, start, end))
            .or_insert_with(|| StampedMemo {
                stamp,
                ..StampedMemo::default()
            });
        if stamp > memo.stamp {
            *memo = StampedMemo {
                stamp,
                ..StampedMemo::default()
            };
        }
        (stamp == memo.stamp).then_some(memo)
    }
}

fn range_key(tenant: &str, start: &str, end: &str) -> RangeKey {
    RangeKey {
        tenant: tenant.to_string(),
        start: start.to_string(),
        end: end.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "t1";

    fn at(seq: u64) -> Positions {
        let mut p = Positions::default();
        p.forget_all(seq);
        p
    }

    #[test]
    fn a_count_holds_until_a_commit_writes_into_its_range() {
        let mut p = at(5);
        p.remember_count(T, "r/User/", "r/User0", 5, 42);
        assert_eq!(p.count(T, "r/User/", "r/User0", 5), Some(42));
        p.committed(T, ["m/g/u"].into_iter(), 5, 6);
        assert_eq!(p.count(T, "r/User/", "r/User0", 6), Some(42), "other range");
        p.committed("t2", ["r/User/x"].into_iter(), 6, 7);
        assert_eq!(
            p.count(T, "r/User/", "r/User0", 7),
            Some(42),
            "other tenant"
        );
        p.committed(T, ["r/User/x"].into_iter(), 7, 8);
        assert_eq!(p.count(T, "r/User/", "r/User0", 8), None);
    }

    #[test]
    fn nothing_is_used_when_the_snapshot_is_not_the_last_known_commit() {
        let mut p = at(5);
        p.remember_count(T, "a", "b", 5, 1);
        assert_eq!(
            p.count(T, "a", "b", 6),
            None,
            "a commit this process did not see"
        );
        p.committed(T, ["z"].into_iter(), 6, 7);
        assert_eq!(
            p.count(T, "a", "b", 7),
            None,
            "another process committed seq 6"
        );
    }

    #[test]
    fn a_memo_read_before_a_commit_it_missed_is_never_used() {
        let mut p = at(5);
        // A reader took its snapshot at 5; a commit at 6 wrote into the range before the
        // reader stored what it read.
        p.committed(T, ["a1"].into_iter(), 5, 6);
        p.remember_count(T, "a", "b", 5, 1);
        assert_eq!(p.count(T, "a", "b", 6), None);
        p.remember_count(T, "a", "b", 6, 2);
        assert_eq!(p.count(T, "a", "b", 6), Some(2));
    }

    #[test]
    fn a_new_range_trusts_only_reads_since_the_last_known_commit() {
        let mut p = at(5);
        p.committed(T, ["a1"].into_iter(), 5, 6);
        // The range had no memo when seq 6 wrote into it; a read from snapshot 5 is stale.
        p.remember_anchor(T, "a", "b", false, 100, "a7", 5);
        assert_eq!(p.anchor(T, "a", "b", false, 150, 6), None);
    }

    #[test]
    fn the_nearest_anchor_at_or_before_the_position_is_found_per_direction() {
        let mut p = at(9);
        p.remember_anchor(T, "a", "b", false, 100, "a100", 9);
        p.remember_anchor(T, "a", "b", false, 199, "a199", 9);
        p.remember_anchor(T, "a", "b", true, 150, "a050", 9);
        let found = |pos, desc| p.anchor(T, "a", "b", desc, pos, 9).map(|a| a.key);
        assert_eq!(found(99, false), None);
        assert_eq!(found(150, false).as_deref(), Some("a100"));
        assert_eq!(found(200, false).as_deref(), Some("a199"));
        assert_eq!(found(150, true).as_deref(), Some("a050"));
        assert_eq!(found(149, true), None);
    }

    #[test]
    fn stamped_memos_hold_only_at_the_stamp_they_were_read_at() {
        let mut p = Stamped::default();
        assert_eq!(p.count(T, "a", "b"), None);
        p.remember_count(T, "a", "b", 3, 10);
        p.remember_anchor(T, "a", "b", false, 100, "a100", 3);
        assert_eq!(p.count(T, "a", "b"), Some((10, 3)));
        assert_eq!(p.count("t2", "a", "b"), None, "other tenant");
        let found = p.anchor(T, "a", "b", false, 150).unwrap();
        assert_eq!(
            (found.0.key.as_str(), found.0.position, found.1),
            ("a100", 100, 3)
        );
        assert_eq!(p.anchor(T, "a", "b", true, 150), None, "other direction");
        // A slower reader that read at an older stamp records nothing.
        p.remember_count(T, "a", "b", 2, 99);
        assert_eq!(p.count(T, "a", "b"), Some((10, 3)));
        // A newer stamp voids every memo of the range read before it.
        p.remember_anchor(T, "a", "b", false, 200, "a200", 4);
        assert_eq!(p.count(T, "a", "b"), None);
        let found = p.anchor(T, "a", "b", false, 150);
        assert_eq!(found, None, "the anchor at 100 was read at stamp 3");
        assert_eq!(p.anchor(T, "a", "b", false, 250).unwrap().1, 4);
    }
}
