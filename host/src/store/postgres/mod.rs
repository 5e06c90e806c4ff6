//! PostgreSQL backend: every host of a deployment on one shared database.
//!
//! Blocking `postgres` clients in a bounded r2d2 pool ([`Backend`] is called off the async
//! runtime). `pool` opens connections and creates the schema, `commit` runs the atomic commits
//! (per-tenant counter row locked first, then checks, writes and events in one transaction),
//! `kv` serves the reads (`stamps` remembering counts and page positions that every host's
//! commits invalidate), `registry` keeps tenants and tokens, `events` the change feed and
//! `webhooks` the endpoints and their delivery state (leases on the database's clock); the
//! [`Backend`] impl here only delegates. Nothing relies on advisory locks, LISTEN/NOTIFY or
//! sequences, and every table is keyed by tenant first, so that the design carries over to the
//! PostgreSQL-wire distributed engines (see README "Scaling out").

mod commit;
mod events;
mod kv;
mod pool;
mod registry;
mod restore;
mod stamps;
#[cfg(test)]
pub(crate) mod testdb;
mod webhooks;

use std::sync::Mutex;
use std::time::Duration;

use crate::events::{Cursor, EventSignal, NewEvent, StoredEvent};

use super::positions::Stamped;
use super::{Backend, Check, Entry, Scan, StoreError, StoredToken, Tenant, TokenInfo, Write};
use pool::{init_schema, init_sql, Manager};

/// Tuning of [`PostgresBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections open at once; callers beyond it wait up to `connect_timeout`.
    pub pool_size: u32,
    /// Longest a statement may run before the database cancels it (`statement_timeout`).
    pub statement_timeout: Duration,
    /// Longest a statement waits for a row lock (`lock_timeout`), e.g. behind a tenant's
    /// commit held up by a stalled client.
    pub lock_timeout: Duration,
    /// Longest wait for a connection: to open one, or for one of the pool to be free. Then the
    /// call fails as unavailable (503 with Retry-After), so that a database outage does not
    /// pile requests up.
    pub connect_timeout: Duration,
    /// The schema the tables live in; `None` uses the connection's `search_path`.
    pub schema: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// A storage backend in a PostgreSQL database, shareable by any number of hosts.
pub struct PostgresBackend {
    /// `None` only while dropping (see the `Drop` impl).
    pool: Option<r2d2::Pool<Manager>>,
    signal: EventSignal,
    /// Counts and page positions, valid while the database's stamps say so (`stamps`).
    memos: Mutex<Stamped>,
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // `postgres::Error` shows a server's error as only "db error": say which.
        match e.as_db_error() {
            Some(db) => StoreError::Unavailable(format!(
                "database: {} ({})",
                db.message(),
                db.code().code()
            )),
            None => StoreError::Unavailable(format!("database: {e}")),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(format!("database unreachable: {e}"))
    }
}

impl PostgresBackend {
    /// Connects to `url` (a `postgres://` URL or `key=value` connection string) and creates
    /// the schema if needed; several hosts may do this at once.
    pub fn open(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        // The parser's message never repeats the URL, which may hold a password.
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("database-url: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let manager = Manager {
            config,
            init: init_sql(
                options.schema.as_deref(),
                options.statement_timeout,
                options.lock_timeout,
            ),
        };
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // Connection errors are reported to the caller as unavailable; r2d2 would log them
            // too, at error level, for every retry.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        let backend = Self {
            pool: Some(pool),
            signal: EventSignal::default(),
            memos: Mutex::new(Stamped::default()),
        };
        init_schema(&mut *backend.conn()?)?;
        Ok(backend)
    }

    /// A pooled connection; unavailable while the database cannot be reached.
    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        match &self.pool {
            Some(pool) => Ok(pool.get()?),
            None => Err(StoreError::Unavailable("the backend is closing".into())),
        }
    }
}

