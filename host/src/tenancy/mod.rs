//! Tenant administration shared by the CLI and the admin API: tenants, their bearer tokens and
//! their policy. Blocking (it calls the [`Backend`]). [`admin`] serves the same operations over
//! HTTP.

pub mod admin;
pub mod setup_links;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::runtime::operator::OperatorError;
use crate::runtime::Runtime;
use crate::store::{generate_token, hash_token, Backend, StoreError, Tenant, TokenInfo};

/// Why a tenant operation failed; the messages are meant for operators.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// No tenant has this name or id.
    #[error("no tenant named '{0}' (nor with that id)")]
    NoSuchTenant(String),
    /// The tenant has no token with this id.
    #[error("tenant '{tenant}' has no token '{token}'")]
    NoSuchToken {
        /// The tenant's name.
        tenant: String,
        /// The token id asked for.
        token: String,
    },
    /// The tenant has no setup link with this id.
    #[error("tenant '{tenant}' has no setup link '{link}'")]
    NoSuchLink {
        /// The tenant's name.
        tenant: String,
        /// The link id asked for.
        link: String,
    },
    /// The name is taken.
    #[error("tenant '{0}' already exists")]
    AlreadyExists(String),
    /// The store refused the call (a bad name, say): why.
    #[error("{0}")]
    Invalid(String),
    /// The component refused the policy: why.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// The store failed: why.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The component failed: why.
    #[error("{0}")]
    Component(String),
}

impl From<OperatorError> for TenantError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::Refused { status, detail } if status < 500 => {
                TenantError::InvalidPolicy(detail)
            }
            other => TenantError::Component(other.to_string()),
        }
    }
}

impl From<StoreError> for TenantError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => TenantError::Invalid(m),
            StoreError::AlreadyExists(m) => TenantError::AlreadyExists(m),
            other => TenantError::Unavailable(other.to_string()),
        }
    }
}

/// A newly issued bearer token: shown once, then only its hash exists.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// The token's id, for listing and revoking it.
    pub id: String,
    /// The bearer token itself.
    pub token: String,
}

/// A tenant as operators see it (the admin API's JSON shape).
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    /// The tenant's id.
    pub id: String,
    /// The tenant's name.
    pub name: String,
    /// The policy profile the tenant follows.
    pub profile: String,
    /// RFC 3339, UTC.
    pub created: String,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        TenantView {
            id: t.id.clone(),
            name: t.name.clone(),
            profile: profile_of(t).to_string(),
            created: rfc3339(t.created_at),
        }
    }
}

/// A token's metadata as operators see it; never the token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    /// The token's id.
    pub id: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// Whether the token was revoked.
    pub revoked: bool,
}

impl From<&TokenInfo> for TokenView {
    fn from(t: &TokenInfo) -> Self {
        TokenView {
            id: t.id.clone(),
            created: rfc3339(t.created_at),
            revoked: t.revoked,
        }
    }
}

/// Creates a tenant with a profile and returns it with its first bearer token (shown once).
/// The component checks the profile and the policy.
pub fn create(
    backend: &dyn Backend,
    runtime: &Runtime,
    name: &str,
    profile: &str,
    default_team: Option<&str>,
) -> Result<(Tenant, IssuedToken), TenantError> {
    let mut policy = json!({"profile": profile});
    if let Some(team) = default_team {
        policy["default-team"] = Value::from(team);
    }
    runtime.effective_policy(&policy)?;
    let tenant = backend.create_tenant(name, policy).map_err(|e| match e {
        StoreError::AlreadyExists(_) => TenantError::AlreadyExists(name.to_string()),
        other => other.into(),
    })?;
    let token = issue_token(backend, &tenant.id)?;
    Ok((tenant, token))
}

/// Looks a tenant up by id or name.
pub fn find(backend: &dyn Backend, name_or_id: &str) -> Result<Tenant, TenantError> {
    backend
        .tenant(name_or_id)?
        .ok_or_else(|| TenantError::NoSuchTenant(name_or_id.to_string()))
}

/// Adds a bearer token to a tenant and returns it; only its hash is stored.
pub fn issue_token(backend: &dyn Backend, tenant_id: &str) -> Result<IssuedToken, TenantError> {
    let token = generate_token();
    let info = backend.add_token(tenant_id, hash_token(&token))?;
    Ok(IssuedToken { id: info.id, token })
}

/// The tenant's tokens, revoked ones included, oldest first.
pub fn tokens(backend: &dyn Backend, tenant: &Tenant) -> Result<Vec<TokenView>, TenantError> {
    Ok(backend.tokens(&tenant.id)?.iter().map(Into::into).collect())
}

