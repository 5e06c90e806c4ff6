//! The embeddable SCIM handle: `http` 1.x request in, response out, with auth, body limits,
//! back-pressure (concurrency limit, per-tenant rate limit, request timeout), request ids, one
//! log event and metrics per request. The scimlet binary serves it with axum; gateways mount it
//! on a route.

use std::convert::Infallible;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::header::HeaderName;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use rand::Rng;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::body::{BodyError, ScimBody};
use crate::audit::{AuditLog, Record as AuditRecord};
use crate::metrics::{Metrics, Resource};
use crate::runtime::{
    BodyStream, GuestContext, GuestRequest, Handled, HostFailure, Runtime, StreamFailure,
};
use crate::store::{hash_token, Backend, Tenant};
use crate::usage::{Hit, UsageLog};

/// The request id header: taken from the client when sane, else generated; always echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How the handle serves requests.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Path prefix of the SCIM API (`/scim/v2`).
    pub base_path: String,
    /// Largest request body accepted (413 beyond), except on the component's large-body routes.
    pub max_body_bytes: usize,
    /// Largest request body accepted on the routes the component declares large
    /// (`PUT /Groups/{id}`, which carries every member): 16 MiB, about 230 000 members.
    pub max_large_body_bytes: usize,
    /// Requests served at once; more get 503 with `Retry-After` instead of queueing.
    pub max_concurrency: usize,
    /// Public base URL (scheme and authority) used in `Location`; derived from `Host` if unset.
    pub public_url: Option<String>,
    /// Whether clients reach the service over HTTPS (the scheme of URLs derived from `Host`).
    pub https: bool,
    /// Longest a request waits for the guest; beyond it 503 with `Retry-After`.
    pub request_timeout: Duration,
    /// Requests per second per tenant, in bursts of as many; beyond it 429 with `Retry-After`.
    pub tenant_rate_limit: Option<NonZeroU32>,
    /// Provisioning records kept per tenant in the audit log (`None`: no audit log).
    pub audit_retention: Option<u64>,
    /// Reads (`GET`) run in the component at most this many at once; more wait their turn in
    /// arrival order. Reads are CPU-bound: running more than the machine has cores only lets
    /// the OS scheduler preempt them mid-request, which shows as tail latency. Writes are not
    /// limited (they mostly wait for the disk). Default: three per available core.
    pub max_concurrent_reads: usize,
    /// Whether each tenant's connection status and hourly usage are recorded (in the
    /// background, see [`crate::usage`]) for the console.
    pub usage: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            base_path: "/scim/v2".into(),
            max_body_bytes: 1 << 20,
            max_large_body_bytes: 16 << 20,
            max_concurrency: 64,
            public_url: None,
            https: false,
            request_timeout: Duration::from_secs(30),
            tenant_rate_limit: None,
            audit_retention: Some(100_000),
            max_concurrent_reads: std::thread::available_parallelism().map_or(6, |n| n.get() * 3),
            usage: true,
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
    reads: Arc<Semaphore>,
    /// One token bucket per tenant id.
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    audit: Option<AuditLog>,
    usage: Option<UsageLog>,
}

impl ScimService {
    /// A service counting its requests in the runtime's [`Metrics`].
    pub fn new(runtime: Runtime, backend: Arc<dyn Backend>, config: ServiceConfig) -> ScimService {
        let capacity = config.max_concurrency.max(1);
        let permits = Arc::new(Semaphore::new(capacity));
        let reads = Arc::new(Semaphore::new(config.max_concurrent_reads.max(1)));
        runtime.metrics().set_instance_capacity(capacity);
        let limiter = config
            .tenant_rate_limit
            .map(|n| RateLimiter::keyed(Quota::per_second(n)));
        let audit = config
            .audit_retention
            .map(|keep| AuditLog::start(backend.clone(), keep));
        let usage = config.usage.then(|| UsageLog::start(backend.clone()));
        ScimService {
            inner: Arc::new(Inner {
                runtime,
                backend,
                config,
                permits,
                reads,
                limiter,
                audit,
                usage,
            }),
        }
    }

    /// The storage backend requests are served from.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// The component requests run in.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The change feed of the tenants this service serves: a product embedding the service
    /// reads it in-process, after the cursor it last applied.
    pub fn feed(&self) -> crate::events::Feed {
        crate::events::Feed::new(self.inner.backend.clone())
    }

