//! Webhook endpoints and their delivery state in PostgreSQL (table `scimlet_webhooks`, keyed
//! by tenant first like every table here).
//!
//! Several hosts deliver from one database. Exactly one holds an endpoint's lease at a time:
//! a claim is one conditional `UPDATE` against the database's clock (`clock_timestamp()`, so
//! the hosts' clocks need not agree), which of two racing hosts exactly one matches (the
//! second re-evaluates the condition on the updated row under READ COMMITTED and finds the
//! lease held; under SERIALIZABLE it gets a serialization failure, retried here). Every later
//! write of the holder names the lease's epoch, so a holder that lost the lease (it stalled
//! past the expiry and another host claimed the endpoint) moves nothing (fencing). No advisory
//! locks, no `SKIP LOCKED`, no LISTEN/NOTIFY.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::Row;

use super::PostgresBackend;
use crate::events::{Cursor, EventKind};
use crate::store::webhooks::{millis, Failure, Lease, Webhook, WebhookStore};
use crate::store::StoreError;

/// The database's clock, Unix milliseconds.
const NOW: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

const COLUMNS: &str = "tenant, id, url, types, secret, created_at, disabled, cursor_seq, \
     cursor_idx, attempts, next_attempt_ms, last_error, failing_since_ms, lease_owner, \
     lease_expiry_ms, lease_epoch";

/// Attempts of a statement the database aborted for serialization or a deadlock.
const MAX_ATTEMPTS: u32 = 8;

/// The statements, built once with the clock expression spliced in.
struct Sql {
    add: String,
    list: String,
    one: String,
    claim: String,
    advance: String,
    fail: String,
    release: String,
    due: String,
}

static SQL: std::sync::LazyLock<Sql> = std::sync::LazyLock::new(|| {
    // The lease is held: same owner, same epoch, not expired.
    let held = format!(
        "tenant = $1 AND id = $2 AND lease_owner = $3 AND lease_epoch = $4 \
         AND lease_expiry_ms > {NOW}"
    );
    Sql {
        add: format!(
            "INSERT INTO scimlet_webhooks({COLUMNS}, created_us) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) \
             ON CONFLICT DO NOTHING RETURNING id"
        ),
        list: format!(
            "SELECT {COLUMNS} FROM scimlet_webhooks WHERE tenant = $1 ORDER BY created_us, id"
        ),
        one: format!("SELECT {COLUMNS} FROM scimlet_webhooks WHERE tenant = $1 AND id = $2"),
        claim: format!(
            "UPDATE scimlet_webhooks SET lease_owner = $3, lease_expiry_ms = {NOW} + $4, \
             lease_epoch = lease_epoch + 1 \
             WHERE tenant = $1 AND id = $2 AND disabled IS NULL \
             AND next_attempt_ms <= {NOW} AND lease_expiry_ms <= {NOW} RETURNING {COLUMNS}"
        ),
        advance: format!(
            "UPDATE scimlet_webhooks SET cursor_seq = $5, cursor_idx = $6, attempts = 0, \
             last_error = NULL, failing_since_ms = 0, lease_expiry_ms = {NOW} + $7 WHERE {held} \
             RETURNING id"
        ),
        fail: format!(
            "UPDATE scimlet_webhooks SET attempts = $5, next_attempt_ms = {NOW} + $6, \
             last_error = $7, disabled = $8, lease_expiry_ms = 0, failing_since_ms = CASE \
             WHEN failing_since_ms = 0 THEN {NOW} ELSE failing_since_ms END WHERE {held} \
             RETURNING id"
        ),
        release: format!(
            "UPDATE scimlet_webhooks SET lease_expiry_ms = 0 WHERE {held} RETURNING id"
        ),
        due: format!(
            "SELECT tenant, id FROM scimlet_webhooks WHERE disabled IS NULL \
             AND next_attempt_ms <= {NOW} AND lease_expiry_ms <= {NOW} \
             ORDER BY tenant, id LIMIT $1"
        ),
    }
});

const REMOVE: &str = "DELETE FROM scimlet_webhooks WHERE tenant = $1 AND id = $2";
const REPOSITION: &str = "UPDATE scimlet_webhooks SET cursor_seq = $3, cursor_idx = $4, \
     disabled = NULL, attempts = 0, next_attempt_ms = 0, last_error = NULL, \
     failing_since_ms = 0, lease_expiry_ms = 0, lease_epoch = lease_epoch + 1 \
     WHERE tenant = $1 AND id = $2";

