//! Remembered counts and page positions that every host's commits invalidate.
//!
//! `count(*)` and `OFFSET n` walk every row they count or skip, so `totalResults` over 100 000
//! users and a deep `startIndex` page cost O(N) on every call. Each host remembers them
//! ([`Stamped`]), guarded by *stamps* the database keeps in `scimlet_stamps`: per tenant and
//! key class (the key up to its second `/`, e.g. `r/User/` or `m/{group}/`), a counter that
//! every commit adding or removing a key of the class raises, in the commit's transaction. A
//! range's stamp is the sum of the counters of the classes its keys can belong to; it only
//! grows, and it is read in the same statement (so the same snapshot) as the count or page it
//! guards: a memo is used only if the database answers the stamp it was read at, whichever
//! host committed in between. Updates in place (a put to a key checked to exist) move no key
//! and raise nothing.
//!
//! A commit touching many classes (a group of 100 000 members writes a reverse edge
//! `g/{user}/…` per member) raises the coarser class of the first segment (`g/`) instead, and
//! beyond that the tenant-wide class `""`: a class of any of these granularities that covers a
//! key of a range is either a prefix of the range's start or lies inside the range, which is
//! what [`stamp_classes`] and the statements below look up.

use std::collections::BTreeSet;
use std::sync::{LazyLock, MutexGuard, PoisonError};

use postgres::Row;

use super::{key_from_sql, PostgresBackend};
use crate::store::positions::Stamped;
use crate::store::{Check, Entry, Scan, StoreError, Write};

/// Distinct classes a commit raises one by one; beyond it, coarser ones.
const MAX_CLASSES: usize = 16;

/// Raises the stamps of `$2` (distinct classes) of tenant `$1`.
pub(super) const BUMP: &str = "INSERT INTO scimlet_stamps(tenant, class, n)
     SELECT $1, c, 1 FROM unnest($2::bytea[]) AS c
     ON CONFLICT (tenant, class) DO UPDATE SET n = scimlet_stamps.n + 1";

/// The stamp of range `$2..$3` of tenant `$1`, whose start has the candidate classes `$4`.
const STAMP: &str = "SELECT coalesce(sum(n), 0)::bigint AS stamp FROM scimlet_stamps
     WHERE tenant = $1 AND (class = ANY($4::bytea[]) OR (class >= $2 AND class < $3))";

/// The stamp and, unless it is `$5` (the remembered count's), the count.
static COUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH s AS ({STAMP}) SELECT s.stamp, CASE WHEN s.stamp = $5::bigint THEN NULL ELSE
         (SELECT count(*) FROM scimlet_kv WHERE tenant = $1 AND key >= $2 AND key < $3) END
         FROM s"
    )
});

/// The stamp and a page of `$5..$6` (`LIMIT $7 OFFSET $8`), the page only if the stamp is `$9`
/// (an anchor's) or `$9` is null. Indexed by `descending * 2 + keys_only`.
static SCANS: LazyLock<[String; 4]> = LazyLock::new(|| {
    [(false, false), (false, true), (true, false), (true, true)].map(|(descending, keys_only)| {
        let order = if descending { "DESC" } else { "ASC" };
        let value = if keys_only { "" } else { ", value" };
        let outer = if keys_only { "" } else { ", k.value" };
        format!(
            "WITH s AS ({STAMP}) SELECT s.stamp, k.key, k.version{outer} FROM s
             LEFT JOIN LATERAL (SELECT key, version{value} FROM scimlet_kv
                 WHERE tenant = $1 AND key >= $5 AND key < $6
                 AND ($9::bigint IS NULL OR s.stamp = $9::bigint)
                 ORDER BY key {order} LIMIT $7 OFFSET $8) k ON true
             ORDER BY k.key {order}"
        )
    })
});

/// The class of `key` at `depth` (2: through its second `/`, 1: through its first, 0: the
/// tenant-wide class ""); a key with fewer slashes falls back to the coarser class.
fn class_at(key: &str, depth: usize) -> &str {
    let end = key
        .match_indices('/')
        .take(depth)
        .last()
        .map_or(0, |(i, _)| i + 1);
    &key[..end]
}

/// The classes a commit raises: those of the keys it adds or removes (a put to a key it
/// checks to exist moves nothing), at the finest depth that keeps them few.
pub(super) fn commit_classes<'a>(checks: &[Check], writes: &'a [Write]) -> Vec<&'a [u8]> {
    let existed = |k: &str| checks.iter().any(|c| c.key == k && c.version.is_some());
    let moved: Vec<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Put(k, _) if existed(k) => None,
            Write::Put(k, _) | Write::Delete(k) => Some(k.as_str()),
        })
        .collect();
    for depth in [2, 1, 0] {
        let classes: BTreeSet<&str> = moved.iter().map(|k| class_at(k, depth)).collect();
        if classes.len() <= MAX_CLASSES || depth == 0 {
            return classes.into_iter().map(str::as_bytes).collect();
        }
    }
    Vec::new()
}

/// The classes that cover `start` itself (its prefixes a class can be); the classes inside
/// the range are found by the range condition.
fn stamp_classes(start: &str) -> Vec<&[u8]> {
    let mut classes: Vec<&[u8]> = [0, 1, 2]
        .into_iter()
        .map(|depth| class_at(start, depth).as_bytes())
        .collect();
    classes.dedup();
    classes
}