/// Revokes one token; its holder gets 401 from the next request on.
pub fn revoke_token(
    backend: &dyn Backend,
    tenant: &Tenant,
    token_id: &str,
) -> Result<(), TenantError> {
    backend
        .revoke_token(&tenant.id, token_id)
        .map_err(|e| match e {
            StoreError::NotFound(_) => TenantError::NoSuchToken {
                tenant: tenant.name.clone(),
                token: token_id.to_string(),
            },
            other => other.into(),
        })
}

/// The tenant's effective policy: its profile's defaults overlaid with its stored keys.
pub fn effective_policy(runtime: &Runtime, tenant: &Tenant) -> Result<Value, TenantError> {
    Ok(runtime.effective_policy(&tenant.policy)?)
}

/// Sets policy keys after checking the result with the component, so that a stored policy is
/// always one the component accepts. Answers the new effective policy.
pub fn set_policy(
    backend: &dyn Backend,
    runtime: &Runtime,
    tenant: &Tenant,
    changes: Map<String, Value>,
) -> Result<Value, TenantError> {
    let mut policy = match &tenant.policy {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    policy.extend(changes);
    let policy = Value::Object(policy);
    let effective = runtime.effective_policy(&policy)?;
    backend.set_policy(&tenant.id, policy)?;
    Ok(effective)
}

/// A policy value from the command line: JSON if it parses (`500`, `true`, `["a","b"]`), else
/// the text itself as a string (`Staff`).
pub fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

/// The profile a tenant was created with.
pub fn profile_of(tenant: &Tenant) -> &str {
    tenant
        .policy
        .get("profile")
        .and_then(Value::as_str)
        .unwrap_or("standard")
}

/// Unix seconds as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(unix_seconds: i64) -> String {
    let secs = u64::try_from(unix_seconds).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    #[test]
    fn values_are_json_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse_value("500"), json!(500));
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value("[\"a\",\"b\"]"), json!(["a", "b"]));
        assert_eq!(parse_value("Staff"), json!("Staff"));
        assert_eq!(parse_value("null"), Value::Null);
    }

    #[test]
    fn invalid_policies_are_never_stored() {
        let backend = MemoryBackend::new();
        let rt = crate::runtime::test_runtime();
        let (tenant, _) = create(&backend, &rt, "acme", "standard", None).unwrap();
        let mut bad = Map::new();
        bad.insert("max-page-size".into(), json!("lots"));
        assert!(matches!(
            set_policy(&backend, &rt, &tenant, bad),
            Err(TenantError::InvalidPolicy(_))
        ));
        let mut unknown = Map::new();
        unknown.insert("no-such-key".into(), json!(1));
        assert!(set_policy(&backend, &rt, &tenant, unknown).is_err());
        assert_eq!(find(&backend, "acme").unwrap().policy, tenant.policy);

        let mut good = Map::new();
        good.insert("max-page-size".into(), json!(500));
        let effective = set_policy(&backend, &rt, &tenant, good).unwrap();
        assert_eq!(effective["max-page-size"], 500);
        let stored = find(&backend, &tenant.id).unwrap();
        assert_eq!(
            effective_policy(&rt, &stored).unwrap()["max-page-size"],
            500
        );
        assert!(matches!(
            create(&backend, &rt, "other", "no-such-profile", None),
            Err(TenantError::InvalidPolicy(why)) if why.contains("writer")
        ));
    }

    #[test]
    fn tokens_are_listed_without_their_secret_and_revoked_by_id() {
        let backend = MemoryBackend::new();
        let rt = crate::runtime::test_runtime();
        let (tenant, first) = create(&backend, &rt, "acme", "writer", Some("Staff")).unwrap();
        let second = issue_token(&backend, &tenant.id).unwrap();
        revoke_token(&backend, &tenant, &first.id).unwrap();
        let listed = tokens(&backend, &tenant).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|t| t.id == first.id && t.revoked));
        assert!(listed.iter().any(|t| t.id == second.id && !t.revoked));
        assert!(matches!(
            revoke_token(&backend, &tenant, "k_nope"),
            Err(TenantError::NoSuchToken { .. })
        ));
        assert!(matches!(
            create(&backend, &rt, "acme", "standard", None),
            Err(TenantError::AlreadyExists(_))
        ));
        assert_eq!(profile_of(&tenant), "writer");
        assert_eq!(
            effective_policy(&rt, &tenant).unwrap()["default-team"],
            "Staff"
        );
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
