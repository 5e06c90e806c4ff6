//! The self-serve setup page, on the SCIM listener at `/setup/{link}`: one tenant's SCIM base
//! URL, unique identifier, tokens, default team, teams and the Okta and Entra ID steps, and
//! nothing else. The link is the credential (see [`crate::tenancy::setup_links`]); its forms
//! carry a token derived from it and must come from the same origin.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use super::guides;
use super::layout::{page, Assets, Shell};
use super::scim::{self, ScimData};
use super::{html, parse_form, same_origin, see_other, ConsoleConfig, Ctx};
use crate::runtime::Runtime;
use crate::store::{Backend, Tenant};
use crate::tenancy::setup_links::{self, LinkRefused};
use crate::tenancy::{self as tenants, TenantError};

/// The setup page's routes, to merge into the SCIM listener's router.
pub fn router(backend: Arc<dyn Backend>, runtime: Runtime, config: &ConsoleConfig) -> Router {
    let ctx = Ctx::new(backend, runtime, None, config);
    Router::new()
        .route("/setup/{link}", get(show))
        .route("/setup/{link}/tokens", post(generate_token))
        .route("/setup/{link}/tokens/{id}/revoke", post(revoke_token))
        .route("/setup/{link}/default-team", post(save_default_team))
        .merge(super::asset_routes("/setup-assets"))
        .layer(middleware::from_fn(super::security_headers))
        .with_state(ctx)
}

fn shell(title: &str) -> Shell<'_> {
    Shell {
        title,
        crumbs: Vec::new(),
        csrf: None,
        assets: Assets::Setup,
    }
}

fn refused_page(why: &LinkRefused) -> Response {
    let (status, title, text) = match why {
        LinkRefused::Invalid => (
            StatusCode::FORBIDDEN,
            "This setup link is not valid",
            "The link is incomplete or was altered. Copy it again, whole, from the message you \
             received.",
        ),
        LinkRefused::Gone => (
            StatusCode::GONE,
            "This setup link has expired",
            "It expired or was revoked. Ask for a new link: each is valid for a limited time.",
        ),
        LinkRefused::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service could not be reached. Try again in a minute.",
        ),
    };
    let body = html! { div.card { h1 { (title) } p { (text) } } };
    html(status, page(&shell(title), body))
}

