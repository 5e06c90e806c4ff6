//! `/admin/tenants/{tenant}/setup-links`: self-serve setup links, as `scimlet tenant setup-link`
//! makes them (create, list, revoke).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{blocking, parse_body, AdminState, ApiError, ApiResult};
use crate::tenancy::{self as tenants, setup_links};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route(
            "/admin/tenants/{tenant}/setup-links",
            get(list).post(create),
        )
        .route("/admin/tenants/{tenant}/setup-links/{id}", delete(revoke))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateLink {
    /// A duration such as `72h` or `30m`.
    expires: Option<String>,
}

async fn create(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: CreateLink = if body.iter().all(u8::is_ascii_whitespace) {
        CreateLink::default()
    } else {
        parse_body(&body)?
    };
    let valid_for = match &req.expires {
        Some(text) => setup_links::parse_expiry(text)?,
        None => setup_links::DEFAULT_EXPIRY,
    };
    let base = state.public_url.clone();
    let link = blocking(&state, move |b, _| {
        setup_links::create(b, &tenants::find(b, &name)?, valid_for, &base)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

async fn list(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let links = blocking(&state, move |b, _| {
        setup_links::list(b, &tenants::find(b, &name)?)
    })
    .await?;
    Ok(Json(json!({ "setup_links": links })).into_response())
}

async fn revoke(
    State(state): State<AdminState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |b, _| {
        setup_links::revoke(b, &tenants::find(b, &name)?, &id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
