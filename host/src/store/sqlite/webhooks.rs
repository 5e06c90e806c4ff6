//! Webhook endpoints and their delivery state in SQLite (table `webhooks`, created with the
//! schema in `pool.rs`).
//!
//! Leases are taken and checked against SQLite's clock (`unixepoch('subsec')`), the database's
//! time, as PostgreSQL's `now()` would be: hosts sharing a database need not agree on theirs.
//! Every write of a lease holder names its epoch, so a holder that lost the lease is fenced out.

use std::time::Duration;

use rusqlite::{params, OptionalExtension, Row};

use super::{to_sql_int, u64_from_sql, SqliteBackend};
use crate::events::{Cursor, EventKind};
use crate::store::webhooks::{millis, Failure, Lease, Webhook, WebhookStore};
use crate::store::StoreError;

/// The database's clock, Unix milliseconds.
const NOW: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

const COLUMNS: &str = "tenant, id, url, types, secret, created_at, disabled, cursor_seq, \
     cursor_idx, attempts, next_attempt_ms, last_error, failing_since_ms, lease_owner, \
     lease_expiry_ms, lease_epoch";

/// The lease is held: same owner, same epoch, not expired.
const HELD: &str = "tenant = ?1 AND id = ?2 AND lease_owner = ?3 AND lease_epoch = ?4 \
     AND lease_expiry_ms > CAST(unixepoch('subsec') * 1000 AS INTEGER)";

fn types_text(types: &[EventKind]) -> String {
    types.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

fn row(r: &Row<'_>) -> rusqlite::Result<Webhook> {
    let types: String = r.get(3)?;
    let cursor = match (r.get::<_, Option<i64>>(7)?, r.get::<_, Option<i64>>(8)?) {
        (Some(seq), Some(idx)) => Some(Cursor {
            seq: u64_from_sql(seq)?,
            index: u32::try_from(idx)
                .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(8, idx))?,
        }),
        _ => None,
    };
    Ok(Webhook {
        tenant: r.get(0)?,
        id: r.get(1)?,
        url: r.get(2)?,
        // Names this binary wrote; one it does not know (a newer binary's) is not delivered.
        types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .filter_map(EventKind::from_name)
            .collect(),
        secret: r.get(4)?,
        created_at: r.get(5)?,
        disabled: r.get(6)?,
        cursor,
        attempts: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(u32::MAX),
        next_attempt_ms: r.get(10)?,
        last_error: r.get(11)?,
        failing_since_ms: r.get(12)?,
        lease_owner: r.get(13)?,
        lease_expiry_ms: r.get(14)?,
        lease_epoch: u64_from_sql(r.get(15)?)?,
    })
}

fn cursor_params(c: Option<Cursor>) -> (Option<i64>, Option<i64>) {
    match c {
        Some(c) => (Some(to_sql_int(c.seq)), Some(i64::from(c.index))),
        None => (None, None),
    }
}

fn not_found(tenant: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("webhook {id} of tenant {tenant}"))
}

