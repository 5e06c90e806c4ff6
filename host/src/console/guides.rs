//! The Okta and Entra ID setup steps of the product guides (docs/okta.md, docs/entra.md),
//! with the tenant's own values filled in.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{copy_field, page};
use super::tenant::{shell_of, tabs, tenant_page, Tab};
use super::{blocking, html, Ctx};

use crate::tenancy as tenants;

/// The tenant values the steps quote.
pub(super) struct GuideValues<'a> {
    pub scim_url: &'a str,
    pub policy: &'a Value,
    /// Team creation links IdP groups to existing teams (`link-only`) instead of creating.
    pub link_only: bool,
}

impl GuideValues<'_> {
    fn role_extension(&self) -> Option<&str> {
        self.policy.get("role-extension").and_then(Value::as_str)
    }
    fn default_team(&self) -> Option<&str> {
        self.policy.get("default-team").and_then(Value::as_str)
    }
    fn roles(&self) -> Vec<&str> {
        self.policy
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// Okta's steps (docs/okta.md).
pub(super) fn okta(v: &GuideValues, id: &str) -> Markup {
    html! {
        ol.steps {
            li { strong { "Applications → Create App Integration → SAML 2.0" } ", and set up sign-on as usual." }
            li { "On the " strong { "General" } " tab, " strong { "Edit → Provisioning: SCIM" } ", save." }
            li {
                "On the " strong { "Provisioning" } " tab, " strong { "Integration → Edit" } ":"
                ul {
                    li { strong { "SCIM connector base URL" } ": " (copy_field(&format!("{id}-url"), "SCIM connector base URL", v.scim_url)) }
                    li { strong { "Unique identifier field for users" } ": " code { "userName" } " (the user's email address)" }
                    li { strong { "Supported provisioning actions" } ": Push New Users, Push Profile Updates, Push Groups" }
                    li { strong { "Authentication Mode" } ": HTTP Header; " strong { "Authorization" } ": " code { "Bearer " } " followed by a token generated on this page" }
                }
            }
            li { strong { "Test Connector Configuration" } ": the status above turns to " em { "Connected" } "." }
            li { "Save, then " strong { "Provisioning → To App → Edit" } ": enable Create Users, Update User Attributes and Deactivate Users. Leave Sync Password off." }
            @if let Some(ext) = v.role_extension() {
                li {
                    strong { "Directory → Profile Editor" } " → your app's user profile → " strong { "Add Attribute" } ": data type string, variable name "
                    code { "role" } ", external name " code { "role" } ", external namespace " code { (ext) }
                    ", enum values " @for r in v.roles() { code { (r) } " " } "; then map it under " strong { "Mappings" } "."
                }
            }
            li { strong { "Assignments → Assign to People" } " (or to a group)."
                @if let Some(team) = v.default_team() { " Each new user joins the team " strong { (team) } "." } }
            li { strong { "Push Groups → Find groups by name" } ": "
                @if v.link_only { "a pushed group links to the team with exactly its name; create the team first." }
                @else { "a pushed group becomes a team of the same name." } }
        }
    }
}

/// Entra ID's steps (docs/entra.md).
pub(super) fn entra(v: &GuideValues, id: &str) -> Markup {
    html! {
        ol.steps {
            li { strong { "Enterprise applications → New application → Create your own application" } " (Integrate any other application you don't find in the gallery)." }
            li { strong { "Provisioning → Get started" } ", mode " strong { "Automatic" } ". Under " strong { "Admin Credentials" } ":"
                ul {
                    li { strong { "Tenant URL" } ": " (copy_field(&format!("{id}-url"), "Tenant URL", &format!("{}?aadOptscim062020", v.scim_url))) }
                    li { strong { "Secret Token" } ": a token generated on this page." }
                }
            }
            li { strong { "Test Connection" } ": the status above turns to " em { "Connected" } "." }
            li { strong { "Mappings → Provision Microsoft Entra ID Users" } ": keep " code { "userPrincipalName" } " → " code { "userName" } " as matching precedence 1."
                @if let Some(ext) = v.role_extension() {
                    " For the role, add the target attribute " code { (ext) ":" (v.policy.get("role-attribute").and_then(Value::as_str).unwrap_or("role")) } " (values "
                    @for r in v.roles() { code { (r) } " " } ")."
                }
            }
            li { strong { "Mappings → Provision Microsoft Entra ID Groups" } ": " code { "displayName" } " → " code { "displayName" } " (matching)."
                @if v.link_only { " A group links to the team with exactly its name; create the team first." } }
            li { strong { "Settings → Scope" } ": Sync only assigned users and groups, then " strong { "Provisioning Status: On" } "."
                @if let Some(team) = v.default_team() { " Each new user joins the team " strong { (team) } "." } }
        }
    }
}

/// `GET /tenants/{tenant}/guide/{idp}`.
pub(super) async fn show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path((name, idp)): Path<(String, String)>,
) -> Response {
    let (session, tenant) = match tenant_page(&ctx, &headers, name).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let t = tenant.clone();
    let policy = match blocking(&ctx, move |_, rt| tenants::effective_policy(rt, &t)).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let scim_url = ctx.scim_url();
    let values = values(&scim_url, &policy);
    let (tab, title, steps) = match idp.as_str() {
        "okta" => (Tab::Okta, "Okta", okta(&values, "okta")),
        "entra" => (Tab::Entra, "Microsoft Entra ID", entra(&values, "entra")),
        _ => return super::error_page(&tenants::TenantError::NoSuchTenant(idp)),
    };
    let csrf = session.csrf(&ctx.key);
    let body = html! {
        (tabs(&tenant, tab))
        section.card { h2 { "Set up " (title) } (steps) }
    };
    html(StatusCode::OK, page(&shell_of(&tenant, title, &csrf), body))
}

/// The values of a tenant's guides.
pub(super) fn values<'a>(scim_url: &'a str, policy: &'a Value) -> GuideValues<'a> {
    GuideValues {
        scim_url,
        policy,
        link_only: policy.get("team-creation").and_then(Value::as_str) == Some("link-only"),
    }
}
