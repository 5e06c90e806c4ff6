//! A tenant's page: its SCIM section (status, URL, identifier, tokens, default team), teams,
//! setup links, and the tabs to its users, activity, webhooks and IdP guides.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};

use super::layout::{csrf_field, page, shown_once, when, Assets, Shell};
use super::scim::{self, ScimData};
use super::session::Session;
use super::{blocking, html, page_session, posted_form, see_other, Ctx};
use crate::store::{Backend, Tenant};
use crate::tenancy::setup_links::{self, SetupLink};
use crate::tenancy::{self as tenants, TenantError};

/// The tabs of a tenant's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    Scim,
    Users,
    Activity,
    Webhooks,
    Okta,
    Entra,
}

/// The header and tabs of a tenant's page.
pub(super) fn shell_of<'a>(tenant: &Tenant, title: &'a str, csrf: &'a str) -> Shell<'a> {
    Shell {
        title,
        crumbs: vec![
            ("Tenants".into(), Some("/".into())),
            (
                tenant.name.clone(),
                Some(format!("/tenants/{}", tenant.name)),
            ),
        ],
        csrf: Some(csrf),
        assets: Assets::Console,
    }
}

/// The tenant's heading and tab bar.
pub(super) fn tabs(tenant: &Tenant, current: Tab) -> Markup {
    let base = format!("/tenants/{}", tenant.name);
    let items = [
        (Tab::Scim, "SCIM", base.clone()),
        (Tab::Users, "Users", format!("{base}/users")),
        (Tab::Activity, "Activity", format!("{base}/activity")),
        (Tab::Webhooks, "Webhooks", format!("{base}/webhooks")),
        (Tab::Okta, "Okta guide", format!("{base}/guide/okta")),
        (Tab::Entra, "Entra ID guide", format!("{base}/guide/entra")),
    ];
    html! {
        h1 { (tenant.name) " " span.muted { "· " (tenants::profile_of(tenant)) " profile" } }
        nav.tabs aria-label="Tenant" {
            @for (tab, label, href) in items {
                a href=(href) aria-current=[(tab == current).then_some("page")] { (label) }
            }
        }
    }
}

/// Loads the tenant by name or id, off the async workers.
pub(super) async fn load_tenant(ctx: &Ctx, name: String) -> Result<Tenant, Response> {
    blocking(ctx, move |b, _| tenants::find(b.as_ref(), &name)).await
}

/// The signed-in session and the tenant of a page request; otherwise the sign-in page (or
/// the error page) is the answer.
pub(super) async fn tenant_page(
    ctx: &Ctx,
    headers: &HeaderMap,
    name: String,
) -> Result<(Session, Tenant), Response> {
    let session = page_session(ctx, headers)?;
    Ok((session, load_tenant(ctx, name).await?))
}

/// `GET /tenants/{tenant}`.
pub(super) async fn show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match tenant_page(&ctx, &headers, name).await {
        Ok((session, t)) => render(&ctx, &session, t, None, None, StatusCode::OK).await,
        Err(resp) => resp,
    }
}

