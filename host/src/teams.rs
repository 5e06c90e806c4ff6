//! Product-side team administration (the CLI's `team` commands): creating a team is the
//! product's act, allowed under every policy, unlike `POST /Groups` from an IdP.

use serde::Serialize;
use serde_json::Value;

use crate::native::TenantStore;
use crate::store::{Backend, Tenant};

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("{0}")]
    Scim(String),
}

impl From<scimlet_guest::error::ScimError> for TeamError {
    fn from(e: scimlet_guest::error::ScimError) -> Self {
        TeamError::Scim(e.detail)
    }
}

/// A team as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub linked: bool,
    pub members: u64,
}

fn service<'a>(
    store: &'a TenantStore<'a>,
    tenant: &Tenant,
) -> Result<scimlet_guest::service::Service<'a>, TeamError> {
    Ok(scimlet_guest::service::Service::new(
        store,
        "",
        &tenant.policy.to_string(),
    )?)
}

/// Creates a team (not linked to any IdP group yet).
pub fn create(backend: &dyn Backend, tenant: &Tenant, name: &str) -> Result<Team, TeamError> {
    let store = TenantStore::new(backend, tenant);
    let doc = service(&store, tenant)?.create_team(name)?;
    Ok(Team {
        id: str_of(&doc, "id"),
        name: str_of(&doc, "displayName"),
        linked: false,
        members: 0,
    })
}

/// Every team of the tenant.
pub fn list(backend: &dyn Backend, tenant: &Tenant) -> Result<Vec<Team>, TeamError> {
    let store = TenantStore::new(backend, tenant);
    let teams = service(&store, tenant)?.teams()?;
    Ok(teams
        .into_iter()
        .map(|(doc, linked, members)| Team {
            id: str_of(&doc, "id"),
            name: str_of(&doc, "displayName"),
            linked,
            members,
        })
        .collect())
}

fn str_of(doc: &Value, key: &str) -> String {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
