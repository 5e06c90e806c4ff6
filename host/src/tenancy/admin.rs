//! The admin API: tenant and token management over HTTP, JSON in and out, on a listener of its
//! own and guarded by one admin bearer token. The operations are those of the CLI
//! ([`crate::tenancy`]), and tenants' change feeds (`events`).

mod events;
mod setup_links;
mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::runtime::operator::OperatorError;
use crate::runtime::Runtime;
use crate::store::{Backend, Tenant};
use crate::tenancy::{self as tenants, TenantError, TenantView};

#[derive(Clone)]
struct AdminState {
    backend: Arc<dyn Backend>,
    /// The SCIM component: policies are checked and rendered by it.
    runtime: Runtime,
    /// SHA-256 of the admin token: comparing digests keeps the comparison constant-time even
    /// when the lengths differ.
    token_digest: [u8; 32],
    /// Turns true when the server shuts down: long polls end early.
    closing: tokio::sync::watch::Receiver<bool>,
    /// Webhook administration; `None`: the webhook routes answer 404.
    webhooks: Option<crate::webhooks::Webhooks>,
    /// Scheme and authority of the SCIM listener: the base of setup links.
    public_url: String,
}

/// The admin routes under `/admin`, every one of them (and unknown paths) behind the token.
pub fn router(backend: Arc<dyn Backend>, runtime: Runtime, admin_token: &str) -> Router {
    // Never closing: the sender lives as long as the receivers hold the channel open.
    let (_, closing) = tokio::sync::watch::channel(false);
    router_until(backend, runtime, admin_token, closing)
}

/// [`router`], whose long polls (`events?wait=`) end as soon as `closing` turns true, so that a
/// graceful shutdown does not wait for them.
pub fn router_until(
    backend: Arc<dyn Backend>,
    runtime: Runtime,
    admin_token: &str,
    closing: tokio::sync::watch::Receiver<bool>,
) -> Router {
    router_with(
        backend,
        runtime,
        admin_token,
        closing,
        None,
        "http://127.0.0.1:8080".into(),
    )
}

/// [`router_until`] with the webhook routes (`/admin/tenants/{tenant}/webhooks`), and setup
/// links to the SCIM listener at `public_url` (scheme and authority).
pub fn router_with(
    backend: Arc<dyn Backend>,
    runtime: Runtime,
    admin_token: &str,
    closing: tokio::sync::watch::Receiver<bool>,
    webhooks: Option<crate::webhooks::Webhooks>,
    public_url: String,
) -> Router {
    let state = AdminState {
        backend,
        runtime,
        token_digest: Sha256::digest(admin_token.trim().as_bytes()).into(),
        closing,
        webhooks,
        public_url,
    };
    Router::new()
        .route("/admin/tenants", get(list_tenants).post(create_tenant))
        .route("/admin/tenants/{tenant}", get(show_tenant))
        .route("/admin/tenants/{tenant}/policy", patch(set_policy))
        .route(
            "/admin/tenants/{tenant}/tokens",
            get(list_tokens).post(add_token),
        )
        .route("/admin/tenants/{tenant}/tokens/{id}", delete(revoke_token))
        .route(
            "/admin/tenants/{tenant}/teams",
            get(list_teams).post(create_team),
        )
        .route("/admin/tenants/{tenant}/events", get(events::list))
        .merge(webhooks::routes())
        .merge(setup_links::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such admin endpoint") })
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// An admin API error: `{"error": "..."}` with a 4xx or 5xx status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    /// More members of the error object, for the client's program (a 410's `resume_cursor`).
    extra: Map<String, Value>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            extra: Map::new(),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        let status = match &e {
            TenantError::NoSuchTenant(_)
            | TenantError::NoSuchToken { .. }
            | TenantError::NoSuchLink { .. } => StatusCode::NOT_FOUND,
            TenantError::AlreadyExists(_) => StatusCode::CONFLICT,
            TenantError::Invalid(_) | TenantError::InvalidPolicy(_) => StatusCode::BAD_REQUEST,
            TenantError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            TenantError::Component(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".into(), self.message.into());
        (self.status, Json(Value::Object(body))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

async fn require_token(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let presented = bearer(req.headers()).unwrap_or_default();
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    if presented.is_empty() || !bool::from(digest.ct_eq(&state.token_digest)) {
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the admin API needs the admin bearer token",
        )
        .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scimlet-admin\""),
        );
        return resp;
    }
    next.run(req).await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// One event per admin request; like SCIM requests, never headers or bodies.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = resp.status().as_u16(),
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "admin request"
    );
    resp
}

/// Runs a blocking tenant operation off the async workers.
async fn blocking<T, F>(state: &AdminState, op: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Backend, &Runtime) -> Result<T, TenantError> + Send + 'static,
{
    let (backend, runtime) = (state.backend.clone(), state.runtime.clone());
    tokio::task::spawn_blocking(move || op(backend.as_ref(), &runtime))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the operation failed"))?
        .map_err(ApiError::from)
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid: {e}"),
        )
    })
}

