//! Moving a deployment in (`scimlet copy`): tenants, token hashes, entries and events written
//! as they were read elsewhere, ids, versions and cursors kept.

use rusqlite::{params, TransactionBehavior};

use super::commit::current_seq;
use super::registry::{tenant_exists, token_row};
use super::{to_sql_int, SqliteBackend};
use crate::events::{Cursor, StoredEvent};
use crate::store::{
    check_key, check_policy, check_tenant_name, Entry, StoreError, StoredToken, Tenant,
};

pub(super) fn stored_tokens(
    backend: &SqliteBackend,
    tenant_id: &str,
) -> Result<Vec<StoredToken>, StoreError> {
    let reader = backend.reader()?;
    if !tenant_exists(&reader, tenant_id)? {
        return Err(StoreError::NotFound(format!("tenant {tenant_id:?}")));
    }
    let mut stmt = reader.prepare_cached(
        "SELECT id, tenant_id, created_at, revoked, token_hash FROM tokens
         WHERE tenant_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([tenant_id], |r| {
        let hash: Vec<u8> = r.get(4)?;
        Ok((token_row(r)?, hash))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (info, hash) = row?;
        let hash = <[u8; 32]>::try_from(hash.as_slice())
            .map_err(|_| StoreError::Unavailable(format!("token {} has a bad hash", info.id)))?;
        out.push(StoredToken { info, hash });
    }
    Ok(out)
}

pub(super) fn restore_tenant(
    backend: &SqliteBackend,
    tenant: &Tenant,
    tokens: &[StoredToken],
) -> Result<(), StoreError> {
    check_tenant_name(&tenant.name)?;
    check_policy(&tenant.policy)?;
    let mut writer = backend.writer()?;
    let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO tenants(id, name, policy, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            tenant.id,
            tenant.name,
            tenant.policy.to_string(),
            tenant.created_at
        ])?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "tenant {:?}",
            tenant.name
        )));
    }
    {
        // In the source's order: rowid keeps `tokens()` oldest first.
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO tokens(id, tenant_id, token_hash, created_at, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for t in tokens {
            let n = insert.execute(params![
                t.info.id,
                tenant.id,
                &t.hash[..],
                t.info.created_at,
                t.info.revoked
            ])?;
            if n == 0 {
                // Dropping `tx` rolls the tenant back too.
                return Err(StoreError::AlreadyExists("token".into()));
            }
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn restore_entries(
    backend: &SqliteBackend,
    tenant: &str,
    entries: &[Entry],
) -> Result<(), StoreError> {
    entries.iter().try_for_each(|e| check_key(&e.key))?;
    let mut writer = backend.writer()?;
    let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO kv(tenant, key, value, version) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(tenant, key) DO UPDATE SET value = excluded.value,
                 version = excluded.version",
        )?;
        for e in entries {
            upsert.execute(params![tenant, e.key, e.value, to_sql_int(e.version)])?;
        }
    }
    let seq = current_seq(&tx)?;
    tx.commit()?;
    // Keys came and went without a commit: remembered counts and positions are stale.
    backend.positions().forget_all(seq);
    Ok(())
}

pub(super) fn restore_events(
    backend: &SqliteBackend,
    tenant: &str,
    events: &[StoredEvent],
) -> Result<(), StoreError> {
    let mut writer = backend.writer()?;
    let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events(tenant, seq, idx, id, kind, time_ms, request_id, data, previous)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for e in events {
            insert.execute(params![
                tenant,
                to_sql_int(e.cursor.seq),
                e.cursor.index,
                e.id,
                e.kind.name(),
                e.time_ms,
                e.request_id,
                e.data,
                e.previous
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn restore_sequence(
    backend: &SqliteBackend,
    tenant: &str,
    seq: u64,
    horizon: Option<Cursor>,
) -> Result<(), StoreError> {
    let mut writer = backend.writer()?;
    let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // One sequence for every tenant here: raising it for one raises it for all, harmlessly.
    tx.prepare_cached("UPDATE meta SET v = max(v, ?1) WHERE k = 'seq'")?
        .execute([to_sql_int(seq)])?;
    if let Some(h) = horizon {
        tx.prepare_cached(
            "INSERT INTO event_horizons(tenant, seq, idx) VALUES (?1, ?2, ?3)
             ON CONFLICT(tenant) DO UPDATE SET seq = excluded.seq, idx = excluded.idx
             WHERE (excluded.seq, excluded.idx) > (event_horizons.seq, event_horizons.idx)",
        )?
        .execute(params![tenant, to_sql_int(h.seq), h.index])?;
    }
    let now = current_seq(&tx)?;
    tx.commit()?;
    backend.positions().forget_all(now);
    Ok(())
}
