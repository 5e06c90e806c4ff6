//! Reads of the key-value space: `get`, `get_many`, `scan` and `count`, with the remembered
//! positions ([`Positions`]) that spare totals and deep pages an O(N) walk.

use std::sync::{MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::commit::current_seq;
use super::{to_sql_int, u64_from_sql, SqliteBackend};
use crate::store::positions::Positions;
use crate::store::{check_key, check_range, Entry, Scan, StoreError};

const GET: &str = "SELECT value, version FROM kv WHERE tenant = ?1 AND key = ?2";

fn get_one(conn: &Connection, tenant: &str, key: &str) -> Result<Option<Entry>, StoreError> {
    let mut stmt = conn.prepare_cached(GET)?;
    let entry = stmt
        .query_row(params![tenant, key], |row| {
            Ok(Entry {
                key: key.to_owned(),
                value: row.get(0)?,
                version: u64_from_sql(row.get(1)?)?,
            })
        })
        .optional()?;
    Ok(entry)
}

/// The scan statement for each direction and projection; keys-only scans never read `value`.
fn scan_sql(descending: bool, keys_only: bool) -> &'static str {
    match (descending, keys_only) {
        (false, false) => "SELECT key, version, value FROM kv WHERE tenant = ?1 AND key >= ?2 AND key < ?3 ORDER BY key ASC LIMIT ?4 OFFSET ?5",
        (true, false) => "SELECT key, version, value FROM kv WHERE tenant = ?1 AND key >= ?2 AND key < ?3 ORDER BY key DESC LIMIT ?4 OFFSET ?5",
        (false, true) => "SELECT key, version FROM kv WHERE tenant = ?1 AND key >= ?2 AND key < ?3 ORDER BY key ASC LIMIT ?4 OFFSET ?5",
        (true, true) => "SELECT key, version FROM kv WHERE tenant = ?1 AND key >= ?2 AND key < ?3 ORDER BY key DESC LIMIT ?4 OFFSET ?5",
    }
}

/// Runs `scan` (its order, limit and columns) over `start..end`, skipping `skip` rows.
fn scan_rows(
    conn: &Connection,
    tenant: &str,
    scan: &Scan,
    start: &str,
    end: &str,
    skip: u64,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare_cached(scan_sql(scan.descending, scan.keys_only))?;
    let args = params![tenant, start, end, i64::from(scan.limit), to_sql_int(skip)];
    let rows = stmt.query_map(args, |row| scan_row(row, scan.keys_only))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn scan_row(row: &Row<'_>, keys_only: bool) -> rusqlite::Result<Entry> {
    Ok(Entry {
        key: row.get(0)?,
        version: u64_from_sql(row.get(1)?)?,
        value: if keys_only { Vec::new() } else { row.get(2)? },
    })
}

pub(super) fn get(
    backend: &SqliteBackend,
    tenant: &str,
    key: &str,
) -> Result<Option<Entry>, StoreError> {
    check_key(key)?;
    get_one(&*backend.reader()?, tenant, key)
}

pub(super) fn get_many(
    backend: &SqliteBackend,
    tenant: &str,
    keys: &[String],
) -> Result<Vec<Option<Entry>>, StoreError> {
    keys.iter().try_for_each(|k| check_key(k))?;
    let reader = backend.reader()?;
    // One read transaction, so that all slots come from the same snapshot.
    let tx = reader.unchecked_transaction()?;
    keys.iter().map(|k| get_one(&tx, tenant, k)).collect()
}

pub(super) fn scan(
    backend: &SqliteBackend,
    tenant: &str,
    scan: &Scan,
) -> Result<Vec<Entry>, StoreError> {
    check_range(&scan.start, &scan.end)?;
    if scan.skip > 0 && scan.limit > 0 {
        return backend.scan_from_anchor(tenant, scan);
    }
    let reader = backend.reader()?;
    scan_rows(&reader, tenant, scan, &scan.start, &scan.end, scan.skip)
}

pub(super) fn count(
    backend: &SqliteBackend,
    tenant: &str,
    start: &str,
    end: &str,
) -> Result<u64, StoreError> {
    check_range(start, end)?;
    let reader = backend.reader()?;
    let tx = reader.unchecked_transaction()?;
    let seq = current_seq(&tx)?;
    if let Some(n) = backend.positions_at(seq)?.count(tenant, start, end, seq) {
        return Ok(n);
    }
    let mut stmt =
        tx.prepare_cached("SELECT count(*) FROM kv WHERE tenant = ?1 AND key >= ?2 AND key < ?3")?;
    let n: i64 = stmt.query_row(params![tenant, start, end], |r| r.get(0))?;
    let n = u64_from_sql(n)?;
    backend
        .positions()
        .remember_count(tenant, start, end, seq, n);
    Ok(n)
}

impl SqliteBackend {
    pub(super) fn positions(&self) -> MutexGuard<'_, Positions> {
        // Memos only: a panic elsewhere cannot make them claim more than they hold.
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The memos may be used from a snapshot at `seq` once every commit up to it is accounted
    /// for: when `seq` is ahead of this process's commits and none of them is in flight, the
    /// commits in between came from another process, and what they wrote is unknown.
    pub(super) fn positions_at(&self, seq: u64) -> Result<MutexGuard<'_, Positions>, StoreError> {
        if !self.positions().usable_at(seq) {
            if let Ok(writer) = self.writer.try_lock() {
                let now = current_seq(&writer)?;
                let mut positions = self.positions();
                if !positions.usable_at(now) && now >= seq {
                    positions.forget_all(now);
                }
            }
        }
        Ok(self.positions())
    }

    /// A scan that skips rows: resumes from the nearest remembered position instead of walking
    /// every skipped row, and remembers where this page starts and ends.
    fn scan_from_anchor(&self, tenant: &str, scan: &Scan) -> Result<Vec<Entry>, StoreError> {
        let reader = self.reader()?;
        let tx = reader.unchecked_transaction()?;
        let seq = current_seq(&tx)?;
        let anchor = self.positions_at(seq)?.anchor(
            tenant,
            &scan.start,
            &scan.end,
            scan.descending,
            scan.skip,
            seq,
        );
        let (mut start, mut end, mut skip) = (scan.start.as_str(), scan.end.as_str(), scan.skip);
        let bound;
        if let Some(a) = &anchor {
            skip -= a.position;
            if scan.descending {
                // Keys below `key\0` are the keys up to and including `key`.
                bound = format!("{}\u{0}", a.key);
                end = &bound;
            } else {
                start = &a.key;
            }
        }
        let rows = scan_rows(&tx, tenant, scan, start, end, skip)?;
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            let mut positions = self.positions();
            let (s, e, desc) = (&scan.start, &scan.end, scan.descending);
            positions.remember_anchor(tenant, s, e, desc, scan.skip, &first.key, seq);
            let last_at = scan.skip + rows.len() as u64 - 1;
            positions.remember_anchor(tenant, s, e, desc, last_at, &last.key, seq);
        }
        Ok(rows)
    }
}

