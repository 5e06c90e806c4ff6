//! The component's `operator` export, typed for the host: what the CLI and the admin API need
//! from SCIM semantics (policy validation, teams, import and export, the store check). Each
//! call runs in an instance bound to the tenant, like a request.

use std::sync::Arc;

use serde_json::Value;

use super::bindings::exports::scimlet::scim::operator as wit;
use super::bindings::scimlet::scim::types::{Context, ScimError};
use super::{GuestFault, Runtime, Turns};
use crate::store::{Backend, Tenant};

/// Why an operator call failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The component refused the call, with a SCIM error meant for the operator.
    #[error("{detail}")]
    Refused {
        /// HTTP-style status (400 for invalid input, 409 for a conflict, 503...).
        status: u16,
        /// The explanation.
        detail: String,
    },
    /// The component failed or ran out of a budget.
    #[error(transparent)]
    Fault(#[from] GuestFault),
    /// The component answered something that does not follow the contract.
    #[error("the component answered an unusable {0}")]
    Malformed(&'static str),
}

impl From<ScimError> for OperatorError {
    fn from(e: ScimError) -> Self {
        OperatorError::Refused {
            status: e.status,
            detail: e.detail,
        }
    }
}

/// A team as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Team {
    /// The group's SCIM id.
    pub id: String,
    /// Its `displayName`.
    pub name: String,
    /// Whether an IdP group is linked to it.
    pub linked: bool,
    /// Its member count.
    pub members: u64,
}

/// What happened to one imported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// A new user or team.
    Created,
    /// An existing user whose content or memberships changed.
    Updated,
    /// Nothing to do.
    Unchanged,
    /// Refused, with the reason.
    Failed(String),
}

/// A page of an export: rows in the import format, and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    /// Rows (teams first, then users), each a JSON object.
    pub rows: Vec<Value>,
    /// The cursor of the next page; `None` after the last.
    pub next: Option<String>,
}

fn context(tenant: &Tenant) -> Context {
    Context {
        base_url: String::new(),
        policy: tenant.policy.to_string(),
    }
}

impl Runtime {
    /// Checks a tenant policy (the keys stored for it) and answers the effective policy: every
    /// key, the profile's defaults filled in.
    pub fn effective_policy(&self, policy: &Value) -> Result<Value, OperatorError> {
        let text = policy.to_string();
        let answer = self.tenantless(|w| {
            w.plugin
                .scimlet_scim_operator()
                .call_effective_policy(&mut w.store, &text)
        })??;
        serde_json::from_str(&answer).map_err(|_| OperatorError::Malformed("effective policy"))
    }

    /// The profiles a tenant can be created with.
    pub fn profiles(&self) -> Result<Vec<String>, GuestFault> {
        self.tenantless(|w| w.plugin.scimlet_scim_operator().call_profiles(&mut w.store))
    }

    /// Creates a team (not linked to any IdP group yet).
    /// `request_id` names the operator action in the change events it makes.
    pub fn create_team(
        &self,
        backend: &Arc<dyn Backend>,
        tenant: &Tenant,
        name: &str,
        request_id: &str,
    ) -> Result<Team, OperatorError> {
        let ctx = context(tenant);
        let team = self.with_tenant(backend, tenant, |w| {
            w.store.data_mut().request_id = request_id.to_string();
            w.plugin
                .scimlet_scim_operator()
                .call_create_team(&mut w.store, &ctx, name)
        })??;
        Ok(team_of(team))
    }

    /// Every team of the tenant, ordered by id.
    pub fn list_teams(
        &self,
        backend: &Arc<dyn Backend>,
        tenant: &Tenant,
    ) -> Result<Vec<Team>, OperatorError> {
        let ctx = context(tenant);
        let teams = self.with_tenant(backend, tenant, |w| {
            w.plugin
                .scimlet_scim_operator()
                .call_list_teams(&mut w.store, &ctx)
        })??;
        Ok(teams.into_iter().map(team_of).collect())
    }

    /// Imports a batch of rows (JSON objects in the import format) in one atomic commit; one
    /// outcome per row, in order. With `turn`, the batch's commit waits for its ticket's turn,
    /// so that batches imported side by side apply in input order.
    /// `request_id` names the import in the change events it makes.
    pub fn import_rows(
        &self,
        backend: &Arc<dyn Backend>,
        tenant: &Tenant,
        rows: &[String],
        turn: Option<(&Arc<Turns>, u64)>,
        request_id: &str,
    ) -> Result<Vec<RowOutcome>, OperatorError> {
        let ctx = context(tenant);
        let outcomes = self.with_tenant(backend, tenant, |w| {
            w.store.data_mut().request_id = request_id.to_string();
            w.store.data_mut().turn = turn.map(|(turns, ticket)| (turns.clone(), ticket));
            let outcomes =
                w.plugin
                    .scimlet_scim_operator()
                    .call_import_rows(&mut w.store, &ctx, rows);
            w.store.data_mut().turn = None;
            outcomes
        })??;
        if outcomes.len() != rows.len() {
            return Err(OperatorError::Malformed("import result"));
        }
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                wit::RowOutcome::Created => RowOutcome::Created,
                wit::RowOutcome::Updated => RowOutcome::Updated,
                wit::RowOutcome::Unchanged => RowOutcome::Unchanged,
                wit::RowOutcome::Failed(why) => RowOutcome::Failed(why),
            })
            .collect())
    }

    /// One page of the tenant's export, `limit` rows from `cursor` (`None`: the first page).
    pub fn export_rows(
        &self,
        backend: &Arc<dyn Backend>,
        tenant: &Tenant,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ExportPage, OperatorError> {
        let ctx = context(tenant);
        let page = self.with_tenant(backend, tenant, |w| {
            w.plugin
                .scimlet_scim_operator()
                .call_export_rows(&mut w.store, &ctx, cursor, limit)
        })??;
        let rows = page
            .rows
            .iter()
            .map(|r| serde_json::from_str(r))
            .collect::<Result<_, _>>()
            .map_err(|_| OperatorError::Malformed("export row"))?;
        Ok(ExportPage {
            rows,
            next: page.next,
        })
    }

    /// Every invariant of the tenant's store that does not hold, in words (empty: sound).
    pub fn check(
        &self,
        backend: &Arc<dyn Backend>,
        tenant: &Tenant,
    ) -> Result<Vec<String>, GuestFault> {
        let ctx = context(tenant);
        self.with_tenant(backend, tenant, |w| {
            w.plugin
                .scimlet_scim_operator()
                .call_check(&mut w.store, &ctx)
        })
    }
}

fn team_of(t: wit::Team) -> Team {
    Team {
        id: t.id,
        name: t.name,
        linked: t.linked,
        members: t.members,
    }
}
