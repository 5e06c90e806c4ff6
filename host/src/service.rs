//! The embeddable SCIM handle: `http` 1.x request in, response out, with auth, body limits and
//! back-pressure. The scimlet binary serves it with axum; gateways mount it on a route.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::runtime::{GuestContext, GuestRequest, Runtime};
use crate::store::{hash_token, Backend, Tenant};

/// How the handle serves requests.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Path prefix of the SCIM API (`/scim/v2`).
    pub base_path: String,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Requests served at once; more get 503 with `Retry-After` instead of queueing.
    pub max_concurrency: usize,
    /// Public base URL (scheme and authority) used in `Location`; derived from `Host` if unset.
    pub public_url: Option<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            base_path: "/scim/v2".into(),
            max_body_bytes: 1 << 20,
            max_concurrency: 64,
            public_url: None,
        }
    }
}

/// A cloneable, thread-safe SCIM service over a component and a storage backend.
#[derive(Clone)]
pub struct ScimService {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    backend: Arc<dyn Backend>,
    config: ServiceConfig,
    permits: Arc<Semaphore>,
}

/// The response body type.
pub type ScimBody = Full<Bytes>;

impl ScimService {
    pub fn new(runtime: Runtime, backend: Arc<dyn Backend>, config: ServiceConfig) -> ScimService {
        let permits = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        ScimService {
            inner: Arc::new(Inner {
                runtime,
                backend,
                config,
                permits,
            }),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// Serves one SCIM request. Every failure is a SCIM error response; this never panics.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ScimBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = std::time::Instant::now();
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let resp = self.serve(req).await;
        tracing::info!(%method, %path, status = resp.status().as_u16(), latency_us = started.elapsed().as_micros() as u64, "scim request");
        resp
    }

    async fn serve<B>(&self, req: Request<B>) -> Response<ScimBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let inner = &self.inner;
        let Some(rel_path) = strip_base(req.uri().path(), &inner.config.base_path) else {
            return error(StatusCode::NOT_FOUND, None, "not a SCIM endpoint");
        };
        let rel_path = rel_path.to_string();
        let token = bearer_token(req.headers()).map(str::to_string);
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            let mut resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the server is at capacity; retry shortly",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        };
        let base_url = self.base_url(&req);
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, inner.config.max_body_bytes)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                let detail = format!(
                    "the request body exceeds {} bytes",
                    inner.config.max_body_bytes
                );
                return error(StatusCode::PAYLOAD_TOO_LARGE, None, &detail);
            }
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidSyntax"),
                    "the request body could not be read",
                )
            }
        };
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION)
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let request = GuestRequest {
            method: parts.method.as_str().to_string(),
            path: rel_path,
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers,
            body: body.to_vec(),
            ctx: GuestContext {
                base_url,
                policy: String::new(),
            },
        };
        let this = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.run(token.as_deref(), request)
        })
        .await;
        joined.unwrap_or_else(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "the request handler failed",
            )
        })
    }

    /// Authenticates and runs the guest (blocking).
    fn run(&self, token: Option<&str>, mut request: GuestRequest) -> Response<ScimBody> {
        let tenant = match self.authenticate(token) {
            Ok(t) => t,
            Err(resp) => return *resp,
        };
        request.ctx.policy = tenant.policy.to_string();
        match self
            .inner
            .runtime
            .handle(self.inner.backend.clone(), &tenant, request)
        {
            Ok(resp) => guest_response(resp),
            Err(fault) => {
                tracing::error!(tenant = %tenant.name, "{fault}");
                let status = StatusCode::from_u16(fault.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error(status, None, &fault.to_string())
            }
        }
    }

    fn authenticate(&self, token: Option<&str>) -> Result<Tenant, Box<Response<ScimBody>>> {
        let unauthorized = |detail: &str| {
            let mut resp = error(StatusCode::UNAUTHORIZED, None, detail);
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimlet\""),
            );
            Box::new(resp)
        };
        let Some(token) = token else {
            return Err(unauthorized(
                "a bearer token is required (Authorization: Bearer <token>)",
            ));
        };
        match self.inner.backend.tenant_for_token(&hash_token(token)) {
            Ok(Some(tenant)) => Ok(tenant),
            Ok(None) => Err(unauthorized("the bearer token is not valid")),
            Err(e) => {
                tracing::error!("token lookup failed: {e}");
                Err(Box::new(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "storage unavailable",
                )))
            }
        }
    }

    fn base_url<B>(&self, req: &Request<B>) -> String {
        let base_path = self.inner.config.base_path.trim_end_matches('/');
        if let Some(public) = &self.inner.config.public_url {
            return format!("{}{base_path}", public.trim_end_matches('/'));
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = req.uri().scheme_str().unwrap_or("http");
        format!("{scheme}://{host}{base_path}")
    }
}

fn strip_base<'p>(path: &'p str, base: &str) -> Option<&'p str> {
    let base = base.trim_end_matches('/');
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// `Authorization: Bearer <token>`; Okta's "Header" mode sends the token without a scheme.
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => value,
    };
    (!token.is_empty()).then_some(token)
}

fn guest_response(resp: crate::runtime::GuestResponse) -> Response<ScimBody> {
    let mut out = Response::new(Full::new(Bytes::from(resp.body)));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in resp.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    out
}

/// A SCIM error response made by the host (RFC 7644 §3.12; `status` is a string).
pub fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response<ScimBody> {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = t.into();
    }
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    resp
}

impl<B> tower::Service<Request<B>> for ScimService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<ScimBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_matching_is_segment_exact() {
        assert_eq!(strip_base("/scim/v2/Users", "/scim/v2"), Some("/Users"));
        assert_eq!(strip_base("/scim/v2", "/scim/v2/"), Some("/"));
        assert_eq!(strip_base("/scim/v2x/Users", "/scim/v2"), None);
    }

    #[test]
    fn bearer_tokens_are_read_from_both_okta_modes() {
        let mut h = http::HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
    }
}
