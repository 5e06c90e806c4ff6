//! The tenant's roles and users' role assignments.
//!
//! A tenant with a role extension (the `writer` profile) keeps the role in that extension's
//! role attribute; other tenants use the primary value of the core `roles` attribute.

use serde_json::{json, Value};

use crate::error::{ScimError, ScimResult};
use crate::policy::Policy;
use crate::repo::Kind;
use crate::service::Service;

/// A role a user can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub value: String,
    pub display: String,
    pub is_default: bool,
}

pub fn list(policy: &Policy) -> Vec<Role> {
    policy
        .roles
        .iter()
        .map(|r| Role {
            value: r.clone(),
            display: display_name(r),
            is_default: policy.default_role.as_deref() == Some(r),
        })
        .collect()
}

fn display_name(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The role a user document holds.
pub fn role_of(policy: &Policy, doc: &Value) -> Option<String> {
    match &policy.role_extension {
        Some(ext) => doc
            .get(ext)
            .and_then(|e| e.get(&policy.role_attribute))
            .and_then(Value::as_str)
            .map(str::to_string),
        None => {
            let roles = doc.get("roles")?.as_array()?;
            let pick = roles
                .iter()
                .find(|r| r.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| roles.first())?;
            pick.get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
        }
    }
}

pub fn get_user_role(svc: &Service<'_>, user_id: &str) -> ScimResult<Option<String>> {
    Ok(role_of(
        &svc.policy,
        &svc.get(Kind::User, user_id, &Default::default())?,
    ))
}

/// Sets (or clears) a user's role through an atomic PATCH, so it obeys the same validation.
pub fn set_user_role(svc: &Service<'_>, user_id: &str, role: Option<&str>) -> ScimResult<()> {
    let policy = &svc.policy;
    if let Some(r) = role {
        if !policy.roles.iter().any(|x| x == r) {
            return Err(ScimError::invalid_value(format!(
                "'{r}' is not a role of this tenant: {}",
                policy.roles.join(", ")
            )));
        }
    }
    let path = match &policy.role_extension {
        Some(ext) => format!("{ext}:{}", policy.role_attribute),
        None => "roles".to_string(),
    };
    let op = match (role, &policy.role_extension) {
        (None, _) => json!({"op": "remove", "path": path}),
        (Some(r), Some(_)) => json!({"op": "replace", "path": path, "value": r}),
        (Some(r), None) => {
            json!({"op": "replace", "path": path, "value": [{"value": r, "primary": true}]})
        }
    };
    let body = json!({"schemas": [crate::schema::urn::PATCH_OP], "Operations": [op]});
    svc.patch(Kind::User, user_id, &body, None, &Default::default())
        .map(|_| ())
}