impl PostgresBackend {
    fn memos(&self) -> MutexGuard<'_, Stamped> {
        // Memos only: a panic elsewhere cannot make them claim more than they hold.
        self.memos.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) fn count(
    backend: &PostgresBackend,
    tenant: &str,
    start: &str,
    end: &str,
) -> Result<u64, StoreError> {
    let remembered = backend.memos().count(tenant, start, end);
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(COUNT.as_str())?;
    let row = conn.client.query_one(
        &stmt,
        &[
            &tenant,
            &start.as_bytes(),
            &end.as_bytes(),
            &stamp_classes(start),
            &remembered.map(|(_, stamp)| stamp),
        ],
    )?;
    let stamp: i64 = row.get(0);
    match (row.get::<_, Option<i64>>(1), remembered) {
        (Some(n), _) => {
            let n = n.unsigned_abs();
            backend.memos().remember_count(tenant, start, end, stamp, n);
            Ok(n)
        }
        (None, Some((n, _))) => Ok(n),
        (None, None) => Err(StoreError::Unavailable("the count went missing".into())),
    }
}

/// A scan that skips rows: resumes from the nearest remembered position if the database
/// vouches it still holds, instead of walking every skipped row, and remembers where this
/// page starts and ends.
pub(super) fn scan_skipping(
    backend: &PostgresBackend,
    tenant: &str,
    scan: &Scan,
) -> Result<Vec<Entry>, StoreError> {
    let (s, e, desc) = (scan.start.as_str(), scan.end.as_str(), scan.descending);
    let anchor = backend.memos().anchor(tenant, s, e, desc, scan.skip);
    let (stamp, rows) = match anchor {
        Some((anchor, at)) => {
            let bound;
            let (start, end) = if desc {
                // Keys below `key\0` are the keys up to and including `key`.
                bound = format!("{}\u{0}", anchor.key);
                (s, bound.as_str())
            } else {
                (anchor.key.as_str(), e)
            };
            let skip = scan.skip - anchor.position;
            match page(backend, tenant, scan, start, end, skip, Some(at))? {
                (stamp, rows) if stamp == at => (stamp, rows),
                // The range changed since: walk from its start.
                _ => page(backend, tenant, scan, s, e, scan.skip, None)?,
            }
        }
        None => page(backend, tenant, scan, s, e, scan.skip, None)?,
    };
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let mut memos = backend.memos();
        memos.remember_anchor(tenant, s, e, desc, scan.skip, &first.key, stamp);
        let last_at = scan.skip + rows.len() as u64 - 1;
        memos.remember_anchor(tenant, s, e, desc, last_at, &last.key, stamp);
    }
    Ok(rows)
}

/// The range's stamp and the page of `start..end` after `skip` rows (none if `expected` is
/// given and the stamp is not it).
fn page(
    backend: &PostgresBackend,
    tenant: &str,
    scan: &Scan,
    start: &str,
    end: &str,
    skip: u64,
    expected: Option<i64>,
) -> Result<(i64, Vec<Entry>), StoreError> {
    let mut conn = backend.conn()?;
    let sql = &SCANS[usize::from(scan.descending) * 2 + usize::from(scan.keys_only)];
    let stmt = conn.stmt(sql.as_str())?;
    let skip = i64::try_from(skip).unwrap_or(i64::MAX);
    let rows = conn.client.query(
        &stmt,
        &[
            &tenant,
            &scan.start.as_bytes(),
            &scan.end.as_bytes(),
            &stamp_classes(&scan.start),
            &start.as_bytes(),
            &end.as_bytes(),
            &i64::from(scan.limit),
            &skip,
            &expected,
        ],
    )?;
    let stamp = rows.first().map_or(0, |r| r.get::<_, i64>(0));
    let entries = rows
        .iter()
        .filter_map(|r| entry(r, scan.keys_only).transpose())
        .collect::<Result<_, _>>()?;
    Ok((stamp, entries))
}

/// The entry of a page row; `None` for the row that only carries the stamp of an empty page.
fn entry(row: &Row, keys_only: bool) -> Result<Option<Entry>, StoreError> {
    let Some(key) = row.get::<_, Option<Vec<u8>>>(1) else {
        return Ok(None);
    };
    Ok(Some(Entry {
        key: key_from_sql(key)?,
        version: row.get::<_, i64>(2).unsigned_abs(),
        value: if keys_only { Vec::new() } else { row.get(3) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_the_key_through_its_second_slash_or_coarser() {
        assert_eq!(class_at("r/User/abc", 2), "r/User/");
        assert_eq!(class_at("r/User/abc", 1), "r/");
        assert_eq!(class_at("r/User/abc", 0), "");
        assert_eq!(class_at("counter", 2), "");
        assert_eq!(class_at("m/g1", 2), "m/");
        assert_eq!(
            stamp_classes("u/User/userName/ab"),
            [b"".as_slice(), b"u/", b"u/User/"]
        );
        assert_eq!(stamp_classes("n"), [b"".as_slice()]);
    }

    #[test]
    fn a_commit_raises_the_classes_of_the_keys_it_adds_or_removes() {
        let put = |k: &str| Write::Put(k.into(), vec![]);
        let writes = [
            put("r/User/1"),
            put("u/User/userName/a"),
            Write::Delete("m/g/u".into()),
            put("s/Group/g"),
        ];
        let checks = [Check {
            key: "s/Group/g".into(),
            version: Some(3),
        }];
        let got = commit_classes(&checks, &writes);
        assert_eq!(got, [b"m/g/".as_slice(), b"r/User/", b"u/User/"]);
        // A group of many members: one class per reverse edge would be many; `g/` instead.
        let many: Vec<Write> = (0..100)
            .flat_map(|i| [put(&format!("m/g/u{i}")), put(&format!("g/u{i}/g"))])
            .collect();
        assert_eq!(commit_classes(&[], &many), [b"g/".as_slice(), b"m/"]);
    }
}
