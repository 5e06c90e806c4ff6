//! The tenant registry: tenants with their policies, and the hashes of their bearer tokens.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use subtle::ConstantTimeEq;

use super::SqliteBackend;
use crate::store::{
    check_policy, check_tenant_name, new_tenant_id, new_token_id, unix_now, StoreError, Tenant,
    TokenInfo,
};

pub(super) fn create_tenant(
    backend: &SqliteBackend,
    name: &str,
    policy: serde_json::Value,
) -> Result<Tenant, StoreError> {
    check_tenant_name(name)?;
    check_policy(&policy)?;
    let mut writer = backend.writer()?;
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
    tx.prepare_cached("INSERT INTO tenants(id, name, policy, created_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            tenant.id,
            tenant.name,
            tenant.policy.to_string(),
            tenant.created_at
        ])?;
    tx.commit()?;
    Ok(tenant)
}

pub(super) fn tenant(
    backend: &SqliteBackend,
    name_or_id: &str,
) -> Result<Option<Tenant>, StoreError> {
    let reader = backend.reader()?;
    // Names never have the shape of an id (see `check_tenant_name`), so the order is moot.
    match tenant_by(&reader, "id", name_or_id)? {
        Some(t) => Ok(Some(t)),
        None => tenant_by(&reader, "name", name_or_id),
    }
}

pub(super) fn tenants(backend: &SqliteBackend) -> Result<Vec<Tenant>, StoreError> {
    let reader = backend.reader()?;
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY name");
    let mut stmt = reader.prepare_cached(&sql)?;
    let rows = stmt.query_map([], tenant_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn set_policy(
    backend: &SqliteBackend,
    tenant_id: &str,
    policy: serde_json::Value,
) -> Result<(), StoreError> {
    check_policy(&policy)?;
    let writer = backend.writer()?;
    let changed = writer
        .prepare_cached("UPDATE tenants SET policy = ?2 WHERE id = ?1")?
        .execute(params![tenant_id, policy.to_string()])?;
    if changed == 0 {
        return Err(not_found_tenant(tenant_id));
    }
    Ok(())
}

pub(super) fn add_token(
    backend: &SqliteBackend,
    tenant_id: &str,
    token_hash: [u8; 32],
) -> Result<TokenInfo, StoreError> {
    let mut writer = backend.writer()?;
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

pub(super) fn tokens(
    backend: &SqliteBackend,
    tenant_id: &str,
) -> Result<Vec<TokenInfo>, StoreError> {
    let reader = backend.reader()?;
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

pub(super) fn revoke_token(
    backend: &SqliteBackend,
    tenant_id: &str,
    token_id: &str,
) -> Result<(), StoreError> {
    let writer = backend.writer()?;
    let changed = writer
        .prepare_cached("UPDATE tokens SET revoked = 1 WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![tenant_id, token_id])?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("token {token_id:?}")));
    }
    Ok(())
}

pub(super) fn tenant_for_token(
    backend: &SqliteBackend,
    token_hash: &[u8; 32],
) -> Result<Option<Tenant>, StoreError> {
    let reader = backend.reader()?;
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

pub(super) fn tenant_exists(conn: &Connection, tenant_id: &str) -> Result<bool, StoreError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")?
        .query_row([tenant_id], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

fn not_found_tenant(tenant_id: &str) -> StoreError {
    StoreError::NotFound(format!("tenant {tenant_id:?}"))
}

pub(super) fn token_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        created_at: row.get(2)?,
        revoked: row.get(3)?,
    })
}
