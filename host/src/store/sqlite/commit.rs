//! Atomic commits with checks, grouped: concurrent commits share one transaction (and one
//! fsync), each in a savepoint of its own, and the sequence number they are stamped with.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{checkpoint, events, to_sql_int, u64_from_sql, SqliteBackend};
use crate::events::NewEvent;
use crate::store::{check_commit, Check, StoreError, Write};

/// Group commit: the commit joins the queue and waits for the writer; whoever holds the
/// writer next commits everything queued in one transaction. Under concurrent writes one
/// fsync acknowledges a batch instead of one commit, and nothing is acknowledged before the
/// transaction that holds it is on disk.
pub(super) fn commit(
    backend: &SqliteBackend,
    tenant: &str,
    checks: Vec<Check>,
    writes: Vec<Write>,
    events: Vec<NewEvent>,
) -> Result<u64, StoreError> {
    check_commit(&checks, &writes, &events)?;
    let mine = Queued::new(tenant, checks, writes, events);
    backend
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(mine.clone());
    // Not `backend.writer()`: its rollback could fail after `mine` joined the queue, and then
    // another holder might still commit it. `run_batch` rolls back a stale transaction.
    let mut writer = backend
        .writer
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(outcome) = mine.take() {
        // The writer's previous holder committed it along with its own.
        return outcome;
    }
    let batch = std::mem::take(&mut *backend.queue.lock().unwrap_or_else(PoisonError::into_inner));
    backend.commit_batch(&mut writer, &batch);
    drop(writer);
    mine.take()
        .unwrap_or_else(|| Err(StoreError::Unavailable("commit was not run".into())))
}

impl SqliteBackend {
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
        // Forget what an earlier write on this thread reported: only this commit's report counts.
        checkpoint::take_wal_pages();
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
        // The WAL is copied into the database file by the checkpointer, never inside a commit.
        self.checkpointer.committed(checkpoint::take_wal_pages());
        if batch.iter().any(|q| !q.events.is_empty()) {
            self.signal.notify();
        }
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
pub(super) fn current_seq(conn: &Connection) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT v FROM meta WHERE k = 'seq'")?;
    let v: i64 = stmt.query_row([], |r| r.get(0))?;
    Ok(u64_from_sql(v)?)
}

/// A commit waiting in [`SqliteBackend::commit`]'s queue.
pub(super) struct Queued {
    tenant: String,
    checks: Vec<Check>,
    writes: Vec<Write>,
    events: Vec<NewEvent>,
    outcome: Mutex<Option<Result<u64, StoreError>>>,
}

impl Queued {
    fn new(
        tenant: &str,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<NewEvent>,
    ) -> Arc<Queued> {
        Arc::new(Queued {
            tenant: tenant.to_string(),
            checks,
            writes,
            events,
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
    events::insert(&sp, &q.tenant, *seq + 1, &q.events)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conformance, Backend};

    #[test]
    fn a_group_commit_settles_each_commit_on_its_own_terms() {
        let b = SqliteBackend::open_in_memory().unwrap();
        let queued = |checks, writes| Queued::new("t", checks, writes, Vec::new());
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
    fn concurrent_increments_lose_nothing() {
        conformance::concurrent_increments(Arc::new(SqliteBackend::open_in_memory().unwrap()));
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
}
