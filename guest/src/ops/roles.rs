//! The tenant's roles, as its policy defines them, and the `/Roles` endpoint.
//!
//! A tenant with a role extension (the `writer` profile) keeps the role in that extension's
//! role attribute; other tenants use the primary value of the core `roles` attribute.

use serde_json::{json, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::policy::Policy;
use crate::ops::service::Service;

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

/// A role as the `/Roles` endpoint shows it.
pub fn role_resource(svc: &Service<'_>, role: &Role) -> Value {
    json!({
        "schemas": [crate::model::schema::urn::ROLE],
        "id": role.value,
        "value": role.value,
        "display": role.display,
        "default": role.is_default,
        "meta": {"resourceType": "Role", "location": format!("{}/Roles/{}", svc.base_url, role.value)},
    })
}

/// `GET /Roles` (filter, paging and projection as for other resources) and `GET /Roles/{id}`.
pub fn list_resources(
    svc: &Service<'_>,
    params: &crate::ops::service::ListParams,
) -> ScimResult<Value> {
    let rs = svc.role_schema();
    let opts = crate::rules::filter::ParseOptions {
        lenient_unquoted: svc.policy.lenient_filter_values,
    };
    let filter = params
        .filter
        .as_deref()
        .map(|f| crate::rules::filter::parse_with(f, opts))
        .transpose()?;
    if let Some(f) = &filter {
        crate::rules::filter::validate(f, rs)?;
    }
    let all: Vec<Value> = list(&svc.policy)
        .iter()
        .map(|r| role_resource(svc, r))
        .filter(|doc| {
            filter
                .as_ref()
                .is_none_or(|f| crate::rules::filter::matches(f, doc, rs))
        })
        .collect();
    let start: usize = match params.start_index.as_deref() {
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value("startIndex must be an integer"))?
            .max(1) as usize,
        None => 1,
    };
    let count: usize = match params.count.as_deref() {
        Some(c) => c
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value("count must be an integer"))?
            .max(0) as usize,
        None => all.len(),
    };
    let proj = svc.projection(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let page: Vec<Value> = all
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|d| crate::rules::resource::render(d, rs, &proj, &svc.base_url))
        .collect();
    Ok(json!({
        "schemas": [crate::model::schema::urn::LIST_RESPONSE],
        "totalResults": all.len(),
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    }))
}

pub fn get_resource(svc: &Service<'_>, id: &str) -> ScimResult<Value> {
    list(&svc.policy)
        .iter()
        .find(|r| r.value == id)
        .map(|r| role_resource(svc, r))
        .ok_or_else(|| ScimError::not_found(format!("role '{id}' not found")))
}
