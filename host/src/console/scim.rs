//! The SCIM section shared by the console's tenant page and the setup page, as the product
//! guide's "Single sign-on → SCIM" section: connection status, SCIM base URL, unique
//! identifier, bearer tokens, default team, and the teams an IdP group can link to.

use std::sync::Arc;

use maud::{html, Markup};
use serde_json::{Map, Value};

use super::layout::{ago, copy_field, csrf_field, shown_once, when};
use crate::runtime::operator::Team;
use crate::runtime::Runtime;
use crate::store::{Backend, Tenant};
use crate::tenancy::{self as tenants, TenantError};
use crate::usage::{self, LastRequest, Usage};

/// A token as the SCIM section lists it.
pub(super) struct TokenRow {
    pub id: String,
    pub created: i64,
    pub last_used: Option<i64>,
    pub revoked: bool,
}

/// What the SCIM section shows of a tenant.
pub(super) struct ScimData {
    pub tenant: Tenant,
    pub policy: Value,
    pub tokens: Vec<TokenRow>,
    pub teams: Vec<Team>,
    pub usage: Usage,
    /// The newest refused provisioning requests (audit records), newest first.
    pub recent_errors: Vec<Value>,
}

impl ScimData {
    /// Reads it all; `since_hour` bounds the hourly counts read.
    pub fn load(
        backend: &Arc<dyn Backend>,
        runtime: &Runtime,
        tenant: Tenant,
        since_hour: i64,
    ) -> Result<ScimData, TenantError> {
        let policy = tenants::effective_policy(runtime, &tenant)?;
        let usage = usage::read(backend.as_ref(), &tenant.id, since_hour)?;
        let tokens = backend
            .stored_tokens(&tenant.id)?
            .into_iter()
            .map(|t| TokenRow {
                last_used: usage.tokens.get(&usage::token_key(&t.hash)).copied(),
                id: t.info.id,
                created: t.info.created_at,
                revoked: t.info.revoked,
            })
            .collect();
        let teams = runtime.list_teams(backend, &tenant)?;
        let week_ago = (super::layout::now() - 7 * 86_400).max(0);
        let recent_errors = crate::audit::newest(backend.as_ref(), &tenant.id, 500)?
            .into_iter()
            .filter(|r| r.get("status").and_then(Value::as_u64).unwrap_or(0) >= 400)
            .filter(|r| {
                r.get("time")
                    .and_then(Value::as_str)
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|d| d.as_secs() as i64 >= week_ago)
            })
            .take(5)
            .collect();
        Ok(ScimData {
            tenant,
            policy,
            tokens,
            teams,
            usage,
            recent_errors,
        })
    }

    pub fn default_team(&self) -> Option<&str> {
        self.policy.get("default-team").and_then(Value::as_str)
    }

    pub fn last(&self) -> Option<&LastRequest> {
        self.usage.last.as_ref()
    }
}

