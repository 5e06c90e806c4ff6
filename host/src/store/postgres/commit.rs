//! Atomic commits with checks, correct under every interleaving of any number of hosts.
//!
//! One short transaction per commit, in this order: lock and bump the tenant's counter row
//! (`INSERT … ON CONFLICT DO UPDATE … RETURNING`: a new tenant's row is created race-free),
//! then evaluate the checks (a statement started after the lock is held sees every earlier
//! commit of the tenant, even under READ COMMITTED), then the writes folded last-write-wins
//! per key, the stamps of the key classes it adds keys to or removes keys from (`stamps`), then
//! the events numbered by the counter. A failed check rolls back: the counter
//! is not bumped and nothing is written. Every writer locks the tenant's counter first and
//! only that tenant's rows after, so commits cannot deadlock one another.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use postgres::error::SqlState;

use super::pool::PgConn;
use super::{stamps, PostgresBackend};
use crate::events::NewEvent;
use crate::store::{check_commit, Check, StoreError, Write};

/// Attempts of a commit that the database aborted for serialization or a deadlock.
const MAX_ATTEMPTS: u32 = 12;

const LOCK: &str = "INSERT INTO scimlet_seq(tenant, seq) VALUES ($1, 1)
     ON CONFLICT (tenant) DO UPDATE SET seq = scimlet_seq.seq + 1 RETURNING seq";
const VERSIONS: &str =
    "SELECT key, version FROM scimlet_kv WHERE tenant = $1 AND key = ANY($2::bytea[])";
const UPSERT: &str = "INSERT INTO scimlet_kv(tenant, key, value, version)
     SELECT $1, w.k, w.v, $4 FROM unnest($2::bytea[], $3::bytea[]) AS w(k, v)
     ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, version = excluded.version";
const DELETE: &str = "DELETE FROM scimlet_kv WHERE tenant = $1 AND key = ANY($2::bytea[])";
const EVENTS: &str = "INSERT INTO scimlet_events
         (tenant, seq, idx, id, kind, time_ms, request_id, data, previous)
     SELECT $1, $2, (e.n - 1)::integer, e.id, e.kind, $3, e.request_id, e.data, e.previous
     FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
         WITH ORDINALITY AS e(id, kind, request_id, data, previous, n)";

/// A commit's writes after folding: each key once, with its last write.
struct Folded<'a> {
    put_keys: Vec<&'a [u8]>,
    put_values: Vec<&'a [u8]>,
    deletes: Vec<&'a [u8]>,
    /// The key classes whose stamps the commit raises (`stamps`).
    classes: Vec<&'a [u8]>,
}

fn fold<'a>(checks: &[Check], writes: &'a [Write]) -> Folded<'a> {
    // `ON CONFLICT DO UPDATE` cannot touch a row twice in one statement: one write per key.
    let mut last: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
    for w in writes {
        match w {
            Write::Put(k, v) => last.insert(k, Some(v)),
            Write::Delete(k) => last.insert(k, None),
        };
    }
    let mut folded = Folded {
        put_keys: Vec::new(),
        put_values: Vec::new(),
        deletes: Vec::new(),
        classes: stamps::commit_classes(checks, writes),
    };
    for (k, v) in last {
        match v {
            Some(v) => {
                folded.put_keys.push(k.as_bytes());
                folded.put_values.push(v);
            }
            None => folded.deletes.push(k.as_bytes()),
        }
    }
    folded
}

