//! Tenant administration shared by the CLI and (later) the admin API.

use serde_json::{json, Value};

use crate::store::{generate_token, hash_token, Backend, StoreError, Tenant};

/// Tenant profiles (see the guest's policy module for what each sets).
pub const PROFILES: &[&str] = &["standard", "writer"];

/// Creates a tenant with a profile and returns it with its first bearer token (shown once).
pub fn create(
    backend: &dyn Backend,
    name: &str,
    profile: &str,
    default_team: Option<&str>,
) -> Result<(Tenant, String), StoreError> {
    if !PROFILES.contains(&profile) {
        return Err(StoreError::Invalid(format!(
            "unknown profile '{profile}' (expected one of: {})",
            PROFILES.join(", ")
        )));
    }
    let mut policy = json!({"profile": profile});
    if let Some(team) = default_team {
        policy["default-team"] = Value::from(team);
    }
    let tenant = backend.create_tenant(name, policy)?;
    let token = issue_token(backend, &tenant.id)?;
    Ok((tenant, token))
}

/// Adds a bearer token to a tenant and returns it; only its hash is stored.
pub fn issue_token(backend: &dyn Backend, tenant_id: &str) -> Result<String, StoreError> {
    let token = generate_token();
    backend.add_token(tenant_id, hash_token(&token))?;
    Ok(token)
}