/// Sets the tenant's default team (`""`: the profile's).
pub(super) fn save_default_team(
    backend: &dyn Backend,
    runtime: &Runtime,
    tenant: &Tenant,
    team: &str,
) -> Result<(), TenantError> {
    if team.is_empty() {
        let mut policy = match &tenant.policy {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        policy.remove("default-team");
        let policy = Value::Object(policy);
        runtime.effective_policy(&policy)?;
        backend.set_policy(&tenant.id, policy)?;
    } else {
        let mut change = Map::new();
        change.insert("default-team".into(), Value::from(team));
        tenants::set_policy(backend, runtime, tenant, change)?;
    }
    Ok(())
}

/// "Connected — last request from Okta 2 min ago (GET /Users)", or why not yet.
pub(super) fn status(last: Option<&LastRequest>) -> Markup {
    html! {
        div.status role="status" {
            strong { "Status:" }
            @match last {
                Some(l) => {
                    @let who = l.user_agent.as_deref().and_then(usage::idp_of);
                    @let ok = l.status < 400;
                    span.pill.(if ok { "ok" } else { "warn" }) {
                        @if ok { "Connected" } @else { "Connected, last request failed" }
                    }
                    span {
                        "Last request "
                        @if let Some(idp) = who { "from " strong { (idp) } " " }
                        (ago(l.at)) " (" code { (l.method) " " (l.path) } " → " (l.status) ")"
                    }
                    @if who.is_none() {
                        @if let Some(ua) = &l.user_agent {
                            span.muted { "User agent: " code { (ua) } }
                        }
                    }
                }
                None => {
                    span.pill.warn { "Waiting" }
                    span.muted { "No request from an identity provider yet." }
                }
            }
        }
    }
}

/// A refused request in plain words: what, which user or group, and why.
pub(super) fn refusal(r: &Value) -> Markup {
    let op = r.get("operation").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let who = ["userName", "displayName", "externalId", "id"]
        .iter()
        .map(|k| s(&op, k))
        .find(|v| !v.is_empty());
    let error = op.get("error").cloned().unwrap_or(Value::Null);
    let time = s(r, "time");
    html! {
        li {
            span.pill.bad { (r.get("status").and_then(Value::as_u64).unwrap_or(0)) }
            " "
            @if let Some(t) = error.get("scimType").and_then(Value::as_str) { strong { (t) } ": " }
            (s(&error, "detail"))
            " — " code { (s(r, "method")) " " (s(r, "path")) }
            @if let Some(w) = who { " for " strong { (w) } }
            " " span.muted { (time.get(..16).unwrap_or(&time).replace('T', " ")) " UTC" }
        }
    }
}

/// The SCIM settings: base URL, unique identifier, tokens (generate, revoke), default team.
/// Forms post to `base` + `/tokens`, `/tokens/{id}/revoke`, `/default-team`.
pub(super) fn settings(
    d: &ScimData,
    scim_url: &str,
    base: &str,
    csrf: &str,
    new_token: Option<&str>,
) -> Markup {
    let default = d.default_team();
    let live: Vec<&TokenRow> = d.tokens.iter().filter(|t| !t.revoked).collect();
    html! {
        section.card aria-labelledby="scim-h" {
            h2 #scim-h { "SCIM" }
            (status(d.last()))
            @if !d.recent_errors.is_empty() {
                div.notice.bad {
                    strong { "Recent errors your identity provider hit" }
                    ul.errors { @for r in &d.recent_errors { (refusal(r)) } }
                }
            }
            dl.fields {
                dt { "SCIM base URL" }
                dd { (copy_field("scim-url", "SCIM base URL", scim_url)) }
                dt { "Unique identifier" }
                dd { code { "userName" } " (the user's email address)" }
                dt { "Bearer tokens" }
                dd {
                    @if live.is_empty() {
                        p.muted { "No active token: generate one for your identity provider." }
                    } @else {
                        div.table-wrap {
                            table aria-label="Bearer tokens" {
                                thead { tr { th { "Token" } th.wide-only { "Created" } th { "Last used" } th.num { span.muted { "Action" } } } }
                                tbody {
                                    @for t in &live {
                                        tr {
                                            td { code.bullets { "••••••••" } " " span.muted.mono { (t.id) } }
                                            td.wide-only { (when(t.created)) }
                                            td { @match t.last_used { Some(at) => (ago(at)), None => span.muted { "never" } } }
                                            td.num {
                                                form.inline method="post" action={ (base) "/tokens/" (t.id) "/revoke" } {
                                                    (csrf_field(csrf))
                                                    button.danger type="submit" aria-describedby={ "tok-" (t.id) } { "Revoke" }
                                                    span.muted hidden id={ "tok-" (t.id) } { "token " (t.id) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form.inline method="post" action={ (base) "/tokens" } {
                        (csrf_field(csrf))
                        button type="submit" { "Generate token" }
                    }
                    @if let Some(token) = new_token {
                        (shown_once("new-token", "New bearer token", token, "Shown only now. Paste it into your identity provider."))
                    }
                }
                dt { label for="default-team" { "Default team" } }
                dd {
                    form.inline method="post" action={ (base) "/default-team" } {
                        (csrf_field(csrf))
                        select #default-team name="team" {
                            @if default.is_none() {
                                option value="" selected { "No default team" }
                            }
                            @if let Some(name) = default {
                                @if !d.teams.iter().any(|t| t.name == name) {
                                    option value=(name) selected { (name) " (no such team yet)" }
                                }
                            }
                            @for t in &d.teams {
                                option value=(t.name) selected[default == Some(t.name.as_str())] { (t.name) }
                            }
                        }
                        button type="submit" { "Save" }
                    }
                    p.hint { "Every user your identity provider creates joins this team." }
                }
            }
        }
    }
}

/// The teams an IdP group links to by name; `create_action` adds the "Create team" form.
pub(super) fn teams(d: &ScimData, create_action: Option<(&str, &str)>) -> Markup {
    html! {
        section.card aria-labelledby="teams-h" {
            h2 #teams-h { "Teams" }
            p.hint { "Link a group of your identity provider to a team by giving the group exactly the team's name." }
            @if d.teams.is_empty() {
                p.muted { "No teams yet." }
            } @else {
                div.table-wrap {
                    table aria-label="Teams" {
                        thead { tr { th { "Team" } th { "IdP group" } th.num { "Members" } } }
                        tbody {
                            @for t in &d.teams {
                                tr {
                                    td { (t.name) }
                                    td { @if t.linked { span.pill.ok { "linked" } } @else { span.pill { "not linked" } } }
                                    td.num { (t.members) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some((action, csrf)) = create_action {
                form.inline method="post" action=(action) {
                    (csrf_field(csrf))
                    label for="team-name" { "Team name" }
                    input #team-name type="text" name="name" required maxlength="200";
                    button type="submit" { "Create team" }
                }
            }
        }
    }
}