/// Counts and deep pages served from remembered positions agree with a plain walk of the
/// rows, whatever this process and another one sharing the file commit in between.
#[cfg(test)]
mod positions_tests {
    use super::*;
    use crate::store::{Backend, Check, Write};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8),
        /// A put to a key checked to exist: an update in place.
        Update(u8),
        Delete(u8),
        /// A commit through a second backend on the same file: another process.
        ElsewherePut(u8),
        Scan {
            skip: u8,
            limit: u8,
            descending: bool,
        },
        Count,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u8>().prop_map(|k| Op::Put(k % 64)),
            2 => any::<u8>().prop_map(|k| Op::Update(k % 64)),
            2 => any::<u8>().prop_map(|k| Op::Delete(k % 64)),
            1 => any::<u8>().prop_map(|k| Op::ElsewherePut(k % 64)),
            6 => (any::<u8>(), 1..20u8, any::<bool>())
                .prop_map(|(skip, limit, descending)| Op::Scan { skip: skip % 70, limit, descending }),
            3 => Just(Op::Count),
        ]
    }

    /// Keys 0..48 fall in the scanned range `r/`, the others beside it.
    fn key(k: u8) -> String {
        if k < 48 {
            format!("r/{k:02}")
        } else {
            format!("s/{k:02}")
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn remembered_positions_never_change_an_answer(ops in proptest::collection::vec(op(), 1..80)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.db");
            let here = SqliteBackend::open(&path).unwrap();
            let there = SqliteBackend::open(&path).unwrap();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Put(k) | Op::ElsewherePut(k) => {
                        let b = if matches!(op, Op::Put(_)) { &here } else { &there };
                        b.commit("t", &[], &[Write::Put(key(k), b"v".to_vec())]).unwrap();
                        model.insert(key(k));
                    }
                    Op::Update(k) => {
                        let Some(found) = here.get("t", &key(k)).unwrap() else { continue };
                        let check = Check { key: key(k), version: Some(found.version) };
                        here.commit("t", &[check], &[Write::Put(key(k), b"w".to_vec())]).unwrap();
                    }
                    Op::Delete(k) => {
                        here.commit("t", &[], &[Write::Delete(key(k))]).unwrap();
                        model.remove(&key(k));
                    }
                    Op::Scan { skip, limit, descending } => {
                        let scan = Scan {
                            start: "r/".into(),
                            end: "r0".into(),
                            skip: skip.into(),
                            limit: limit.into(),
                            descending,
                            keys_only: true,
                        };
                        let got: Vec<String> =
                            here.scan("t", &scan).unwrap().into_iter().map(|e| e.key).collect();
                        let in_range = model.iter().filter(|k| k.starts_with("r/")).cloned();
                        let ordered: Vec<String> = if descending {
                            in_range.rev().collect()
                        } else {
                            in_range.collect()
                        };
                        let want: Vec<String> = ordered
                            .into_iter()
                            .skip(skip.into())
                            .take(limit.into())
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Count => {
                        let want = model.iter().filter(|k| k.starts_with("r/")).count() as u64;
                        prop_assert_eq!(here.count("t", "r/", "r0").unwrap(), want);
                    }
                }
            }
        }
    }
}