/// The tenant's SCIM page, with a token or a setup link just made (shown once).
pub(super) async fn render(
    ctx: &Ctx,
    session: &Session,
    tenant: Tenant,
    new_token: Option<String>,
    new_link: Option<String>,
    status: StatusCode,
) -> Response {
    let id = tenant.id.clone();
    let loaded = blocking(ctx, move |b, rt| {
        let links = setup_links::list(b.as_ref(), &tenant)?;
        Ok((ScimData::load(b, rt, tenant, 0)?, links))
    })
    .await;
    let (data, links) = match loaded {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let csrf = session.csrf(&ctx.key);
    let base = format!("/tenants/{}", data.tenant.name);
    let body = html! {
        (tabs(&data.tenant, Tab::Scim))
        (scim::settings(&data, &ctx.scim_url(), &base, &csrf, new_token.as_deref()))
        div.grid2 {
            (scim::teams(&data, Some((&format!("{base}/teams"), &csrf))))
            (links_section(&links, &base, &csrf, new_link.as_deref()))
        }
        section.card aria-labelledby="roles-h" {
            h2 #roles-h { "Roles" }
            dl.fields {
                dt { "Accepted roles" }
                dd { @for r in data.policy.get("roles").and_then(|v| v.as_array()).into_iter().flatten() { code { (r.as_str().unwrap_or_default()) } " " } }
                dt { "Default role" }
                dd { @match data.policy.get("default-role").and_then(|v| v.as_str()) { Some(r) => code { (r) }, None => span.muted { "none" } } }
                dt { "Tenant id" }
                dd { code { (id) } }
            }
            p.hint { "Change them with " code { "scimlet tenant set" } " or the admin API." }
        }
    };
    let shell = shell_of(&data.tenant, &data.tenant.name, &csrf);
    html(status, page(&shell, body))
}

fn links_section(links: &[SetupLink], base: &str, csrf: &str, new_link: Option<&str>) -> Markup {
    let now = super::layout::now();
    let live: Vec<&SetupLink> = links
        .iter()
        .filter(|l| !l.revoked && l.expires_at > now)
        .collect();
    html! {
        section.card aria-labelledby="links-h" {
            h2 #links-h { "Self-serve setup" }
            p.hint { "A link for the customer's IT administrator: this tenant's SCIM settings and the identity provider steps, nothing else. It expires after 72 hours." }
            form.inline method="post" action={ (base) "/setup-links" } {
                (csrf_field(csrf))
                button type="submit" { "Create setup link" }
            }
            @if let Some(url) = new_link {
                (shown_once("setup-link", "Setup link", url, "Shown only now. Send it to the customer's administrator."))
            }
            @if !live.is_empty() {
                div.table-wrap {
                    table {
                        thead { tr { th { "Link" } th { "Expires" } th {} } }
                        tbody {
                            @for l in &live {
                                tr {
                                    td.mono { (l.id) }
                                    td { (when(l.expires_at)) }
                                    td.num {
                                        form.inline method="post" action={ (base) "/setup-links/" (l.id) "/revoke" } {
                                            (csrf_field(csrf))
                                            button.danger type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn form_and_tenant(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
    name: String,
) -> Result<(Session, super::Form, Tenant), Response> {
    let (session, form) = posted_form(ctx, headers, body)?;
    let tenant = load_tenant(ctx, name).await?;
    Ok((session, form, tenant))
}

/// `POST /tenants/{tenant}/tokens`: a new token, shown once on the page.
pub(super) async fn generate_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _, tenant) = match form_and_tenant(&ctx, &headers, &body, name).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let id = tenant.id.clone();
    match blocking(&ctx, move |b, _| tenants::issue_token(b.as_ref(), &id)).await {
        Ok(token) => {
            render(
                &ctx,
                &session,
                tenant,
                Some(token.token),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(resp) => resp,
    }
}

/// A destructive action's confirmation page: names what it affects; its button is the only
/// control of its form, so a stray Enter elsewhere submits nothing.
pub(super) fn confirm_page(
    shell: &Shell,
    csrf: &str,
    title: &str,
    text: Markup,
    action: &str,
    button: &str,
    back: &str,
) -> Markup {
    page(
        shell,
        html! {
            div.card {
                h1 { (title) }
                p { (text) }
                form.inline method="post" action=(action) {
                    (csrf_field(csrf))
                    input type="hidden" name="confirm" value="yes";
                    button.danger.solid type="submit" { (button) }
                    a.button.secondary href=(back) { "Cancel" }
                }
            }
        },
    )
}

/// The question a revocation asks once: what it affects and what follows.
pub(super) fn revoke_question(what: &str, id: &str, tenant: &str, consequence: &str) -> Markup {
    html! {
        "Revoke " (what) " " code { (id) } " of " strong { (tenant) } "? " (consequence)
    }
}

/// What a revocation names and does.
struct Revocation {
    /// "token", "setup link".
    what: &'static str,
    /// The path segment of its kind under the tenant (`tokens`, `setup-links`).
    segment: &'static str,
    consequence: &'static str,
    revoke: fn(&dyn Backend, &Tenant, &str) -> Result<(), TenantError>,
}

/// A revocation form: without `confirm=yes` the page asking once (its button the only control
/// of its form), with it the revocation, then back to the tenant's page.
async fn revoke(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
    (name, id): (String, String),
    r: Revocation,
) -> Response {
    let (session, form, tenant) = match form_and_tenant(ctx, headers, body, name).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let back = format!("/tenants/{}", tenant.name);
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let csrf = session.csrf(&ctx.key);
        let title = format!("Revoke {}", r.what);
        let shell = shell_of(&tenant, &title, &csrf);
        let text = revoke_question(r.what, &id, &tenant.name, r.consequence);
        let action = format!("{back}/{}/{id}/revoke", r.segment);
        let page = confirm_page(&shell, &csrf, &title, text, &action, &title, &back);
        return html(StatusCode::OK, page);
    }
    match blocking(ctx, move |b, _| (r.revoke)(b.as_ref(), &tenant, &id)).await {
        Ok(()) => see_other(&back),
        Err(resp) => resp,
    }
}

/// `POST /tenants/{tenant}/tokens/{id}/revoke`: asks once, then revokes.
pub(super) async fn revoke_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(ids): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let r = Revocation {
        what: "token",
        segment: "tokens",
        consequence: "The identity provider using it gets 401 from its next request on, until \
                      it is given another token.",
        revoke: tenants::revoke_token,
    };
    revoke(&ctx, &headers, &body, ids, r).await
}

/// `POST /tenants/{tenant}/default-team`.
pub(super) async fn save_default_team(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (_, form, tenant) = match form_and_tenant(&ctx, &headers, &body, name).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let team = form.get("team").cloned().unwrap_or_default();
    let back = format!("/tenants/{}", tenant.name);
    match blocking(&ctx, move |b, rt| {
        scim::save_default_team(b.as_ref(), rt, &tenant, &team)
    })
    .await
    {
        Ok(()) => see_other(&back),
        Err(resp) => resp,
    }
}

/// `POST /tenants/{tenant}/teams`.
pub(super) async fn create_team(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (_, form, tenant) = match form_and_tenant(&ctx, &headers, &body, name).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let team = form
        .get("name")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let back = format!("/tenants/{}", tenant.name);
    let request_id = format!("console-{:016x}", rand::random::<u64>());
    let made = blocking(&ctx, move |b, rt| {
        rt.create_team(b, &tenant, &team, &request_id)
            .map_err(|e| match e {
                crate::runtime::operator::OperatorError::Refused { detail, .. } => {
                    TenantError::Invalid(detail)
                }
                other => TenantError::from(other),
            })
    })
    .await;
    match made {
        Ok(_) => see_other(&back),
        Err(resp) => resp,
    }
}

/// `POST /tenants/{tenant}/setup-links`: a new link, shown once on the page.
pub(super) async fn create_setup_link(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _, tenant) = match form_and_tenant(&ctx, &headers, &body, name).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let (t, base) = (tenant.clone(), ctx.public_url.clone());
    let made = blocking(&ctx, move |b, _| {
        setup_links::create(b.as_ref(), &t, setup_links::DEFAULT_EXPIRY, &base)
    })
    .await;
    match made {
        Ok(link) => {
            render(
                &ctx,
                &session,
                tenant,
                None,
                Some(link.url),
                StatusCode::CREATED,
            )
            .await
        }
        Err(resp) => resp,
    }
}

/// `POST /tenants/{tenant}/setup-links/{id}/revoke`: asks once, then revokes.
pub(super) async fn revoke_setup_link(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(ids): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let r = Revocation {
        what: "setup link",
        segment: "setup-links",
        consequence: "Whoever holds it can no longer open the setup page; tokens made with it \
                      keep working.",
        revoke: setup_links::revoke,
    };
    revoke(&ctx, &headers, &body, ids, r).await
}
