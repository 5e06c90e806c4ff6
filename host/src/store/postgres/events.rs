//! The change feed in PostgreSQL: a transactional outbox. Events are inserted by the commit
//! that made the change (same transaction) at the tenant's commit number, which commits take
//! under the tenant's counter row lock: a commit becomes visible only after every earlier one
//! of its tenant, so a reader that sees an event has seen every earlier one and the cursor has
//! no gaps. (A global `bigserial` would not: its numbers are taken at insert and become visible
//! at commit, out of order.)

use postgres::Row;

use super::PostgresBackend;
use crate::events::{Cursor, EventKind, StoredEvent};
use crate::store::StoreError;

const AFTER: &str = "SELECT seq, idx, id, kind, time_ms, request_id, data, previous
     FROM scimlet_events WHERE tenant = $1 AND (seq, idx) > ($2, $3)
     ORDER BY seq, idx LIMIT $4";
const HEAD: &str = "SELECT seq, idx FROM scimlet_events WHERE tenant = $1
     ORDER BY seq DESC, idx DESC LIMIT 1";
const HORIZON: &str = "SELECT seq, idx FROM scimlet_event_horizons WHERE tenant = $1";
/// One statement: the rows deleted are exactly the ones the horizons are moved past.
const PRUNE: &str = "WITH gone AS (
         DELETE FROM scimlet_events WHERE time_ms < $1 RETURNING tenant, seq, idx
     ), newest AS (
         SELECT DISTINCT ON (tenant) tenant, seq, idx FROM gone
         ORDER BY tenant, seq DESC, idx DESC
     ), moved AS (
         INSERT INTO scimlet_event_horizons(tenant, seq, idx) SELECT tenant, seq, idx FROM newest
         ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, idx = excluded.idx
         WHERE (excluded.seq, excluded.idx) > (scimlet_event_horizons.seq, scimlet_event_horizons.idx)
     )
     SELECT count(*) FROM gone";

pub(super) fn after(
    backend: &PostgresBackend,
    tenant: &str,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (seq, idx): (i64, i32) = match after {
        Some(c) => (
            i64::try_from(c.seq).unwrap_or(i64::MAX),
            i32::try_from(c.index).unwrap_or(i32::MAX),
        ),
        None => (-1, -1),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(AFTER)?;
    let rows = conn.client.query(&stmt, &[&tenant, &seq, &idx, &limit])?;
    rows.iter().map(event_row).collect()
}

fn event_row(r: &Row) -> Result<StoredEvent, StoreError> {
    let kind: String = r.get(3);
    let kind = EventKind::from_name(&kind)
        .ok_or_else(|| StoreError::Unavailable(format!("unknown event kind {kind:?}")))?;
    Ok(StoredEvent {
        cursor: cursor(r.get(0), r.get(1))?,
        id: r.get(2),
        kind,
        time_ms: r.get(4),
        request_id: r.get(5),
        data: r.get(6),
        previous: r.get(7),
    })
}

fn cursor(seq: i64, idx: i32) -> Result<Cursor, StoreError> {
    let bad = || StoreError::Unavailable(format!("event position {seq}/{idx} out of range"));
    Ok(Cursor {
        seq: u64::try_from(seq).map_err(|_| bad())?,
        index: u32::try_from(idx).map_err(|_| bad())?,
    })
}

pub(super) fn head(backend: &PostgresBackend, tenant: &str) -> Result<Option<Cursor>, StoreError> {
    position(backend, HEAD, tenant)
}

pub(super) fn horizon(
    backend: &PostgresBackend,
    tenant: &str,
) -> Result<Option<Cursor>, StoreError> {
    position(backend, HORIZON, tenant)
}

fn position(
    backend: &PostgresBackend,
    sql: &'static str,
    tenant: &str,
) -> Result<Option<Cursor>, StoreError> {
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(sql)?;
    let row = conn.client.query_opt(&stmt, &[&tenant])?;
    row.map(|r| cursor(r.get(0), r.get(1))).transpose()
}

pub(super) fn prune(backend: &PostgresBackend, before_ms: i64) -> Result<u64, StoreError> {
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(PRUNE)?;
    let n: i64 = conn.client.query_one(&stmt, &[&before_ms])?.get(0);
    Ok(n.unsigned_abs())
}
