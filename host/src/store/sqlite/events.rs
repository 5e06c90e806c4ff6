//! The change feed in SQLite: events inserted by the commit that made the change (same
//! savepoint, same transaction), read by cursor, pruned by age.
//!
//! SQLite has one writer at a time and the sequence number is taken inside the writer's
//! transaction, so commits become visible in sequence order: a reader never sees a later
//! event without every earlier one.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{to_sql_int, u64_from_sql};
use crate::events::{Cursor, EventKind, NewEvent, StoredEvent};
use crate::store::{unix_now_millis, StoreError};

/// Stores a commit's events at sequence number `seq`.
pub(super) fn insert(
    conn: &Connection,
    tenant: &str,
    seq: u64,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events(tenant, seq, idx, id, kind, time_ms, request_id, data, previous)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let (seq, time_ms) = (to_sql_int(seq), unix_now_millis());
    for (idx, e) in (0i64..).zip(events) {
        stmt.execute(params![
            tenant,
            seq,
            idx,
            e.id,
            e.event.kind.name(),
            time_ms,
            e.request_id,
            e.event.data,
            e.event.previous,
        ])?;
    }
    Ok(())
}

/// The tenant's events after `after`, at most `limit`.
pub(super) fn after(
    conn: &Connection,
    tenant: &str,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (seq, idx) = match after {
        Some(c) => (to_sql_int(c.seq), i64::from(c.index)),
        None => (-1, -1),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT seq, idx, id, kind, time_ms, request_id, data, previous FROM events
         WHERE tenant = ?1 AND (seq > ?2 OR (seq = ?2 AND idx > ?3))
         ORDER BY seq, idx LIMIT ?4",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![tenant, seq, idx, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, idx, id, kind, time_ms, request_id, data, previous) = row?;
        let kind = EventKind::from_name(&kind)
            .ok_or_else(|| StoreError::Unavailable(format!("unknown event kind {kind:?}")))?;
        out.push(StoredEvent {
            cursor: cursor(seq, idx)?,
            id,
            kind,
            time_ms,
            request_id,
            data,
            previous,
        });
    }
    Ok(out)
}

fn cursor(seq: i64, idx: i64) -> Result<Cursor, StoreError> {
    Ok(Cursor {
        seq: u64_from_sql(seq)?,
        index: u32::try_from(idx)
            .map_err(|_| StoreError::Unavailable(format!("event index {idx} out of range")))?,
    })
}

/// The newest event of the tenant.
pub(super) fn head(conn: &Connection, tenant: &str) -> Result<Option<Cursor>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, idx FROM events WHERE tenant = ?1 ORDER BY seq DESC, idx DESC LIMIT 1",
    )?;
    let found: Option<(i64, i64)> = stmt
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    found.map(|(s, i)| cursor(s, i)).transpose()
}

/// The newest pruned event of the tenant.
pub(super) fn horizon(conn: &Connection, tenant: &str) -> Result<Option<Cursor>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT seq, idx FROM event_horizons WHERE tenant = ?1")?;
    let found: Option<(i64, i64)> = stmt
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    found.map(|(s, i)| cursor(s, i)).transpose()
}

/// Removes every event older than `before_ms`, moving each tenant's horizon to the newest
/// event it removed, in one transaction.
pub(super) fn prune(conn: &mut Connection, before_ms: i64) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // A commit's events share one time, so the newest removed event is the last one of the
    // newest commit removed.
    tx.execute(
        "INSERT INTO event_horizons(tenant, seq, idx)
         SELECT tenant, seq, MAX(idx) FROM events
         WHERE (tenant, seq) IN
             (SELECT tenant, MAX(seq) FROM events WHERE time_ms < ?1 GROUP BY tenant)
         GROUP BY tenant, seq
         ON CONFLICT(tenant) DO UPDATE SET seq = excluded.seq, idx = excluded.idx
         WHERE excluded.seq > event_horizons.seq",
        [before_ms],
    )?;
    let removed = tx.execute("DELETE FROM events WHERE time_ms < ?1", [before_ms])?;
    tx.commit()?;
    Ok(removed as u64)
}
