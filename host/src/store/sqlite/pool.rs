//! Connections: opening them (PRAGMAs, schema), the one writer, and the pool of readers.

use std::ops::Deref;
use std::path::Path;
use std::sync::{MutexGuard, PoisonError};

use rusqlite::{Connection, TransactionBehavior};

use super::{SqliteBackend, SqliteOptions};
use crate::store::StoreError;

/// Bumped when the schema changes incompatibly, so an old binary refuses a newer file.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    policy TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_by_tenant ON tokens(tenant_id);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    tenant TEXT NOT NULL,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    data TEXT NOT NULL,
    previous TEXT,
    PRIMARY KEY (tenant, seq, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events(time_ms);
CREATE TABLE IF NOT EXISTS event_horizons (
    tenant TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    types TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    disabled TEXT,
    cursor_seq INTEGER,
    cursor_idx INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    failing_since_ms INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expiry_ms INTEGER NOT NULL DEFAULT 0,
    lease_epoch INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id)
);
INSERT OR IGNORE INTO meta(k, v) VALUES ('seq', 0);
";

impl SqliteBackend {
    /// The writer connection. A poisoned mutex only means a panic while it was held; a
    /// transaction left open by that panic is rolled back before the connection is reused.
    pub(super) fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        Ok(conn)
    }

    /// A reader connection from the pool, or a new one when all are busy.
    pub(super) fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let idle = self.idle_readers().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path, &self.options, true)?,
        };
        Ok(Reader {
            backend: self,
            conn: Some(conn),
        })
    }

    pub(super) fn idle_readers(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The pool is a plain list; a panic elsewhere cannot leave it inconsistent.
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens one connection with the PRAGMAs every connection needs.
pub(super) fn connect(
    path: &Path,
    options: &SqliteOptions,
    reader: bool,
) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(options.busy_timeout)?;
    // Enough room for every distinct statement of this module, so none is ever re-prepared.
    conn.set_prepared_statement_cache_capacity(64);
    let sync = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if reader {
        // Belt and braces: a reader that tried to write would bypass the writer's transaction.
        conn.pragma_update(None, "query_only", "ON")?;
    } else {
        // WAL is a property of the file; the writer sets it once and readers inherit it.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "journal_mode is {mode}, WAL expected"
            )));
        }
    }
    Ok(conn)
}

/// Creates the tables if needed and refuses a file written by a newer schema.
pub(super) fn init_schema(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE, so that two processes opening a new file at once do not interleave.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    tx.execute(
        "INSERT OR IGNORE INTO meta(k, v) VALUES ('schema', ?1)",
        [SCHEMA_VERSION],
    )?;
    let found: i64 = tx.query_row("SELECT v FROM meta WHERE k = 'schema'", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "database schema {found} is newer than this binary's {SCHEMA_VERSION}"
        )));
    }
    tx.commit()?;
    Ok(())
}

/// A pooled reader; returned to the pool on drop.
pub(super) struct Reader<'a> {
    backend: &'a SqliteBackend,
    conn: Option<Connection>,
}

impl Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection still inside a transaction would pin an old snapshot: close it instead.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self.backend.idle_readers();
        if idle.len() < self.backend.options.max_idle_readers {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Backend, Write};
    use std::sync::Arc;

    /// What the server opens (`SqliteBackend::open`, default options) commits durably: the
    /// writer journals in WAL mode with `synchronous=FULL`, so an acknowledged commit survives
    /// power loss, not only a process crash (which NORMAL would survive too).
    #[test]
    fn the_writer_runs_wal_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let b = SqliteBackend::open(&dir.path().join("scimlet.db")).unwrap();
        let writer = b.writer().unwrap();
        let mode: String = writer
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let synchronous: i64 = writer
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "synchronous=FULL is 2 (NORMAL is 1)");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(SqliteBackend::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE meta SET v = 99 WHERE k = 'schema'", [])
            .unwrap();
        drop(conn);
        assert!(matches!(
            SqliteBackend::open(&path),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn a_panic_inside_a_transaction_does_not_wedge_the_writer() {
        let b = Arc::new(SqliteBackend::open_in_memory().unwrap());
        let b2 = Arc::clone(&b);
        let joined = std::thread::spawn(move || {
            let conn = b2.writer.lock().unwrap();
            conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO kv VALUES ('t', 'half', x'00', 1);")
                .unwrap();
            panic!("simulated panic mid-commit");
        })
        .join();
        assert!(joined.is_err());
        let v = b
            .commit("t", &[], &[Write::Put("k".into(), vec![1])])
            .unwrap();
        assert_eq!(b.get("t", "k").unwrap().unwrap().version, v);
        assert_eq!(
            b.get("t", "half").unwrap(),
            None,
            "the half-done write rolled back"
        );
    }

    #[test]
    fn reader_pool_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            max_idle_readers: 2,
            ..SqliteOptions::default()
        };
        let b = SqliteBackend::open_with(&dir.path().join("s.db"), options).unwrap();
        let held: Vec<_> = (0..5).map(|_| b.reader().unwrap()).collect();
        drop(held);
        assert_eq!(b.idle_readers().len(), 2);
        assert_eq!(b.count("t", "", "z").unwrap(), 0);
    }
}
