//! `GET /admin/tenants/{tenant}/events?after=CURSOR&limit=N&wait=SECONDS`: a page of the
//! tenant's change feed, long-polled when `wait` is given and no event follows the cursor yet.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{AdminState, ApiError};
use crate::events::feed::{self, Feed, FeedError, FeedPage};

impl From<FeedError> for ApiError {
    fn from(e: FeedError) -> Self {
        let status = match &e {
            FeedError::NoSuchTenant(_) => StatusCode::NOT_FOUND,
            FeedError::BadCursor(_) | FeedError::BadLimit(_) | FeedError::Ahead { .. } => {
                StatusCode::BAD_REQUEST
            }
            FeedError::Expired { .. } => StatusCode::GONE,
            FeedError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut err = ApiError::new(status, e.to_string());
        if let FeedError::Expired { resume, .. } = e {
            err.extra
                .insert("resume_cursor".into(), resume.to_string().into());
        }
        err
    }
}

/// The query, checked: each bad parameter is a 400 naming it.
#[derive(Debug)]
struct EventsQuery {
    after: Option<crate::events::Cursor>,
    limit: usize,
    wait: Duration,
}

fn parse_query(pairs: Vec<(String, String)>) -> Result<EventsQuery, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let mut q = EventsQuery {
        after: None,
        limit: feed::DEFAULT_LIMIT,
        wait: Duration::ZERO,
    };
    let max_wait = feed::MAX_WAIT.as_secs();
    for (name, value) in pairs {
        match name.as_str() {
            "after" => {
                q.after = Feed::parse_cursor(&value).map_err(|e| bad(format!("after: {e}")))?
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=feed::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "limit must be an integer from 1 to {}",
                            feed::MAX_LIMIT
                        ))
                    })?;
            }
            "wait" => {
                let secs: u64 = value
                    .parse()
                    .ok()
                    .filter(|s| *s <= max_wait)
                    .ok_or_else(|| {
                        bad(format!("wait must be whole seconds from 0 to {max_wait}"))
                    })?;
                q.wait = Duration::from_secs(secs);
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter '{other}' (known: after, limit, wait)"
                )))
            }
        }
    }
    Ok(q)
}

pub(super) async fn list(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let q = parse_query(pairs)?;
    let feed = Feed::new(state.backend.clone());
    let mut closing = state.closing.clone();
    let page: FeedPage = tokio::select! {
        page = feed.wait(&tenant, q.after, q.limit, q.wait) => page?,
        // Shutting down: a long poll ends now rather than holding the shutdown up; the client
        // polls again from the same cursor.
        () = shut_down(&mut closing) => feed.wait(&tenant, q.after, q.limit, Duration::ZERO).await?,
    };
    Ok(Json(page.to_json()).into_response())
}

/// Resolves once `closing` turns true; never when its sender is gone without closing.
async fn shut_down(closing: &mut tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<EventsQuery, String> {
        parse_query(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
        .map_err(|e| e.message)
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let ok = q(&[("limit", "1000"), ("wait", "60"), ("after", "")]).unwrap();
        assert_eq!((ok.limit, ok.wait.as_secs(), ok.after), (1000, 60, None));
        assert_eq!(q(&[]).unwrap().limit, feed::DEFAULT_LIMIT);
        for (name, value) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "ten"),
            ("wait", "61"),
            ("wait", "-1"),
            ("after", "zzz"),
            ("cursor", "x"),
        ] {
            let err = q(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
    }
}
