//! `/admin/tenants/{tenant}/webhooks`: the tenant's webhook endpoints, as `scimlet webhook`
//! manages them (add, list, show, remove, replay).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{parse_body, AdminState, ApiError, ApiResult};
use crate::webhooks::{WebhookError, Webhooks};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/tenants/{tenant}/webhooks", get(list).post(add))
        .route(
            "/admin/tenants/{tenant}/webhooks/{id}",
            get(show).delete(remove),
        )
        .route("/admin/tenants/{tenant}/webhooks/{id}/replay", post(replay))
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        let status = match &e {
            WebhookError::NoSuchTenant(_) | WebhookError::NoSuchWebhook { .. } => {
                StatusCode::NOT_FOUND
            }
            WebhookError::Url(_)
            | WebhookError::BadType(_)
            | WebhookError::BadCursor(_)
            | WebhookError::Ahead { .. } => StatusCode::BAD_REQUEST,
            WebhookError::Expired { .. } => StatusCode::GONE,
            WebhookError::Secret(_)
            | WebhookError::Unsupported
            | WebhookError::NoKey
            | WebhookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Runs a blocking webhook operation off the async workers.
async fn blocking<T, F>(state: &AdminState, op: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Webhooks) -> Result<T, WebhookError> + Send + 'static,
{
    let hooks = state
        .webhooks
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "webhooks are not served here"))?;
    tokio::task::spawn_blocking(move || op(&hooks))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the operation failed"))?
        .map_err(ApiError::from)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddWebhook {
    url: String,
    #[serde(default)]
    types: Vec<String>,
}

async fn add(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: AddWebhook = parse_body(&body)?;
    let added = blocking(&state, move |w| {
        let types = Webhooks::parse_types(&req.types.join(","))?;
        w.add(&tenant, &req.url, types)
    })
    .await?;
    let location = format!("webhooks/{}", added.webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(added),
    )
        .into_response())
}

async fn list(State(state): State<AdminState>, Path(tenant): Path<String>) -> ApiResult {
    let hooks = blocking(&state, move |w| w.list(&tenant)).await?;
    Ok(Json(json!({ "webhooks": hooks })).into_response())
}

async fn show(
    State(state): State<AdminState>,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult {
    let hook = blocking(&state, move |w| w.get(&tenant, &id)).await?;
    Ok(Json(hook).into_response())
}

async fn remove(
    State(state): State<AdminState>,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult {
    blocking(&state, move |w| w.remove(&tenant, &id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Replay {
    after: String,
}

async fn replay(
    State(state): State<AdminState>,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let req: Replay = parse_body(&body)?;
    let hook = blocking(&state, move |w| w.replay(&tenant, &id, &req.after)).await?;
    Ok(Json(hook).into_response())
}
