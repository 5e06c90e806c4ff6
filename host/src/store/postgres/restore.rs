//! Moving a deployment in (`scimlet copy`): tenants, token hashes, entries and events written
//! as they were read elsewhere, ids, versions and cursors kept. Each call is one transaction.

use super::{stamps, PostgresBackend};
use crate::events::{Cursor, StoredEvent};
use crate::store::{
    check_key, check_policy, check_tenant_name, Entry, StoreError, StoredToken, Tenant, TokenInfo,
    Write,
};

const TOKENS: &str = "SELECT id, tenant_id, created_at, revoked, token_hash FROM scimlet_tokens
     WHERE tenant_id = $1 ORDER BY created_us, id";
const EXISTS: &str = "SELECT 1 FROM scimlet_tenants WHERE id = $1";
const TENANT: &str = "INSERT INTO scimlet_tenants(id, name, policy, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id";
/// `created_us` from the position in the list: the source's order is kept.
const TOKEN: &str = "INSERT INTO scimlet_tokens
         (tenant_id, id, token_hash, created_at, created_us, revoked)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id";
const ENTRIES: &str = "INSERT INTO scimlet_kv(tenant, key, value, version)
     SELECT $1, e.k, e.v, e.n FROM unnest($2::bytea[], $3::bytea[], $4::bigint[]) AS e(k, v, n)
     ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, version = excluded.version";
const EVENTS: &str = "INSERT INTO scimlet_events
         (tenant, seq, idx, id, kind, time_ms, request_id, data, previous)
     SELECT $1, e.seq, e.idx, e.id, e.kind, e.time_ms, e.request_id, e.data, e.previous
     FROM unnest($2::bigint[], $3::integer[], $4::text[], $5::text[], $6::bigint[],
                 $7::text[], $8::text[], $9::text[])
         AS e(seq, idx, id, kind, time_ms, request_id, data, previous)";
const SEQUENCE: &str = "INSERT INTO scimlet_seq(tenant, seq) VALUES ($1, $2)
     ON CONFLICT (tenant) DO UPDATE SET seq = greatest(scimlet_seq.seq, excluded.seq)";
const HORIZON: &str = "INSERT INTO scimlet_event_horizons(tenant, seq, idx) VALUES ($1, $2, $3)
     ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, idx = excluded.idx
     WHERE (excluded.seq, excluded.idx) > (scimlet_event_horizons.seq, scimlet_event_horizons.idx)";

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn stored_tokens(
    backend: &PostgresBackend,
    tenant_id: &str,
) -> Result<Vec<StoredToken>, StoreError> {
    let mut conn = backend.conn()?;
    let exists = conn.stmt(EXISTS)?;
    if conn.client.query_opt(&exists, &[&tenant_id])?.is_none() {
        return Err(StoreError::NotFound(format!("tenant {tenant_id:?}")));
    }
    let stmt = conn.stmt(TOKENS)?;
    let rows = conn.client.query(&stmt, &[&tenant_id])?;
    rows.iter()
        .map(|r| {
            let info = TokenInfo {
                id: r.get(0),
                tenant_id: r.get(1),
                created_at: r.get(2),
                revoked: r.get(3),
            };
            let hash: Vec<u8> = r.get(4);
            let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| {
                StoreError::Unavailable(format!("token {} has a bad hash", info.id))
            })?;
            Ok(StoredToken { info, hash })
        })
        .collect()
}

pub(super) fn restore_tenant(
    backend: &PostgresBackend,
    tenant: &Tenant,
    tokens: &[StoredToken],
) -> Result<(), StoreError> {
    check_tenant_name(&tenant.name)?;
    check_policy(&tenant.policy)?;
    let mut conn = backend.conn()?;
    let (insert_tenant, insert_token) = (conn.stmt(TENANT)?, conn.stmt(TOKEN)?);
    // Dropping `tx` on an early return rolls the tenant back with its tokens.
    let mut tx = conn.client.transaction()?;
    let policy = tenant.policy.to_string();
    let created = tx.query_opt(
        &insert_tenant,
        &[&tenant.id, &tenant.name, &policy, &tenant.created_at],
    )?;
    if created.is_none() {
        return Err(StoreError::AlreadyExists(format!(
            "tenant {:?}",
            tenant.name
        )));
    }
    for (n, t) in (0i64..).zip(tokens) {
        let created_us = t
            .info
            .created_at
            .saturating_mul(1_000_000)
            .saturating_add(n);
        let added = tx.query_opt(
            &insert_token,
            &[
                &tenant.id,
                &t.info.id,
                &&t.hash[..],
                &t.info.created_at,
                &created_us,
                &t.info.revoked,
            ],
        )?;
        if added.is_none() {
            return Err(StoreError::AlreadyExists("token".into()));
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn restore_entries(
    backend: &PostgresBackend,
    tenant: &str,
    entries: &[Entry],
) -> Result<(), StoreError> {
    entries.iter().try_for_each(|e| check_key(&e.key))?;
    if entries.is_empty() {
        return Ok(());
    }
    let keys: Vec<&[u8]> = entries.iter().map(|e| e.key.as_bytes()).collect();
    let values: Vec<&[u8]> = entries.iter().map(|e| e.value.as_slice()).collect();
    let versions: Vec<i64> = entries.iter().map(|e| int(e.version)).collect();
    // Every restored key may be a new one: the stamps of their classes go up with them.
    let puts: Vec<Write> = entries
        .iter()
        .map(|e| Write::Put(e.key.clone(), Vec::new()))
        .collect();
    let classes = stamps::commit_classes(&[], &puts);
    let mut conn = backend.conn()?;
    let (stmt, bump) = (conn.stmt(ENTRIES)?, conn.stmt(stamps::BUMP)?);
    let mut tx = conn.client.transaction()?;
    tx.execute(&stmt, &[&tenant, &keys, &values, &versions])?;
    tx.execute(&bump, &[&tenant, &classes])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn restore_events(
    backend: &PostgresBackend,
    tenant: &str,
    events: &[StoredEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = events.iter().map(|e| int(e.cursor.seq)).collect();
    let idxs: Vec<i32> = events
        .iter()
        .map(|e| i32::try_from(e.cursor.index).unwrap_or(i32::MAX))
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    let times: Vec<i64> = events.iter().map(|e| e.time_ms).collect();
    let requests: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    let previous: Vec<Option<&str>> = events.iter().map(|e| e.previous.as_deref()).collect();
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(EVENTS)?;
    conn.client.execute(
        &stmt,
        &[
            &tenant, &seqs, &idxs, &ids, &kinds, &times, &requests, &data, &previous,
        ],
    )?;
    Ok(())
}

pub(super) fn restore_sequence(
    backend: &PostgresBackend,
    tenant: &str,
    seq: u64,
    horizon: Option<Cursor>,
) -> Result<(), StoreError> {
    let mut conn = backend.conn()?;
    let (sequence, moved) = (conn.stmt(SEQUENCE)?, conn.stmt(HORIZON)?);
    let mut tx = conn.client.transaction()?;
    tx.execute(&sequence, &[&tenant, &int(seq)])?;
    if let Some(h) = horizon {
        let idx = i32::try_from(h.index).unwrap_or(i32::MAX);
        tx.execute(&moved, &[&tenant, &int(h.seq), &idx])?;
    }
    tx.commit()?;
    Ok(())
}