fn types_text(types: &[EventKind]) -> String {
    types.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn row(r: &Row) -> Result<Webhook, StoreError> {
    let types: String = r.get(3);
    let cursor = match (r.get::<_, Option<i64>>(7), r.get::<_, Option<i32>>(8)) {
        (Some(seq), Some(idx)) => Some(Cursor {
            seq: seq.unsigned_abs(),
            index: idx.unsigned_abs(),
        }),
        _ => None,
    };
    Ok(Webhook {
        tenant: r.get(0),
        id: r.get(1),
        url: r.get(2),
        // Names this binary wrote; one it does not know (a newer binary's) is not delivered.
        types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .filter_map(EventKind::from_name)
            .collect(),
        secret: r.get(4),
        created_at: r.get(5),
        disabled: r.get(6),
        cursor,
        attempts: r.get::<_, i32>(9).unsigned_abs(),
        next_attempt_ms: r.get(10),
        last_error: r.get(11),
        failing_since_ms: r.get(12),
        lease_owner: r.get(13),
        lease_expiry_ms: r.get(14),
        lease_epoch: r.get::<_, i64>(15).unsigned_abs(),
    })
}

fn cursor_params(c: Option<Cursor>) -> (Option<i64>, Option<i32>) {
    match c {
        Some(c) => (
            Some(int(c.seq)),
            Some(i32::try_from(c.index).unwrap_or(i32::MAX)),
        ),
        None => (None, None),
    }
}

fn not_found(tenant: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("webhook {id} of tenant {tenant}"))
}

fn retryable(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

impl PostgresBackend {
    /// Runs `sql` (one statement, its own transaction) and answers its rows; retried when the
    /// database aborted it for serialization or a deadlock (it then did not happen).
    fn webhook_query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.conn()?;
            let stmt = conn.stmt(sql)?;
            match conn.client.query(&stmt, params) {
                Ok(rows) => return Ok(rows),
                Err(e) if retryable(&e) && attempt < MAX_ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(u64::from(attempt) * 5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl WebhookStore for PostgresBackend {
    fn add_webhook(&self, w: &Webhook) -> Result<(), StoreError> {
        let (seq, idx) = cursor_params(w.cursor);
        let attempts = i32::try_from(w.attempts).unwrap_or(i32::MAX);
        let added = self.webhook_query(
            SQL.add.as_str(),
            &[
                &w.tenant,
                &w.id,
                &w.url,
                &types_text(&w.types),
                &w.secret,
                &w.created_at,
                &w.disabled,
                &seq,
                &idx,
                &attempts,
                &w.next_attempt_ms,
                &w.last_error,
                &w.failing_since_ms,
                &w.lease_owner,
                &w.lease_expiry_ms,
                &int(w.lease_epoch),
            ],
        )?;
        if added.is_empty() {
            return Err(StoreError::AlreadyExists(format!("webhook {}", w.id)));
        }
        Ok(())
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError> {
        let rows = self.webhook_query(SQL.list.as_str(), &[&tenant])?;
        rows.iter().map(row).collect()
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        let rows = self.webhook_query(SQL.one.as_str(), &[&tenant, &id])?;
        rows.first().map(row).transpose()
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let stmt = conn.stmt(REMOVE)?;
        if conn.client.execute(&stmt, &[&tenant, &id])? == 0 {
            return Err(not_found(tenant, id));
        }
        Ok(())
    }

    fn reposition_webhook(
        &self,
        tenant: &str,
        id: &str,
        cursor: Option<Cursor>,
    ) -> Result<(), StoreError> {
        let (seq, idx) = cursor_params(cursor);
        let mut conn = self.conn()?;
        let stmt = conn.stmt(REPOSITION)?;
        if conn.client.execute(&stmt, &[&tenant, &id, &seq, &idx])? == 0 {
            return Err(not_found(tenant, id));
        }
        Ok(())
    }

    fn due_webhooks(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.webhook_query(SQL.due.as_str(), &[&limit])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn claim_webhook(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Webhook>, StoreError> {
        let rows = self.webhook_query(SQL.claim.as_str(), &[&tenant, &id, &owner, &millis(ttl)])?;
        rows.first().map(row).transpose()
    }

    fn advance_webhook(
        &self,
        lease: &Lease,
        cursor: Option<Cursor>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (seq, idx) = cursor_params(cursor);
        let rows = self.webhook_query(
            SQL.advance.as_str(),
            &[
                &lease.tenant,
                &lease.id,
                &lease.owner,
                &int(lease.epoch),
                &seq,
                &idx,
                &millis(ttl),
            ],
        )?;
        Ok(rows.len() == 1)
    }

    fn fail_webhook(&self, lease: &Lease, f: &Failure) -> Result<bool, StoreError> {
        let attempts = i32::try_from(f.attempts).unwrap_or(i32::MAX);
        let rows = self.webhook_query(
            SQL.fail.as_str(),
            &[
                &lease.tenant,
                &lease.id,
                &lease.owner,
                &int(lease.epoch),
                &attempts,
                &millis(f.retry_in),
                &f.error,
                &f.disable,
            ],
        )?;
        Ok(rows.len() == 1)
    }

    fn release_webhook(&self, lease: &Lease) -> Result<bool, StoreError> {
        let rows = self.webhook_query(
            SQL.release.as_str(),
            &[&lease.tenant, &lease.id, &lease.owner, &int(lease.epoch)],
        )?;
        Ok(rows.len() == 1)
    }
}