/// Why one attempt failed.
enum Failure {
    /// The database aborted it (serialization, deadlock) before it committed: run it again.
    Retry(postgres::Error),
    /// Final.
    Fail(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        if retryable(&e) {
            Failure::Retry(e)
        } else {
            Failure::Fail(e.into())
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Fail(e)
    }
}

fn retryable(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

pub(super) fn commit(
    backend: &PostgresBackend,
    tenant: &str,
    checks: Vec<Check>,
    writes: Vec<Write>,
    events: Vec<NewEvent>,
) -> Result<u64, StoreError> {
    check_commit(&checks, &writes, &events)?;
    let folded = fold(&checks, &writes);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut conn = backend.conn()?;
        match try_commit(&mut conn, tenant, &checks, &folded, &events) {
            Ok(seq) => {
                if !events.is_empty() {
                    backend.signal.notify();
                }
                return Ok(seq);
            }
            Err(Failure::Fail(e)) => return Err(e),
            Err(Failure::Retry(e)) if attempt >= MAX_ATTEMPTS => {
                return Err(StoreError::Unavailable(format!(
                    "commit aborted {attempt} times by the database: {e}"
                )))
            }
            Err(Failure::Retry(_)) => {
                // Spread the retries of colliding commits apart.
                let jitter = rand::random::<u64>() % (2 << attempt.min(6));
                std::thread::sleep(Duration::from_millis(jitter));
            }
        }
    }
}

fn try_commit(
    conn: &mut PgConn,
    tenant: &str,
    checks: &[Check],
    writes: &Folded<'_>,
    events: &[NewEvent],
) -> Result<u64, Failure> {
    let lock = conn.stmt(LOCK)?;
    let versions = conn.stmt(VERSIONS)?;
    let upsert = conn.stmt(UPSERT)?;
    let delete = conn.stmt(DELETE)?;
    let insert_events = conn.stmt(EVENTS)?;
    let bump = conn.stmt(stamps::BUMP)?;
    // Dropping `tx` on an early return rolls back: the counter bump goes with it.
    let mut tx = conn.client.transaction()?;
    let bumped: i64 = tx.query_one(&lock, &[&tenant])?.get(0);
    if !checks.is_empty() {
        let keys: Vec<&[u8]> = checks.iter().map(|c| c.key.as_bytes()).collect();
        let found: HashMap<Vec<u8>, i64> = tx
            .query(&versions, &[&tenant, &keys])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for check in checks {
            let current = found.get(check.key.as_bytes()).map(|v| v.unsigned_abs());
            if current != check.version {
                return Err(Failure::Fail(StoreError::Conflict));
            }
        }
    }
    let seq = bumped.unsigned_abs();
    if writes.put_keys.is_empty() && writes.deletes.is_empty() {
        // Nothing to write: the counter stays where it was.
        return Ok(seq - 1);
    }
    if !writes.put_keys.is_empty() {
        tx.execute(
            &upsert,
            &[&tenant, &writes.put_keys, &writes.put_values, &bumped],
        )?;
    }
    if !writes.deletes.is_empty() {
        tx.execute(&delete, &[&tenant, &writes.deletes])?;
    }
    if !writes.classes.is_empty() {
        // In the commit's transaction: a reader sees the keys moved and the stamps raised
        // together, or neither.
        tx.execute(&bump, &[&tenant, &writes.classes])?;
    }
    if !events.is_empty() {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.name()).collect();
        let requests: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
        let data: Vec<&str> = events.iter().map(|e| e.event.data.as_str()).collect();
        let previous: Vec<Option<&str>> =
            events.iter().map(|e| e.event.previous.as_deref()).collect();
        let time_ms = crate::store::unix_now_millis();
        tx.execute(
            &insert_events,
            &[
                &tenant, &bumped, &time_ms, &ids, &kinds, &requests, &data, &previous,
            ],
        )?;
    }
    match tx.commit() {
        Ok(()) => Ok(seq),
        // The database refused the commit itself (e.g. a serialization failure found at
        // COMMIT): it did not happen, so it may run again.
        Err(e) if retryable(&e) => Err(Failure::Retry(e)),
        Err(e) if e.as_db_error().is_some() => Err(Failure::Fail(e.into())),
        // The connection went away while COMMIT was in flight: it may or may not have
        // committed. Running it again could apply it twice (and store its events twice).
        Err(e) => Err(Failure::Fail(StoreError::Unavailable(format!(
            "the database connection was lost while committing; the outcome is unknown: {e}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_the_last_write_of_each_key() {
        let writes = vec![
            Write::Put("b".into(), b"1".to_vec()),
            Write::Delete("a".into()),
            Write::Put("a".into(), b"2".to_vec()),
            Write::Delete("b".into()),
            Write::Put("c".into(), b"3".to_vec()),
            Write::Put("c".into(), b"4".to_vec()),
        ];
        let f = fold(&[], &writes);
        assert_eq!(f.put_keys, [b"a".as_slice(), b"c"]);
        assert_eq!(f.put_values, [b"2".as_slice(), b"4"]);
        assert_eq!(f.deletes, [b"b".as_slice()]);
    }
}