impl WebhookStore for SqliteBackend {
    fn add_webhook(&self, w: &Webhook) -> Result<(), StoreError> {
        let writer = self.writer()?;
        let (seq, idx) = cursor_params(w.cursor);
        let sql = format!(
            "INSERT INTO webhooks({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        );
        let done = writer.prepare_cached(&sql)?.execute(params![
            w.tenant,
            w.id,
            w.url,
            types_text(&w.types),
            w.secret,
            w.created_at,
            w.disabled,
            seq,
            idx,
            w.attempts,
            w.next_attempt_ms,
            w.last_error,
            w.failing_since_ms,
            w.lease_owner,
            w.lease_expiry_ms,
            to_sql_int(w.lease_epoch),
        ]);
        match done {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::AlreadyExists(format!("webhook {}", w.id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError> {
        let reader = self.reader()?;
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE tenant = ?1 ORDER BY rowid");
        let mut stmt = reader.prepare_cached(&sql)?;
        let rows = stmt.query_map([tenant], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        let reader = self.reader()?;
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE tenant = ?1 AND id = ?2");
        let mut stmt = reader.prepare_cached(&sql)?;
        Ok(stmt.query_row([tenant, id], row).optional()?)
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let writer = self.writer()?;
        let n = writer
            .prepare_cached("DELETE FROM webhooks WHERE tenant = ?1 AND id = ?2")?
            .execute([tenant, id])?;
        if n == 0 {
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
        let writer = self.writer()?;
        let (seq, idx) = cursor_params(cursor);
        let n = writer
            .prepare_cached(
                "UPDATE webhooks SET cursor_seq = ?3, cursor_idx = ?4, disabled = NULL, \
                 attempts = 0, next_attempt_ms = 0, last_error = NULL, failing_since_ms = 0, \
                 lease_expiry_ms = 0, \
                 lease_epoch = lease_epoch + 1 WHERE tenant = ?1 AND id = ?2",
            )?
            .execute(params![tenant, id, seq, idx])?;
        if n == 0 {
            return Err(not_found(tenant, id));
        }
        Ok(())
    }

    fn due_webhooks(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let reader = self.reader()?;
        let sql = format!(
            "SELECT tenant, id FROM webhooks WHERE disabled IS NULL \
             AND next_attempt_ms <= {NOW} AND lease_expiry_ms <= {NOW} ORDER BY tenant, id LIMIT ?1"
        );
        let mut stmt = reader.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn claim_webhook(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Webhook>, StoreError> {
        let writer = self.writer()?;
        // One conditional statement: of two hosts racing, exactly one matches the row.
        let sql = format!(
            "UPDATE webhooks SET lease_owner = ?3, lease_expiry_ms = {NOW} + ?4, \
             lease_epoch = lease_epoch + 1 \
             WHERE tenant = ?1 AND id = ?2 AND disabled IS NULL \
             AND next_attempt_ms <= {NOW} AND lease_expiry_ms <= {NOW} RETURNING {COLUMNS}"
        );
        let mut stmt = writer.prepare_cached(&sql)?;
        Ok(stmt
            .query_row(params![tenant, id, owner, millis(ttl)], row)
            .optional()?)
    }

    fn advance_webhook(
        &self,
        lease: &Lease,
        cursor: Option<Cursor>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let writer = self.writer()?;
        let sql = format!(
            "UPDATE webhooks SET cursor_seq = ?5, cursor_idx = ?6, attempts = 0, \
             last_error = NULL, failing_since_ms = 0, lease_expiry_ms = {NOW} + ?7 WHERE {HELD}"
        );
        let (seq, idx) = cursor_params(cursor);
        let n = writer.prepare_cached(&sql)?.execute(params![
            lease.tenant,
            lease.id,
            lease.owner,
            to_sql_int(lease.epoch),
            seq,
            idx,
            millis(ttl),
        ])?;
        Ok(n == 1)
    }

    fn fail_webhook(&self, lease: &Lease, f: &Failure) -> Result<bool, StoreError> {
        let writer = self.writer()?;
        let sql = format!(
            "UPDATE webhooks SET attempts = ?5, next_attempt_ms = {NOW} + ?6, last_error = ?7, \
             disabled = ?8, lease_expiry_ms = 0, failing_since_ms = CASE \
             WHEN failing_since_ms = 0 THEN {NOW} ELSE failing_since_ms END WHERE {HELD}"
        );
        let n = writer.prepare_cached(&sql)?.execute(params![
            lease.tenant,
            lease.id,
            lease.owner,
            to_sql_int(lease.epoch),
            f.attempts,
            millis(f.retry_in),
            f.error,
            f.disable,
        ])?;
        Ok(n == 1)
    }

    fn release_webhook(&self, lease: &Lease) -> Result<bool, StoreError> {
        let writer = self.writer()?;
        let sql = format!("UPDATE webhooks SET lease_expiry_ms = 0 WHERE {HELD}");
        let n = writer.prepare_cached(&sql)?.execute(params![
            lease.tenant,
            lease.id,
            lease.owner,
            to_sql_int(lease.epoch),
        ])?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::webhooks::conformance;

    #[test]
    fn conforms() {
        conformance::run_all(&SqliteBackend::open_in_memory().unwrap());
    }

    /// Two backends on one file, as two hosts on one database: a lease claimed through one is
    /// refused to the other until released, and the state written by one is read by the other.
    #[test]
    fn two_handles_on_one_file_share_leases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scimlet.db");
        let (a, b) = (
            SqliteBackend::open(&path).unwrap(),
            SqliteBackend::open(&path).unwrap(),
        );
        let w = Webhook::new(
            "t_1".into(),
            "wh_1".into(),
            "http://x".into(),
            vec![],
            vec![0],
            0,
            None,
        );
        a.add_webhook(&w).unwrap();
        let ttl = Duration::from_secs(30);
        let got = a.claim_webhook("t_1", "wh_1", "a", ttl).unwrap().unwrap();
        assert!(b.claim_webhook("t_1", "wh_1", "b", ttl).unwrap().is_none());
        let lease = Lease {
            tenant: "t_1".into(),
            id: "wh_1".into(),
            owner: "a".into(),
            epoch: got.lease_epoch,
        };
        let c = Cursor { seq: 3, index: 2 };
        assert!(a.advance_webhook(&lease, Some(c), ttl).unwrap());
        assert!(a.release_webhook(&lease).unwrap());
        let got = b.claim_webhook("t_1", "wh_1", "b", ttl).unwrap().unwrap();
        assert_eq!(got.cursor, Some(c));
        assert!(!a.advance_webhook(&lease, None, ttl).unwrap());
    }
}