fn failed_page(e: &TenantError) -> Response {
    let status = match e {
        TenantError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        TenantError::Component(_) => StatusCode::INTERNAL_SERVER_ERROR,
        TenantError::NoSuchTenant(_)
        | TenantError::NoSuchToken { .. }
        | TenantError::NoSuchLink { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = html! { div.card { h1 { "Not done" } p { (e.to_string()) } } };
    html(status, page(&shell("Not done"), body))
}

/// What a link-authorised operation failed with.
enum Failed {
    Link(LinkRefused),
    Op(TenantError),
}

impl From<LinkRefused> for Failed {
    fn from(e: LinkRefused) -> Self {
        Failed::Link(e)
    }
}

impl From<TenantError> for Failed {
    fn from(e: TenantError) -> Self {
        Failed::Op(e)
    }
}

fn failed(f: Failed) -> Response {
    match f {
        Failed::Link(why) => refused_page(&why),
        Failed::Op(e) => failed_page(&e),
    }
}

/// Opens the link, then runs `op` for its tenant, off the async workers.
async fn with_link<T, F>(ctx: &Ctx, link: String, op: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&Arc<dyn Backend>, &Runtime, Tenant, String) -> Result<T, Failed> + Send + 'static,
{
    let (backend, runtime) = (ctx.backend.clone(), ctx.runtime.clone());
    let done = tokio::task::spawn_blocking(move || {
        let (tenant, _) = setup_links::open(backend.as_ref(), &link)?;
        let form_token = setup_links::form_token(backend.as_ref(), &tenant, &link)
            .map_err(|e| Failed::Link(LinkRefused::Unavailable(e.to_string())))?;
        op(&backend, &runtime, tenant, form_token)
    })
    .await;
    match done {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(f)) => Err(failed(f)),
        Err(_) => Err(failed_page(&TenantError::Component(
            "the operation failed".into(),
        ))),
    }
}

async fn render(
    ctx: &Ctx,
    link: String,
    new_token: Option<String>,
    status: StatusCode,
) -> Response {
    let loaded = with_link(ctx, link.clone(), |b, rt, tenant, csrf| {
        Ok((ScimData::load(b, rt, tenant, i64::MAX)?, csrf))
    })
    .await;
    let (data, csrf) = match loaded {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let scim_url = ctx.scim_url();
    let base = format!("/setup/{link}");
    let values = guides::values(&scim_url, &data.policy);
    let title = format!("{} — SCIM provisioning", data.tenant.name);
    let body = html! {
        h1 { (title) }
        p.muted { "Connect your identity provider to provision this organization's users and teams." }
        (scim::settings(&data, &scim_url, &base, &csrf, new_token.as_deref()))
        section.card aria-labelledby="idp-h" {
            h2 #idp-h { "Set up your identity provider" }
            details open {
                summary { strong { "Okta" } }
                (guides::okta(&values, "okta"))
            }
            details {
                summary { strong { "Microsoft Entra ID" } }
                (guides::entra(&values, "entra"))
            }
        }
        (scim::teams(&data, None))
    };
    html(status, page(&shell(&title), body))
}

/// `GET /setup/{link}`.
async fn show(State(ctx): State<Ctx>, Path(link): Path<String>) -> Response {
    render(&ctx, link, None, StatusCode::OK).await
}

/// Checks a setup form's origin and token; then runs `op`.
async fn posted<T, F>(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
    link: String,
    op: F,
) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&Arc<dyn Backend>, &Runtime, Tenant, super::Form) -> Result<T, TenantError>
        + Send
        + 'static,
{
    let form = parse_form(body);
    let origin_ok = same_origin(Some(&ctx.public_url), ctx.secure, headers)
        || same_origin(None, ctx.secure, headers);
    with_link(ctx, link, move |b, rt, tenant, expected| {
        let presented = form.get("csrf").map(String::as_str).unwrap_or_default();
        let ok = origin_ok
            && subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into();
        if !ok {
            return Err(Failed::Link(LinkRefused::Invalid));
        }
        Ok(op(b, rt, tenant, form)?)
    })
    .await
}

/// `POST /setup/{link}/tokens`.
async fn generate_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let made = posted(&ctx, &headers, &body, link.clone(), |b, _, t, _| {
        tenants::issue_token(b.as_ref(), &t.id)
    })
    .await;
    match made {
        Ok(token) => render(&ctx, link, Some(token.token), StatusCode::CREATED).await,
        Err(resp) => resp,
    }
}

/// `POST /setup/{link}/tokens/{id}/revoke`: asks once, then revokes.
async fn revoke_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path((link, token_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let back = format!("/setup/{link}");
    let id = token_id.clone();
    let done = posted(&ctx, &headers, &body, link.clone(), move |b, _, t, form| {
        if form.get("confirm").map(String::as_str) != Some("yes") {
            return Ok(Some((
                t.name,
                form.get("csrf").cloned().unwrap_or_default(),
            )));
        }
        tenants::revoke_token(b.as_ref(), &t, &id)?;
        Ok(None)
    })
    .await;
    match done {
        Ok(None) => see_other(&back),
        Ok(Some((tenant, csrf))) => {
            let text = super::tenant::revoke_question(
                "token",
                &token_id,
                &tenant,
                "Your identity provider gets 401 from its next request on, until you give it \
                 another token.",
            );
            let action = format!("{back}/tokens/{token_id}/revoke");
            let page = super::tenant::confirm_page(
                &shell("Revoke token"),
                &csrf,
                "Revoke token",
                text,
                &action,
                "Revoke token",
                &back,
            );
            html(StatusCode::OK, page)
        }
        Err(resp) => resp,
    }
}

/// `POST /setup/{link}/default-team`.
async fn save_default_team(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/setup/{link}");
    let done = posted(&ctx, &headers, &body, link, |b, rt, t, form| {
        let team = form.get("team").cloned().unwrap_or_default();
        scim::save_default_team(b.as_ref(), rt, &t, &team)
    })
    .await;
    match done {
        Ok(()) => see_other(&back),
        Err(resp) => resp,
    }
}