    /// The component's response for a failure the host detected.
    fn page(&self, failure: HostFailure) -> Response<ScimBody> {
        let page = self.inner.runtime.error_page(failure);
        let mut resp = Response::new(ScimBody::full(page.body.clone()));
        *resp.status_mut() =
            StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        append_headers(&mut resp, page.headers.iter().cloned());
        resp
    }

    /// A failure page telling the client when to retry (whole seconds, at least one).
    fn retry_later(&self, failure: HostFailure, after: Duration) -> Response<ScimBody> {
        let mut resp = self.page(failure);
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        resp
    }

    /// Waits until every provisioning record so far is stored (tests, shutdown).
    pub fn flush_audit(&self) {
        if let Some(log) = &self.inner.audit {
            log.flush();
        }
    }

    /// The metrics requests are counted in.
    pub fn metrics(&self) -> &Metrics {
        self.inner.runtime.metrics()
    }

    /// Whether the service can serve: the component is loaded (it is, once this handle exists)
    /// and the store answers a trivial read within the request timeout.
    pub async fn ready(&self) -> Result<(), String> {
        let backend = self.inner.backend.clone();
        // Any id does: the read only has to reach the store.
        let read = tokio::task::spawn_blocking(move || backend.tenant("t_0000000000000000"));
        match tokio::time::timeout(self.inner.config.request_timeout, read).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(_)) => Err("the store probe failed".into()),
            Err(_) => Err("the store did not answer in time".into()),
        }
    }

    /// Serves one SCIM request. Every failure is a SCIM error response; this never panics.
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<ScimBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let request_id = request_id(req.headers());
        req.headers_mut().insert(REQUEST_ID, request_id.clone());
        // The path only: the query string may carry personal data (filters on userName).
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let tenant = Arc::new(OnceLock::new());
        let mut resp = self.serve(req, tenant.clone()).await;
        let elapsed = started.elapsed();
        let status = resp.status().as_u16();
        let resource = strip_base(&path, &self.inner.config.base_path)
            .map_or(Resource::Other, Resource::of_path);
        self.metrics().observe_request(resource, status, elapsed);
        tracing::info!(
            request_id = request_id.to_str().unwrap_or_default(),
            tenant = tenant.get().map_or("-", String::as_str),
            %method,
            %path,
            status,
            latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "scim request"
        );
        resp.headers_mut().insert(REQUEST_ID, request_id);
        // Every 503 is temporary (the store unreachable, at capacity, out of time): tell the
        // client when to come back, also when the component rendered it (a store call failed).
        if status == 503 && !resp.headers().contains_key(header::RETRY_AFTER) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        }
        resp
    }

    /// Serves a request; `tenant` receives the tenant's name once the token is resolved.
    async fn serve<B>(&self, req: Request<B>, tenant: Arc<OnceLock<String>>) -> Response<ScimBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let inner = &self.inner;
        let Some(rel_path) = strip_base(req.uri().path(), &inner.config.base_path) else {
            return self.page(HostFailure::NotAnEndpoint);
        };
        let rel_path = rel_path.to_string();
        let token = bearer_token(req.headers()).map(str::to_string);
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            return self.retry_later(HostFailure::AtCapacity, Duration::from_secs(1));
        };
        let base_url = self.base_url(&req);
        let (parts, body) = req.into_parts();
        let limit = if inner
            .runtime
            .takes_large_body(parts.method.as_str(), &rel_path)
        {
            inner.config.max_large_body_bytes
        } else {
            inner.config.max_body_bytes
        };
        // A client that sends its headers and then trickles (or withholds) its body must not
        // hold a slot for longer than a request may take.
        let collected = tokio::time::timeout(
            inner.config.request_timeout,
            Limited::new(body, limit).collect(),
        )
        .await;
        let Ok(collected) = collected else {
            return self.page(HostFailure::BodyTimeout);
        };
        let body = match collected {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return self.page(HostFailure::PayloadTooLarge(limit as u64));
            }
            Err(_) => return self.page(HostFailure::UnreadableBody),
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
        let reads = (request.method == "GET").then(|| inner.reads.clone());
        let task = async move {
            // The semaphore is never closed, so acquiring only waits.
            let read_turn = match reads {
                Some(reads) => reads.acquire_owned().await.ok(),
                None => None,
            };
            // The permits move into the task: a request that timed out keeps its slot until
            // the guest really stops (at the latest at its CPU deadline); a streamed response
            // keeps the request slot until its last chunk.
            tokio::task::spawn_blocking(move || {
                let _read_turn = read_turn;
                this.run(token.as_deref(), request, &tenant, permit)
            })
            .await
        };
        match tokio::time::timeout(inner.config.request_timeout, task).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(_)) => self.page(HostFailure::ComponentFailed),
            Err(_) => self.retry_later(HostFailure::TimedOut, Duration::from_secs(1)),
        }
    }

    /// Authenticates, applies the tenant's rate limit and runs the guest (blocking).
    fn run(
        &self,
        token: Option<&str>,
        request: GuestRequest,
        tenant_name: &OnceLock<String>,
        permit: OwnedSemaphorePermit,
    ) -> Response<ScimBody> {
        let (tenant, token_hash) = match self.authenticate(token) {
            Ok(found) => found,
            Err(resp) => return *resp,
        };
        let _ = tenant_name.set(tenant.name.clone());
        let Some(usage) = &self.inner.usage else {
            return self.run_as(&tenant, request, permit);
        };
        let (method, path) = (request.method.clone(), request.path.clone());
        let user_agent = request
            .headers
            .iter()
            .find(|(k, _)| k == "user-agent")
            .map(|(_, v)| v.clone());
        let resp = self.run_as(&tenant, request, permit);
        usage.record(Hit {
            tenant_id: tenant.id,
            token_hash,
            user_agent,
            method,
            path,
            status: resp.status().as_u16(),
        });
        resp
    }

    /// Runs the guest for an authenticated request (blocking).
    fn run_as(
        &self,
        tenant: &Tenant,
        mut request: GuestRequest,
        permit: OwnedSemaphorePermit,
    ) -> Response<ScimBody> {
        if let Some(resp) = self.rate_limited(tenant) {
            return resp;
        }
        request.ctx.policy = tenant.policy.to_string();
        let header_of = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (request_id, user_agent) = (
            header_of("x-request-id").unwrap_or_default(),
            header_of("user-agent"),
        );
        let (method, path) = (request.method.clone(), request.path.clone());
        match self
            .inner
            .runtime
            .handle(self.inner.backend.clone(), tenant, request)
        {
            Ok(handled) => {
                // The guest's provisioning record goes to the audit log, never to the client.
                if let (Some(log), Some(record)) = (&self.inner.audit, &handled.audit) {
                    log.record(AuditRecord {
                        tenant_id: tenant.id.clone(),
                        request_id,
                        user_agent,
                        method,
                        path,
                        status: handled.status,
                        operation: serde_json::from_str(record).unwrap_or(serde_json::Value::Null),
                    });
                }
                self.respond(handled, permit)
            }
            Err(fault) => {
                tracing::error!(tenant = %tenant.name, "{fault}");
                self.page(fault.failure())
            }
        }
    }

    /// The HTTP response for the component's answer. A streamed body is pulled by a blocking
    /// task of its own, which holds the request slot until the last chunk and gives up on a
    /// client that stops reading for longer than the request timeout.
    fn respond(&self, mut handled: Handled, permit: OwnedSemaphorePermit) -> Response<ScimBody> {
        let body = match handled.rest.take() {
            None => ScimBody::full(std::mem::take(&mut handled.body)),
            Some(stream) => {
                let (tx, rx) = mpsc::channel(2);
                let stall = self.inner.config.request_timeout;
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    pump(stream, &tx, stall, &runtime);
                });
                ScimBody::streamed(Bytes::from(std::mem::take(&mut handled.body)), rx)
            }
        };
        let mut out = Response::new(body);
        *out.status_mut() =
            StatusCode::from_u16(handled.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        append_headers(&mut out, handled.headers);
        out
    }

    /// A 429 when the tenant has used up its bucket.
    fn rate_limited(&self, tenant: &Tenant) -> Option<Response<ScimBody>> {
        let limiter = self.inner.limiter.as_ref()?;
        let not_until = limiter.check_key(&tenant.id).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Some(self.retry_later(HostFailure::RateLimited, wait))
    }

    /// The tenant a token authenticates as, and the token's hash.
    fn authenticate(
        &self,
        token: Option<&str>,
    ) -> Result<(Tenant, [u8; 32]), Box<Response<ScimBody>>> {
        let Some(token) = token else {
            return Err(Box::new(self.page(HostFailure::MissingToken)));
        };
        let hash = hash_token(token);
        match self.inner.backend.tenant_for_token(&hash) {
            Ok(Some(tenant)) => Ok((tenant, hash)),
            Ok(None) => Err(Box::new(self.page(HostFailure::InvalidToken))),
            Err(e) => {
                tracing::error!("token lookup failed: {e}");
                Err(Box::new(self.page(HostFailure::StorageUnavailable)))
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
        let default_scheme = if self.inner.config.https {
            "https"
        } else {
            "http"
        };
        let scheme = req.uri().scheme_str().unwrap_or(default_scheme);
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

/// The client's request id if it is sane (1 to 128 visible ASCII characters of a safe set, so it
/// can go into logs as is), else a new random one.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    let sane = |v: &&HeaderValue| {
        let b = v.as_bytes();
        (1..=128).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:/+=@".contains(c))
    };
    if let Some(v) = headers.get(REQUEST_ID).filter(sane) {
        return v.clone();
    }
    let id = format!("{:032x}", rand::rng().random::<u128>());
    HeaderValue::try_from(id).expect("hex is a valid header value")
}

/// Pulls a streamed body's chunks into the response channel until the end, a failure, or a
/// client that went away (or stopped reading for `stall`); dropping the stream then releases
/// the component instance.
fn pump(
    mut stream: BodyStream,
    tx: &mpsc::Sender<Result<Bytes, BodyError>>,
    stall: Duration,
    runtime: &tokio::runtime::Handle,
) {
    loop {
        let item = match stream.next_chunk() {
            Ok(Some(chunk)) => Ok(Bytes::from(chunk)),
            Ok(None) => return,
            Err(failure) => {
                if let StreamFailure::Fault(fault) = &failure {
                    tracing::error!("a streamed response failed: {fault}");
                } else {
                    tracing::warn!("{failure}");
                }
                Err(BodyError(failure.to_string()))
            }
        };
        let failed = item.is_err();
        let sent = runtime.block_on(tokio::time::timeout(stall, tx.send(item)));
        if failed || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

fn append_headers(
    resp: &mut Response<ScimBody>,
    headers: impl IntoIterator<Item = (String, String)>,
) {
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_one_read_slot_concurrent_reads_and_a_write_all_complete() {
        let backend: Arc<dyn Backend> = Arc::new(crate::store::memory::MemoryBackend::new());
        let runtime = crate::runtime::test_runtime();
        let (_, token) =
            crate::tenancy::create(backend.as_ref(), &runtime, "acme", "standard", None).unwrap();
        let config = ServiceConfig {
            max_concurrent_reads: 1,
            ..ServiceConfig::default()
        };
        let scim = ScimService::new(runtime, backend, config);
        let call = |method: &str, path: &str, body: &str| {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {}", token.token))
                .header("content-type", "application/scim+json")
                .body(http_body_util::Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let scim = scim.clone();
            tokio::spawn(async move { scim.handle(req).await.status() })
        };
        let mut calls: Vec<_> = (0..16)
            .map(|_| call("GET", "/scim/v2/Users?count=1", ""))
            .collect();
        calls.push(call(
            "POST",
            "/scim/v2/Users",
            r#"{"userName":"a@example.com"}"#,
        ));
        let mut statuses = Vec::new();
        for c in calls {
            // A read slot that is never given back would leave the rest waiting forever.
            let done = tokio::time::timeout(Duration::from_secs(60), c).await;
            statuses.push(done.expect("request finished").unwrap().as_u16());
        }
        assert_eq!(statuses.pop(), Some(201));
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }

    #[test]
    fn base_path_matching_is_segment_exact() {
        assert_eq!(strip_base("/scim/v2/Users", "/scim/v2"), Some("/Users"));
        assert_eq!(strip_base("/scim/v2", "/scim/v2/"), Some("/"));
        assert_eq!(strip_base("/scim/v2x/Users", "/scim/v2"), None);
    }

    #[test]
    fn sane_request_ids_are_kept_and_others_replaced() {
        let mut h = http::HeaderMap::new();
        let generated = request_id(&h);
        assert_eq!(generated.len(), 32);
        assert_ne!(generated, request_id(&h));
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.y:z"));
        assert_eq!(request_id(&h), "abc-123_x.y:z");
        for bad in ["has space", "quote\"", ""] {
            h.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            assert_ne!(request_id(&h), bad);
        }
        h.insert(REQUEST_ID, HeaderValue::from_str(&"a".repeat(129)).unwrap());
        assert_eq!(request_id(&h).len(), 32);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let backend: Arc<dyn Backend> = Arc::new(crate::store::memory::MemoryBackend::new());
        let scim = ScimService::new(
            crate::runtime::test_runtime(),
            backend,
            ServiceConfig::default(),
        );
        let resp = scim.retry_later(HostFailure::RateLimited, Duration::from_millis(1200));
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        let resp = scim.retry_later(HostFailure::RateLimited, Duration::ZERO);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
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
