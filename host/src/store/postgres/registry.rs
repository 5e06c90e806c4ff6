//! The tenant registry in PostgreSQL: tenants (id, unique name, policy) and hashed tokens.
//! Each change is one statement, so two hosts racing to create the same tenant or register
//! the same token hash get one success and one `AlreadyExists`.

use postgres::Row;
use subtle::ConstantTimeEq;

use super::PostgresBackend;
use crate::store::{
    check_policy, check_tenant_name, new_tenant_id, new_token_id, unix_now, StoreError, Tenant,
    TokenInfo,
};

const CREATE: &str = "INSERT INTO scimlet_tenants(id, name, policy, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id";
const BY_ID_OR_NAME: &str = "SELECT id, name, policy, created_at FROM scimlet_tenants
     WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1";
const ALL: &str =
    "SELECT id, name, policy, created_at FROM scimlet_tenants ORDER BY name COLLATE \"C\"";
const SET_POLICY: &str = "UPDATE scimlet_tenants SET policy = $2 WHERE id = $1";
const EXISTS: &str = "SELECT 1 FROM scimlet_tenants WHERE id = $1";
/// `created_us` orders a tenant's tokens oldest first even within one second.
const ADD_TOKEN: &str =
    "INSERT INTO scimlet_tokens(tenant_id, id, token_hash, created_at, created_us)
     SELECT $1, $2, $3, $4, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
     WHERE EXISTS (SELECT 1 FROM scimlet_tenants WHERE id = $1)
     ON CONFLICT DO NOTHING RETURNING id";
const TOKENS: &str = "SELECT id, tenant_id, created_at, revoked FROM scimlet_tokens
     WHERE tenant_id = $1 ORDER BY created_us, id";
const REVOKE: &str = "UPDATE scimlet_tokens SET revoked = true WHERE tenant_id = $1 AND id = $2";
const FOR_TOKEN: &str = "SELECT t.id, t.name, t.policy, t.created_at, k.token_hash
     FROM scimlet_tokens k JOIN scimlet_tenants t ON t.id = k.tenant_id
     WHERE k.token_hash = $1 AND NOT k.revoked";

pub(super) fn create_tenant(
    backend: &PostgresBackend,
    name: &str,
    policy: serde_json::Value,
) -> Result<Tenant, StoreError> {
    check_tenant_name(name)?;
    check_policy(&policy)?;
    let tenant = Tenant {
        id: new_tenant_id(),
        name: name.to_owned(),
        policy,
        created_at: unix_now(),
    };
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(CREATE)?;
    let policy = tenant.policy.to_string();
    let created = conn.client.query_opt(
        &stmt,
        &[&tenant.id, &tenant.name, &policy, &tenant.created_at],
    )?;
    match created {
        Some(_) => Ok(tenant),
        // The name is taken (a 64-bit id colliding is not a practical case).
        None => Err(StoreError::AlreadyExists(format!("tenant {name:?}"))),
    }
}

pub(super) fn tenant(
    backend: &PostgresBackend,
    name_or_id: &str,
) -> Result<Option<Tenant>, StoreError> {
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(BY_ID_OR_NAME)?;
    let row = conn.client.query_opt(&stmt, &[&name_or_id])?;
    row.as_ref().map(tenant_row).transpose()
}

pub(super) fn tenants(backend: &PostgresBackend) -> Result<Vec<Tenant>, StoreError> {
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(ALL)?;
    let rows = conn.client.query(&stmt, &[])?;
    rows.iter().map(tenant_row).collect()
}

pub(super) fn set_policy(
    backend: &PostgresBackend,
    tenant_id: &str,
    policy: serde_json::Value,
) -> Result<(), StoreError> {
    check_policy(&policy)?;
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(SET_POLICY)?;
    let changed = conn
        .client
        .execute(&stmt, &[&tenant_id, &policy.to_string()])?;
    if changed == 0 {
        return Err(not_found_tenant(tenant_id));
    }
    Ok(())
}

pub(super) fn add_token(
    backend: &PostgresBackend,
    tenant_id: &str,
    token_hash: [u8; 32],
) -> Result<TokenInfo, StoreError> {
    let info = TokenInfo {
        id: new_token_id(),
        tenant_id: tenant_id.to_owned(),
        created_at: unix_now(),
        revoked: false,
    };
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(ADD_TOKEN)?;
    let added = conn.client.query_opt(
        &stmt,
        &[&tenant_id, &info.id, &&token_hash[..], &info.created_at],
    )?;
    if added.is_some() {
        return Ok(info);
    }
    // Nothing inserted: either no such tenant or the hash is registered already.
    let exists = conn.stmt(EXISTS)?;
    if conn.client.query_opt(&exists, &[&tenant_id])?.is_none() {
        return Err(not_found_tenant(tenant_id));
    }
    Err(StoreError::AlreadyExists("token".into()))
}

pub(super) fn tokens(
    backend: &PostgresBackend,
    tenant_id: &str,
) -> Result<Vec<TokenInfo>, StoreError> {
    let mut conn = backend.conn()?;
    let exists = conn.stmt(EXISTS)?;
    if conn.client.query_opt(&exists, &[&tenant_id])?.is_none() {
        return Err(not_found_tenant(tenant_id));
    }
    let stmt = conn.stmt(TOKENS)?;
    let rows = conn.client.query(&stmt, &[&tenant_id])?;
    Ok(rows
        .iter()
        .map(|r| TokenInfo {
            id: r.get(0),
            tenant_id: r.get(1),
            created_at: r.get(2),
            revoked: r.get(3),
        })
        .collect())
}

pub(super) fn revoke_token(
    backend: &PostgresBackend,
    tenant_id: &str,
    token_id: &str,
) -> Result<(), StoreError> {
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(REVOKE)?;
    if conn.client.execute(&stmt, &[&tenant_id, &token_id])? == 0 {
        return Err(StoreError::NotFound(format!("token {token_id:?}")));
    }
    Ok(())
}

pub(super) fn tenant_for_token(
    backend: &PostgresBackend,
    token_hash: &[u8; 32],
) -> Result<Option<Tenant>, StoreError> {
    let mut conn = backend.conn()?;
    let stmt = conn.stmt(FOR_TOKEN)?;
    let Some(row) = conn.client.query_opt(&stmt, &[&&token_hash[..]])? else {
        return Ok(None);
    };
    let stored: Vec<u8> = row.get(4);
    // As in the SQLite registry: guards against a lookup that ever matched loosely.
    if !bool::from(stored.as_slice().ct_eq(&token_hash[..])) {
        return Ok(None);
    }
    tenant_row(&row).map(Some)
}

fn not_found_tenant(tenant_id: &str) -> StoreError {
    StoreError::NotFound(format!("tenant {tenant_id:?}"))
}

fn tenant_row(row: &Row) -> Result<Tenant, StoreError> {
    let policy: String = row.get(2);
    let policy = serde_json::from_str(&policy)
        .map_err(|e| StoreError::Unavailable(format!("stored policy is not JSON: {e}")))?;
    Ok(Tenant {
        id: row.get(0),
        name: row.get(1),
        policy,
        created_at: row.get(3),
    })
}