impl Drop for PostgresBackend {
    /// A blocking `postgres` client closes its connection by running a small runtime of its
    /// own, which panics on an async runtime's thread; the last holder of a backend is often a
    /// task there (`serve` stopping). The pool, with its clients, is then dropped on a plain
    /// thread.
    fn drop(&mut self) {
        let Some(pool) = self.pool.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// `scimlet migrate`: creates or upgrades the schema at `url` and answers its version.
pub fn migrate(url: &str, options: PgOptions) -> Result<i64, StoreError> {
    let backend = PostgresBackend::open(url, options)?;
    let mut conn = backend.conn()?;
    let row = conn
        .client
        .query_one("SELECT v FROM scimlet_meta WHERE k = 'schema'", &[])?;
    Ok(row.get(0))
}

/// Keys are stored as their UTF-8 bytes; anything else was not written by this backend.
fn key_from_sql(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Unavailable("a stored key is not UTF-8".into()))
}

impl Backend for PostgresBackend {
    fn get(&self, tenant: &str, key: &str) -> Result<Option<Entry>, StoreError> {
        kv::get(self, tenant, key)
    }

    fn get_many(&self, tenant: &str, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        kv::get_many(self, tenant, keys)
    }

    fn scan(&self, tenant: &str, scan: &Scan) -> Result<Vec<Entry>, StoreError> {
        kv::scan(self, tenant, scan)
    }

    fn count(&self, tenant: &str, start: &str, end: &str) -> Result<u64, StoreError> {
        kv::count(self, tenant, start, end)
    }

    fn commit_events(
        &self,
        tenant: &str,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<NewEvent>,
    ) -> Result<u64, StoreError> {
        commit::commit(self, tenant, checks, writes, events)
    }

    fn events_after(
        &self,
        tenant: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        events::after(self, tenant, after, limit)
    }

    fn event_head(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        events::head(self, tenant)
    }

    fn event_horizon(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        events::horizon(self, tenant)
    }

    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        events::prune(self, before_ms)
    }

    /// Notified after this host's commits only: readers also poll, which finds the commits
    /// of the other hosts (LISTEN/NOTIFY is not used: the distributed engines lack it).
    fn event_signal(&self) -> &EventSignal {
        &self.signal
    }

    fn create_tenant(&self, name: &str, policy: serde_json::Value) -> Result<Tenant, StoreError> {
        registry::create_tenant(self, name, policy)
    }

    fn tenant(&self, name_or_id: &str) -> Result<Option<Tenant>, StoreError> {
        registry::tenant(self, name_or_id)
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        registry::tenants(self)
    }

    fn set_policy(&self, tenant_id: &str, policy: serde_json::Value) -> Result<(), StoreError> {
        registry::set_policy(self, tenant_id, policy)
    }

    fn add_token(&self, tenant_id: &str, token_hash: [u8; 32]) -> Result<TokenInfo, StoreError> {
        registry::add_token(self, tenant_id, token_hash)
    }

    fn tokens(&self, tenant_id: &str) -> Result<Vec<TokenInfo>, StoreError> {
        registry::tokens(self, tenant_id)
    }

    fn revoke_token(&self, tenant_id: &str, token_id: &str) -> Result<(), StoreError> {
        registry::revoke_token(self, tenant_id, token_id)
    }

    fn tenant_for_token(&self, token_hash: &[u8; 32]) -> Result<Option<Tenant>, StoreError> {
        registry::tenant_for_token(self, token_hash)
    }

    fn webhooks(&self) -> Option<&dyn super::WebhookStore> {
        Some(self)
    }

    fn stored_tokens(&self, tenant_id: &str) -> Result<Vec<StoredToken>, StoreError> {
        restore::stored_tokens(self, tenant_id)
    }

    fn restore_tenant(&self, tenant: &Tenant, tokens: &[StoredToken]) -> Result<(), StoreError> {
        restore::restore_tenant(self, tenant, tokens)
    }

    fn restore_entries(&self, tenant: &str, entries: &[Entry]) -> Result<(), StoreError> {
        restore::restore_entries(self, tenant, entries)
    }

    fn restore_events(&self, tenant: &str, events: &[StoredEvent]) -> Result<(), StoreError> {
        restore::restore_events(self, tenant, events)
    }

    fn restore_sequence(
        &self,
        tenant: &str,
        seq: u64,
        horizon: Option<Cursor>,
    ) -> Result<(), StoreError> {
        restore::restore_sequence(self, tenant, seq, horizon)
    }
}

#[cfg(test)]
mod tests;
