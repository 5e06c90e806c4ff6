//! Reads of the key-value space: `get`, `get_many`, `scan` and `count`.
//!
//! Counts and scans that skip rows go through the remembered counts and positions of
//! `stamps`, which the commits of every host sharing the database invalidate; the
//! `(tenant, key)` primary key keeps the rest one index range walk each.

use std::collections::HashMap;

use postgres::Row;

use super::{key_from_sql, stamps, PostgresBackend};
use crate::store::{check_key, check_range, Entry, Scan, StoreError};

const GET: &str = "SELECT value, version FROM scimlet_kv WHERE tenant = $1 AND key = $2";
const GET_MANY: &str =
    "SELECT key, value, version FROM scimlet_kv WHERE tenant = $1 AND key = ANY($2::bytea[])";

/// The scan statement for each direction and projection; keys-only scans never read `value`.
fn scan_sql(descending: bool, keys_only: bool) -> &'static str {
    match (descending, keys_only) {
        (false, false) => "SELECT key, version, value FROM scimlet_kv WHERE tenant = $1 AND key >= $2 AND key < $3 ORDER BY key ASC LIMIT $4 OFFSET $5",
        (true, false) => "SELECT key, version, value FROM scimlet_kv WHERE tenant = $1 AND key >= $2 AND key < $3 ORDER BY key DESC LIMIT $4 OFFSET $5",
        (false, true) => "SELECT key, version FROM scimlet_kv WHERE tenant = $1 AND key >= $2 AND key < $3 ORDER BY key ASC LIMIT $4 OFFSET $5",
        (true, true) => "SELECT key, version FROM scimlet_kv WHERE tenant = $1 AND key >= $2 AND key < $3 ORDER BY key DESC LIMIT $4 OFFSET $5",
    }
}

pub(super) fn get(
    backend: &PostgresBackend,
    tenant: &str,
    key: &str,
) -> Result<Option<Entry>, StoreError> {
    check_key(key)?;
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(GET)?;
    let row = conn.client.query_opt(&stmt, &[&tenant, &key.as_bytes()])?;
    Ok(row.map(|r| Entry {
        key: key.to_owned(),
        value: r.get(0),
        version: r.get::<_, i64>(1).unsigned_abs(),
    }))
}

pub(super) fn get_many(
    backend: &PostgresBackend,
    tenant: &str,
    keys: &[String],
) -> Result<Vec<Option<Entry>>, StoreError> {
    keys.iter().try_for_each(|k| check_key(k))?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(GET_MANY)?;
    let wanted: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    // One statement: every slot comes from the same snapshot.
    let rows = conn.client.query(&stmt, &[&tenant, &wanted])?;
    let mut found: HashMap<String, Entry> = HashMap::with_capacity(rows.len());
    for row in rows {
        let entry = Entry {
            key: key_from_sql(row.get(0))?,
            value: row.get(1),
            version: row.get::<_, i64>(2).unsigned_abs(),
        };
        found.insert(entry.key.clone(), entry);
    }
    // A key asked for twice gets its entry in both slots.
    Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
}

pub(super) fn scan(
    backend: &PostgresBackend,
    tenant: &str,
    scan: &Scan,
) -> Result<Vec<Entry>, StoreError> {
    check_range(&scan.start, &scan.end)?;
    if scan.limit == 0 {
        return Ok(Vec::new());
    }
    if scan.skip > 0 {
        return stamps::scan_skipping(backend, tenant, scan);
    }
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(scan_sql(scan.descending, scan.keys_only))?;
    let skip = i64::try_from(scan.skip).unwrap_or(i64::MAX);
    let rows = conn.client.query(
        &stmt,
        &[
            &tenant,
            &scan.start.as_bytes(),
            &scan.end.as_bytes(),
            &i64::from(scan.limit),
            &skip,
        ],
    )?;
    rows.iter()
        .map(|row| scan_row(row, scan.keys_only))
        .collect()
}

fn scan_row(row: &Row, keys_only: bool) -> Result<Entry, StoreError> {
    Ok(Entry {
        key: key_from_sql(row.get(0))?,
        version: row.get::<_, i64>(1).unsigned_abs(),
        value: if keys_only { Vec::new() } else { row.get(2) },
    })
}

pub(super) fn count(
    backend: &PostgresBackend,
    tenant: &str,
    start: &str,
    end: &str,
) -> Result<u64, StoreError> {
    check_range(start, end)?;
    stamps::count(backend, tenant, start, end)
}
