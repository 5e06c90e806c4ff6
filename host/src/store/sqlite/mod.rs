//! SQLite backend: the embedded default. WAL journal, durable commits by default, one writer
//! connection (SQLite admits one writer at a time anyway, so a mutex is cheaper than letting
//! connections fight over the lock) and a pool of reader connections that read in parallel.
//!
//! `pool` opens and pools the connections, `commit` runs the grouped atomic commits,
//! `checkpoint` copies the WAL into the database file off the commit path, `kv` serves the
//! reads (with the remembered positions) and `registry` keeps tenants and tokens; the
//! [`Backend`] impl here only delegates.

mod checkpoint;
mod commit;
mod events;
mod kv;
mod pool;
mod registry;
mod restore;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::events::{Cursor, EventSignal, NewEvent, StoredEvent};
use crate::private_files;

use super::{
    positions::Positions, Backend, Check, Entry, Scan, StoreError, StoredToken, Tenant, TokenInfo,
    Write,
};
use commit::{current_seq, Queued};
use pool::{connect, init_schema};

/// Tuning of [`SqliteBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (default): a commit is on disk before it is acknowledged, so a crash or
    /// `kill -9` loses no acknowledged write. `false` uses `NORMAL`: still consistent after a
    /// crash, but the last commits before a power loss may be lost.
    pub synchronous_full: bool,
    /// Reader connections kept open between reads; more are opened under load and closed after.
    pub max_idle_readers: usize,
    /// How long a connection waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            max_idle_readers: 8,
            busy_timeout: Duration::from_millis(5000),
        }
    }
}

/// A storage backend in one SQLite file.
pub struct SqliteBackend {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Counts and positions of key ranges, so that totals and deep pages are not O(N) reads.
    positions: Mutex<Positions>,
    /// Commits waiting for the writer (group commit, see [`SqliteBackend::commit`]).
    queue: Mutex<Vec<Arc<Queued>>>,
    signal: EventSignal,
    /// Runs the WAL checkpoints the writer no longer runs inside its commits.
    checkpointer: checkpoint::Checkpointer,
    /// Declared last so that it is dropped after the connections: it deletes their files.
    _temp: Option<TempDir>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl SqliteBackend {
    /// Opens (creating if needed, with its parent directory) the database at `path` with
    /// default options.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed, with its parent directory) the database at `path` with
    /// `options`.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_files::create_dir(dir)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        // Before SQLite creates it with its default 0644; its journal files inherit the mode.
        private_files::create_file(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let mut writer = connect(path, &options, false)?;
        checkpoint::take_over(&writer)?;
        init_schema(&mut writer)?;
        let mut positions = Positions::default();
        positions.forget_all(current_seq(&writer)?);
        let checkpointer = checkpoint::Checkpointer::start(path.to_owned(), options.clone())?;
        Ok(Self {
            path: path.to_owned(),
            options,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            positions: Mutex::new(positions),
            queue: Mutex::new(Vec::new()),
            signal: EventSignal::default(),
            checkpointer,
            _temp: None,
        })
    }

    /// A private, throwaway database for tests. It lives in a fresh temporary directory rather
    /// than in SQLite's `:memory:`, because reader connections must share it and a shared-cache
    /// memory database would replace WAL's concurrency with table locks. Deleted on drop.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let temp = TempDir::new()?;
        let mut backend = Self::open_with(&temp.0.join("store.db"), SqliteOptions::default())?;
        backend._temp = Some(temp);
        Ok(backend)
    }
}

impl Backend for SqliteBackend {
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

    /// Group commit: see `commit::commit`.
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
        let reader = self.reader()?;
        events::after(&reader, tenant, after, limit)
    }

    fn event_head(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        let reader = self.reader()?;
        events::head(&reader, tenant)
    }

    fn event_horizon(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        let reader = self.reader()?;
        events::horizon(&reader, tenant)
    }

    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut writer = self.writer()?;
        events::prune(&mut writer, before_ms)
    }

    fn event_signal(&self) -> &EventSignal {
        &self.signal
    }

    fn webhooks(&self) -> Option<&dyn super::WebhookStore> {
        Some(self)
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

/// Versions, counts and the sequence are stored as SQLite's signed 64-bit integers, never negative.
fn u64_from_sql(v: i64) -> rusqlite::Result<u64> {
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

fn to_sql_int(n: u64) -> i64 {
    // Sequence numbers and offsets never reach 2^63; clamping keeps a hostile skip harmless.
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A temporary directory removed on drop; kept here so the host needs no `tempfile` at run time.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, StoreError> {
        let name = format!(
            "scimlet-store-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conformance, generate_token, hash_token};
    use serde_json::json;

    #[test]
    fn conforms() {
        conformance::run_all(&SqliteBackend::open_in_memory().unwrap());
    }

    #[test]
    fn conforms_with_synchronous_normal() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            synchronous_full: false,
            ..SqliteOptions::default()
        };
        let b = SqliteBackend::open_with(&dir.path().join("s.db"), options).unwrap();
        conformance::run_all(&b);
    }

    #[test]
    fn data_and_sequence_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        // A nested path: `open` creates the missing directories.
        let path = dir.path().join("nested/dir/store.db");
        let token = generate_token();
        let (tenant, last) = {
            let b = SqliteBackend::open(&path).unwrap();
            let tenant = b
                .create_tenant("acme", json!({"profile": "writer"}))
                .unwrap();
            b.add_token(&tenant.id, hash_token(&token)).unwrap();
            b.commit(&tenant.id, &[], &[Write::Put("a".into(), b"1".to_vec())])
                .unwrap();
            b.commit(&tenant.id, &[], &[Write::Put("z".into(), b"2".to_vec())])
                .unwrap();
            // The newest version leaves with this delete: a sequence derived from max(version)
            // would go back after reopening.
            let last = b
                .commit(&tenant.id, &[], &[Write::Delete("z".into())])
                .unwrap();
            (tenant, last)
        };
        let b = SqliteBackend::open(&path).unwrap();
        assert_eq!(b.tenant("acme").unwrap(), Some(tenant.clone()));
        assert_eq!(
            b.tenant_for_token(&hash_token(&token)).unwrap(),
            Some(tenant.clone())
        );
        let a = b.get(&tenant.id, "a").unwrap().unwrap();
        assert_eq!(a.value, b"1");
        assert!(a.version < last);
        assert_eq!(b.get(&tenant.id, "z").unwrap(), None);
        assert_eq!(b.commit(&tenant.id, &[], &[]).unwrap(), last);
        let next = b
            .commit(&tenant.id, &[], &[Write::Put("b".into(), Vec::new())])
            .unwrap();
        assert_eq!(next, last + 1);
    }
}
