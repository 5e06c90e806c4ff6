//! SQLite backend: the embedded default. WAL journal, durable commits by default, one writer
//! connection (SQLite admits one writer at a time anyway, so a mutex is cheaper than letting
//! connections fight over the lock) and a pool of reader connections that read in parallel.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::private_files;
use subtle::ConstantTimeEq;

use super::{
    check_commit, check_key, check_policy, check_range, check_tenant_name, new_tenant_id,
    new_token_id, positions::Positions, unix_now, Backend, Check, Entry, Scan, StoreError, Tenant,
    TokenInfo, Write,
};

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
INSERT OR IGNORE INTO meta(k, v) VALUES ('seq', 0);
";

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

    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_files::create_dir(dir)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        // Before SQLite creates it with its default 0644; its journal files inherit the mode.
        private_files::create_file(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let mut writer = connect(path, &options, false)?;
        init_schema(&mut writer)?;
        let mut positions = Positions::default();
        positions.forget_all(current_seq(&writer)?);
        Ok(Self {
            path: path.to_owned(),
            options,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            positions: Mutex::new(positions),
            queue: Mutex::new(Vec::new()),
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

    /// The writer connection. A poisoned mutex only means a panic while it was held; a
    /// transaction left open by that panic is rolled back before the connection is reused.
    fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        Ok(conn)
    }

    /// A reader connection from the pool, or a new one when all are busy.
    fn reader(&self) -> Result<Reader<'_>, StoreError> {
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

    /// Commits every queued commit in one transaction: one fsync makes the whole batch durable.
    /// Each commit runs in a savepoint of its own, so one whose checks fail (or whose writes
    /// fail) changes nothing and does not affect the others; each gets its own sequence number,
    /// in queue order, exactly as if they had been committed one after the other.
    fn commit_batch(&self, writer: &mut Connection, batch: &[Arc<Queued>]) {
        match self.run_batch(writer, batch) {
            Ok(outcomes) => {
                for (queued, outcome) in batch.iter().zip(outcomes) {
                    queued.settle(outcome);
                }
            }
            Err(e) => {
                for queued in batch {
                    queued.settle(Err(e.clone()));
                }
            }
        }
    }

    fn run_batch(
        &self,
        writer: &mut Connection,
        batch: &[Arc<Queued>],
    ) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
        if !writer.is_autocommit() {
            writer.execute_batch("ROLLBACK")?;
        }
        // IMMEDIATE takes the write lock up front, so the checks and the writes see one state.
        // An early return drops `tx`, which rolls back.
        let mut tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let first = current_seq(&tx)?;
        let mut seq = first;
        let outcomes: Vec<Result<u64, StoreError>> = batch
            .iter()
            .map(|q| commit_one(&mut tx, q, &mut seq))
            .collect();
        if seq == first {
            return Ok(outcomes);
        }
        tx.commit()?;
        // Still under the writer's lock, so commits are accounted for in order.
        let mut positions = self.positions();
        let mut before = first;
        for (q, outcome) in batch.iter().zip(&outcomes) {
            if let Ok(at) = outcome {
                if *at > before {
                    positions.committed(&q.tenant, q.moved_keys(), before, *at);
                    before = *at;
                }
            }
        }
        Ok(outcomes)
    }

    fn positions(&self) -> MutexGuard<'_, Positions> {
        // Memos only: a panic elsewhere cannot make them claim more than they hold.
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The memos may be used from a snapshot at `seq` once every commit up to it is accounted
    /// for: when `seq` is ahead of this process's commits and none of them is in flight, the
    /// commits in between came from another process, and what they wrote is unknown.
    fn positions_at(&self, seq: u64) -> Result<MutexGuard<'_, Positions>, StoreError> {
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

    fn idle_readers(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The pool is a plain list; a panic elsewhere cannot leave it inconsistent.
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens one connection with the PRAGMAs every connection needs.
fn connect(path: &Path, options: &SqliteOptions, reader: bool) -> Result<Connection, StoreError> {
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
fn init_schema(conn: &mut Connection) -> Result<(), StoreError> {
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
struct Reader<'a> {
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

/// Versions, counts and the sequence are stored as SQLite's signed 64-bit integers, never negative.
fn u64_from_sql(v: i64) -> rusqlite::Result<u64> {
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

fn to_sql_int(n: u64) -> i64 {
    // Sequence numbers and offsets never reach 2^63; clamping keeps a hostile skip harmless.
    i64::try_from(n).unwrap_or(i64::MAX)
}

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

/// Current version of `key`, for a commit's checks.
fn current_version(conn: &Connection, tenant: &str, key: &str) -> Result<Option<u64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT version FROM kv WHERE tenant = ?1 AND key = ?2")?;
    let v: Option<i64> = stmt
        .query_row(params![tenant, key], |r| r.get(0))
        .optional()?;
    Ok(v.map(u64_from_sql).transpose()?)
}

fn checks_hold(conn: &Connection, tenant: &str, checks: &[Check]) -> Result<bool, StoreError> {
    for check in checks {
        if current_version(conn, tenant, &check.key)? != check.version {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The last sequence number handed out. Read inside the writer's transaction rather than cached,
/// so another process writing the same file (the CLI next to a server) cannot make it go back.
fn current_seq(conn: &Connection) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT v FROM meta WHERE k = 'seq'")?;
    let v: i64 = stmt.query_row([], |r| r.get(0))?;
    Ok(u64_from_sql(v)?)
}

/// A commit waiting in [`SqliteBackend::commit`]'s queue.
struct Queued {
    tenant: String,
    checks: Vec<Check>,
    writes: Vec<Write>,
    outcome: Mutex<Option<Result<u64, StoreError>>>,
}

impl Queued {
    fn new(tenant: &str, checks: Vec<Check>, writes: Vec<Write>) -> Arc<Queued> {
        Arc::new(Queued {
            tenant: tenant.to_string(),
            checks,
            writes,
            outcome: Mutex::new(None),
        })
    }

    fn settle(&self, outcome: Result<u64, StoreError>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }

    fn take(&self) -> Option<Result<u64, StoreError>> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Keys whose write adds or removes a key: a put to a key checked to exist (it held a
    /// version) replaces a value and moves no position.
    fn moved_keys(&self) -> impl Iterator<Item = &str> + Clone {
        let existed = |k: &str| {
            self.checks
                .iter()
                .any(|c| c.key == k && c.version.is_some())
        };
        self.writes.iter().filter_map(move |w| match w {
            Write::Put(k, _) if existed(k) => None,
            Write::Put(k, _) | Write::Delete(k) => Some(k.as_str()),
        })
    }
}

/// One commit of a batch, in a savepoint: its checks hold and all its writes land, or nothing.
fn commit_one(
    tx: &mut rusqlite::Transaction<'_>,
    q: &Queued,
    seq: &mut u64,
) -> Result<u64, StoreError> {
    let sp = tx.savepoint()?;
    if !checks_hold(&sp, &q.tenant, &q.checks)? {
        return Err(StoreError::Conflict);
    }
    if q.writes.is_empty() {
        return Ok(*seq);
    }
    apply(&sp, &q.tenant, &q.writes, *seq + 1)?;
    sp.commit()?;
    *seq += 1;
    Ok(*seq)
}

fn apply(conn: &Connection, tenant: &str, writes: &[Write], seq: u64) -> Result<(), StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO kv(tenant, key, value, version) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(tenant, key) DO UPDATE SET value = excluded.value, version = excluded.version",
    )?;
    let mut delete = conn.prepare_cached("DELETE FROM kv WHERE tenant = ?1 AND key = ?2")?;
    let seq = to_sql_int(seq);
    for write in writes {
        match write {
            Write::Put(k, v) => upsert.execute(params![tenant, k, v, seq])?,
            Write::Delete(k) => delete.execute(params![tenant, k])?,
        };
    }
    conn.prepare_cached("UPDATE meta SET v = ?1 WHERE k = 'seq'")?
        .execute([seq])?;
    Ok(())
}

const TENANT_COLUMNS: &str = "id, name, policy, created_at";

fn tenant_row(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    let policy: String = row.get(2)?;
    let policy = serde_json::from_str(&policy).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Tenant {
        id: row.get(0)?,
        name: row.get(1)?,
        policy,
        created_at: row.get(3)?,
    })
}

fn tenant_by(conn: &Connection, column: &str, value: &str) -> Result<Option<Tenant>, StoreError> {
    // `column` is one of two literals below, never input.
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE {column} = ?1");
    let tenant = conn
        .prepare_cached(&sql)?
        .query_row([value], tenant_row)
        .optional()?;
    Ok(tenant)
}

fn tenant_exists(conn: &Connection, tenant_id: &str) -> Result<bool, StoreError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")?
        .query_row([tenant_id], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

fn not_found_tenant(tenant_id: &str) -> StoreError {
    StoreError::NotFound(format!("tenant {tenant_id:?}"))
}

fn token_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        created_at: row.get(2)?,
        revoked: row.get(3)?,
    })
}

impl Backend for SqliteBackend {
    fn get(&self, tenant: &str, key: &str) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        get_one(&*self.reader()?, tenant, key)
    }

    fn get_many(&self, tenant: &str, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        keys.iter().try_for_each(|k| check_key(k))?;
        let reader = self.reader()?;
        // One read transaction, so that all slots come from the same snapshot.
        let tx = reader.unchecked_transaction()?;
        keys.iter().map(|k| get_one(&tx, tenant, k)).collect()
    }

    fn scan(&self, tenant: &str, scan: &Scan) -> Result<Vec<Entry>, StoreError> {
        check_range(&scan.start, &scan.end)?;
        if scan.skip > 0 && scan.limit > 0 {
            return self.scan_from_anchor(tenant, scan);
        }
        let reader = self.reader()?;
        scan_rows(&reader, tenant, scan, &scan.start, &scan.end, scan.skip)
    }

    fn count(&self, tenant: &str, start: &str, end: &str) -> Result<u64, StoreError> {
        check_range(start, end)?;
        let reader = self.reader()?;
        let tx = reader.unchecked_transaction()?;
        let seq = current_seq(&tx)?;
        if let Some(n) = self.positions_at(seq)?.count(tenant, start, end, seq) {
            return Ok(n);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT count(*) FROM kv WHERE tenant = ?1 AND key >= ?2 AND key < ?3",
        )?;
        let n: i64 = stmt.query_row(params![tenant, start, end], |r| r.get(0))?;
        let n = u64_from_sql(n)?;
        self.positions().remember_count(tenant, start, end, seq, n);
        Ok(n)
    }

    /// Group commit: the commit joins the queue and waits for the writer; whoever holds the
    /// writer next commits everything queued in one transaction. Under concurrent writes one
    /// fsync acknowledges a batch instead of one commit, and nothing is acknowledged before the
    /// transaction that holds it is on disk.
    fn commit(&self, tenant: &str, checks: &[Check], writes: &[Write]) -> Result<u64, StoreError> {
        check_commit(checks, writes)?;
        let mine = Queued::new(tenant, checks.to_vec(), writes.to_vec());
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mine.clone());
        // Not `self.writer()`: its rollback could fail after `mine` joined the queue, and then
        // another holder might still commit it. `run_batch` rolls back a stale transaction.
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(outcome) = mine.take() {
            // The writer's previous holder committed it along with its own.
            return outcome;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        self.commit_batch(&mut writer, &batch);
        drop(writer);
        mine.take()
            .unwrap_or_else(|| Err(StoreError::Unavailable("commit was not run".into())))
    }

    fn create_tenant(&self, name: &str, policy: serde_json::Value) -> Result<Tenant, StoreError> {
        check_tenant_name(name)?;
        check_policy(&policy)?;
        let mut writer = self.writer()?;
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tenant_by(&tx, "name", name)?.is_some() {
            return Err(StoreError::AlreadyExists(format!("tenant {name:?}")));
        }
        let tenant = Tenant {
            id: new_tenant_id(),
            name: name.to_owned(),
            policy,
            created_at: unix_now(),
        };
        tx.prepare_cached(
            "INSERT INTO tenants(id, name, policy, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            tenant.id,
            tenant.name,
            tenant.policy.to_string(),
            tenant.created_at
        ])?;
        tx.commit()?;
        Ok(tenant)
    }

    fn tenant(&self, name_or_id: &str) -> Result<Option<Tenant>, StoreError> {
        let reader = self.reader()?;
        // Names never have the shape of an id (see `check_tenant_name`), so the order is moot.
        match tenant_by(&reader, "id", name_or_id)? {
            Some(t) => Ok(Some(t)),
            None => tenant_by(&reader, "name", name_or_id),
        }
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let reader = self.reader()?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY name");
        let mut stmt = reader.prepare_cached(&sql)?;
        let rows = stmt.query_map([], tenant_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_policy(&self, tenant_id: &str, policy: serde_json::Value) -> Result<(), StoreError> {
        check_policy(&policy)?;
        let writer = self.writer()?;
        let changed = writer
            .prepare_cached("UPDATE tenants SET policy = ?2 WHERE id = ?1")?
            .execute(params![tenant_id, policy.to_string()])?;
        if changed == 0 {
            return Err(not_found_tenant(tenant_id));
        }
        Ok(())
    }

    fn add_token(&self, tenant_id: &str, token_hash: [u8; 32]) -> Result<TokenInfo, StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !tenant_exists(&tx, tenant_id)? {
            return Err(not_found_tenant(tenant_id));
        }
        let taken = tx
            .prepare_cached("SELECT 1 FROM tokens WHERE token_hash = ?1")?
            .query_row([&token_hash[..]], |_| Ok(()))
            .optional()?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists("token".into()));
        }
        let info = TokenInfo {
            id: new_token_id(),
            tenant_id: tenant_id.to_owned(),
            created_at: unix_now(),
            revoked: false,
        };
        tx.prepare_cached(
            "INSERT INTO tokens(id, tenant_id, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            info.id,
            info.tenant_id,
            &token_hash[..],
            info.created_at
        ])?;
        tx.commit()?;
        Ok(info)
    }

    fn tokens(&self, tenant_id: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let reader = self.reader()?;
        let tx = reader.unchecked_transaction()?;
        if !tenant_exists(&tx, tenant_id)? {
            return Err(not_found_tenant(tenant_id));
        }
        // rowid follows insertion, so this lists oldest first even within one second.
        let mut stmt = tx.prepare_cached(
            "SELECT id, tenant_id, created_at, revoked FROM tokens WHERE tenant_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([tenant_id], token_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_token(&self, tenant_id: &str, token_id: &str) -> Result<(), StoreError> {
        let writer = self.writer()?;
        let changed = writer
            .prepare_cached("UPDATE tokens SET revoked = 1 WHERE tenant_id = ?1 AND id = ?2")?
            .execute(params![tenant_id, token_id])?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("token {token_id:?}")));
        }
        Ok(())
    }

    fn tenant_for_token(&self, token_hash: &[u8; 32]) -> Result<Option<Tenant>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader.prepare_cached(
            "SELECT t.id, t.name, t.policy, t.created_at, k.token_hash
             FROM tokens k JOIN tenants t ON t.id = k.tenant_id
             WHERE k.token_hash = ?1 AND k.revoked = 0",
        )?;
        let found = stmt
            .query_row([&token_hash[..]], |row| {
                Ok((tenant_row(row)?, row.get::<_, Vec<u8>>(4)?))
            })
            .optional()?;
        // The index lookup compares hashes of a 256-bit secret, so its timing reveals nothing
        // usable; the constant-time comparison here guards against a lookup that ever
        // matched loosely (collation, truncation) rather than against timing.
        Ok(found
            .filter(|(_, stored)| bool::from(stored.as_slice().ct_eq(&token_hash[..])))
            .map(|(tenant, _)| tenant))
    }
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
    use super::super::{conformance, generate_token, hash_token};
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn a_group_commit_settles_each_commit_on_its_own_terms() {
        let b = SqliteBackend::open_in_memory().unwrap();
        let queued = |checks, writes| Queued::new("t", checks, writes);
        let put = |k: &str| Write::Put(k.into(), b"v".to_vec());
        let absent = |k: &str| Check {
            key: k.into(),
            version: None,
        };
        let batch = vec![
            queued(vec![absent("a")], vec![put("a")]),
            // Sees the first commit of its batch: "a" exists now.
            queued(vec![absent("a")], vec![put("b")]),
            queued(vec![], vec![]),
            queued(vec![absent("c")], vec![put("c"), Write::Delete("a".into())]),
        ];
        let mut writer = b.writer.lock().unwrap();
        b.commit_batch(&mut writer, &batch);
        drop(writer);
        let outcomes: Vec<_> = batch.iter().map(|q| q.take().unwrap()).collect();
        assert_eq!(outcomes[0].as_ref().unwrap(), &1);
        assert!(matches!(outcomes[1], Err(StoreError::Conflict)));
        assert_eq!(
            outcomes[2].as_ref().unwrap(),
            &1,
            "nothing to write: the current seq"
        );
        assert_eq!(outcomes[3].as_ref().unwrap(), &2);
        assert!(
            b.get("t", "b").unwrap().is_none(),
            "the refused commit wrote nothing"
        );
        assert!(b.get("t", "a").unwrap().is_none());
        assert_eq!(b.get("t", "c").unwrap().unwrap().version, 2);
        assert_eq!(b.count("t", "a", "z").unwrap(), 1);
    }

    #[test]
    fn conforms() {
        conformance::run_all(&SqliteBackend::open_in_memory().unwrap());
    }

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
    fn concurrent_increments_lose_nothing() {
        conformance::concurrent_increments(Arc::new(SqliteBackend::open_in_memory().unwrap()));
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

    #[test]
    fn two_handles_on_one_file_share_the_sequence() {
        // The CLI may write the file while a server has it open.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let (a, b) = (
            SqliteBackend::open(&path).unwrap(),
            SqliteBackend::open(&path).unwrap(),
        );
        let v1 = a
            .commit("t", &[], &[Write::Put("k".into(), vec![1])])
            .unwrap();
        let v2 = b
            .commit("t", &[], &[Write::Put("k".into(), vec![2])])
            .unwrap();
        assert!(v2 > v1);
        assert_eq!(a.get("t", "k").unwrap().unwrap().version, v2);
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

/// Counts and deep pages served from remembered positions agree with a plain walk of the
/// rows, whatever this process and another one sharing the file commit in between.
#[cfg(test)]
mod positions_tests {
    use super::*;
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