/// A tenant with its effective policy and the keys stored for it.
fn tenant_detail(runtime: &Runtime, tenant: &Tenant) -> Result<Value, TenantError> {
    let effective = tenants::effective_policy(runtime, tenant)?;
    let mut detail = serde_json::to_value(TenantView::from(tenant)).unwrap_or_default();
    detail["policy"] = effective;
    detail["overrides"] = tenant.policy.clone();
    Ok(detail)
}

async fn list_tenants(State(state): State<AdminState>) -> ApiResult {
    let tenants = blocking(&state, |b, _| {
        let all = b.tenants()?;
        Ok(all.iter().map(TenantView::from).collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "tenants": tenants })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct CreateTenant {
    name: String,
    #[serde(default = "standard")]
    profile: String,
    default_team: Option<String>,
}

fn standard() -> String {
    "standard".into()
}

async fn create_tenant(State(state): State<AdminState>, body: Bytes) -> ApiResult {
    let req: CreateTenant = parse_body(&body)?;
    let (tenant, token) = blocking(&state, move |b, rt| {
        tenants::create(b, rt, &req.name, &req.profile, req.default_team.as_deref())
    })
    .await?;
    let location = format!("/admin/tenants/{}", tenant.id);
    let body = json!({"tenant": TenantView::from(&tenant), "token": token});
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

async fn show_tenant(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let detail = blocking(&state, move |b, rt| {
        tenant_detail(rt, &tenants::find(b, &name)?)
    })
    .await?;
    Ok(Json(detail).into_response())
}

async fn set_policy(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let changes: Map<String, Value> = parse_body(&body)?;
    let detail = blocking(&state, move |b, rt| {
        let tenant = tenants::find(b, &name)?;
        tenants::set_policy(b, rt, &tenant, changes)?;
        tenant_detail(rt, &tenants::find(b, &tenant.id)?)
    })
    .await?;
    Ok(Json(detail).into_response())
}

async fn list_tokens(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let tokens = blocking(&state, move |b, _| {
        tenants::tokens(b, &tenants::find(b, &name)?)
    })
    .await?;
    Ok(Json(json!({ "tokens": tokens })).into_response())
}

async fn add_token(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let token = blocking(&state, move |b, _| {
        tenants::issue_token(b, &tenants::find(b, &name)?.id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

async fn revoke_token(
    State(state): State<AdminState>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    blocking(&state, move |b, _| {
        tenants::revoke_token(b, &tenants::find(b, &name)?, &id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Runs a component call for one tenant off the async workers; a refusal keeps the
/// component's status (409 for a team name in use, 400 for a bad one).
async fn in_tenant<T, F>(state: &AdminState, name: String, op: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Arc<dyn Backend>, &Runtime, &Tenant) -> Result<T, OperatorError> + Send + 'static,
{
    let (backend, runtime) = (state.backend.clone(), state.runtime.clone());
    tokio::task::spawn_blocking(move || {
        let tenant = tenants::find(backend.as_ref(), &name)?;
        op(&backend, &runtime, &tenant).map_err(|e| match e {
            OperatorError::Refused { status, detail } if status < 500 => ApiError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                detail,
            ),
            other => ApiError::from(TenantError::from(other)),
        })
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the operation failed"))?
}

async fn list_teams(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let teams = in_tenant(&state, name, |b, rt, t| rt.list_teams(b, t)).await?;
    Ok(Json(json!({ "teams": teams })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTeam {
    name: String,
}

/// Creates a team as the product does (not linked to any IdP group); its `group.created`
/// event names the admin request.
async fn create_team(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: CreateTeam = parse_body(&body)?;
    let request_id = format!("admin-{:016x}", rand::random::<u64>());
    let team = in_tenant(&state, name, move |b, rt, t| {
        rt.create_team(b, t, &req.name, &request_id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_credentials_are_read() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
