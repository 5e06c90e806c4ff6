//! Discovery endpoints (RFC 7644 §4; RFC 7643 §5–7), generated from the schemas the guest
//! enforces so that what is published is exactly what is checked.

use serde_json::{json, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{urn, Schema};
use crate::ops::service::Service;

/// RFC 7643 §5 ServiceProviderConfig.
pub fn service_provider_config(svc: &Service<'_>) -> Value {
    json!({
        "schemas": [urn::SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://github.com/scimlet/scimlet#readme",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": svc.policy.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with the tenant's bearer token in the Authorization header",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", svc.base_url),
        },
    })
}

/// Every schema the tenant uses, core schemas first.
fn schemas<'s>(svc: &'s Service<'_>) -> Vec<&'s Schema> {
    let users = svc.schema(crate::model::resource_type::Kind::User);
    let groups = svc.schema(crate::model::resource_type::Kind::Group);
    let mut all = vec![&users.core, &groups.core, &svc.role_schema().core];
    all.extend(users.extensions.iter());
    all.extend(groups.extensions.iter());
    all
}

fn resource_types(svc: &Service<'_>) -> Vec<Value> {
    [
        crate::model::resource_type::Kind::User,
        crate::model::resource_type::Kind::Group,
    ]
    .iter()
    .map(|k| svc.schema(*k))
    .chain(std::iter::once(svc.role_schema()))
    .map(|rs| rs.resource_type_json(&svc.base_url))
    .collect()
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [urn::LIST_RESPONSE],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

pub fn schema_list(svc: &Service<'_>) -> Value {
    list(
        schemas(svc)
            .into_iter()
            .map(|s| s.to_json(&svc.base_url))
            .collect(),
    )
}

pub fn schema_by_id(svc: &Service<'_>, id: &str) -> ScimResult<Value> {
    schemas(svc)
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(|s| s.to_json(&svc.base_url))
        .ok_or_else(|| ScimError::not_found(format!("schema '{id}' not found")))
}

pub fn resource_type_list(svc: &Service<'_>) -> Value {
    list(resource_types(svc))
}

pub fn resource_type_by_id(svc: &Service<'_>, id: &str) -> ScimResult<Value> {
    resource_types(svc)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| ScimError::not_found(format!("resource type '{id}' not found")))
}
