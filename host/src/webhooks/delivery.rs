//! The delivery worker: a tokio task of `serve`, apart from the SCIM requests, that POSTs every
//! endpoint's events in feed order.
//!
//! Per endpoint, strictly in order: the next event is sent only once the receiver accepted the
//! previous one (any 2xx). The worker delivers an endpoint only while it holds the endpoint's
//! lease in the store, so with several hosts on one database exactly one delivers it; the
//! position is stored under the lease's epoch (fencing), at least every [`DeliveryConfig::persist_every`]
//! and before the lease is given up, so after a crash delivery resumes from the last stored
//! position: at least once, a few events possibly twice (receivers dedupe by `webhook-id`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use super::backoff;
use super::secrets::{signing_key, SecretKey};
use super::signing::Signer;
use super::url_policy::{PolicyResolver, UrlPolicy};
use crate::events::{feed::RECHECK, Cursor, StoredEvent};
use crate::store::webhooks::{Failure, Lease, Webhook};
use crate::store::{unix_now_millis, Backend, StoreError};

/// Tuning of the worker.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Who holds leases: unique per process.
    pub owner: String,
    /// How long a lease lasts without renewal; another host takes an endpoint over this long
    /// after its holder died.
    pub lease_ttl: Duration,
    /// Longest wait for a receiver's answer.
    pub request_timeout: Duration,
    /// How often due endpoints are looked for without being woken.
    pub poll_every: Duration,
    /// Events read per page.
    pub page: usize,
    /// Longest a delivered position stays unstored (what a crash may deliver twice).
    pub persist_every: Duration,
    /// How long the worker, woken at the end of the feed by a commit, waits for further commits
    /// before reading: one read and one wake per this while instead of per commit.
    pub gather: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            owner: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            lease_ttl: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
            poll_every: Duration::from_secs(1),
            page: 100,
            persist_every: Duration::from_millis(200),
            gather: Duration::from_millis(5),
        }
    }
}

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The HTTP client could not be built (TLS roots).
    #[error("webhook HTTP client: {0}")]
    Client(String),
}

/// The worker: one per process.
pub struct Deliverer {
    backend: Arc<dyn Backend>,
    key: SecretKey,
    policy: UrlPolicy,
    client: reqwest::Client,
    config: DeliveryConfig,
}

/// The HTTP client of deliveries: connections reused, no redirects followed (a redirect could
/// lead anywhere), no proxy from the environment, every name resolved through the policy.
pub fn client(policy: UrlPolicy, timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(PolicyResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("scimlet-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Client(e.to_string()))
}

/// How one attempt went, when it failed.
struct SendFailure {
    error: String,
    retry_after: Option<Duration>,
    gone: bool,
}

type Key = (String, String);

impl Deliverer {
    /// A worker delivering `backend`'s endpoints, secrets opened with `key`.
    pub fn new(
        backend: Arc<dyn Backend>,
        key: SecretKey,
        policy: UrlPolicy,
        config: DeliveryConfig,
    ) -> Result<Deliverer, DeliveryError> {
        let client = client(policy, config.request_timeout)?;
        Ok(Deliverer {
            backend,
            key,
            policy,
            client,
            config,
        })
    }

    /// Runs until `stop` turns true, then gives up its leases (after the attempts under way)
    /// and returns. Does nothing if the backend keeps no webhooks.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if self.backend.webhooks().is_none() {
            return;
        }
        let me = Arc::new(self);
        let running: Arc<Mutex<HashSet<Key>>> = Arc::default();
        let done = Arc::new(Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        let mut signal = me.backend.event_signal().subscribe();
        while !*stop.borrow() {
            let b = me.backend.clone();
            let due = tokio::task::spawn_blocking(move || {
                b.webhooks()
                    .map_or(Ok(Vec::new()), |w| w.due_webhooks(1024))
            })
            .await;
            match due {
                Ok(Ok(due)) => {
                    for key in due {
                        let fresh = lock(&running).insert(key.clone());
                        if fresh {
                            let (me, running, done, stop) =
                                (me.clone(), running.clone(), done.clone(), stop.clone());
                            tasks.spawn(async move {
                                me.endpoint(&key, stop).await;
                                lock(&running).remove(&key);
                                done.notify_one();
                            });
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "webhooks: listing due endpoints failed"),
                Err(e) => tracing::warn!(error = %e, "webhooks: listing due endpoints failed"),
            }
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                changed = signal.changed() => if changed.is_err() {
                    tokio::time::sleep(me.config.poll_every).await;
                },
                () = tokio::time::sleep(me.config.poll_every) => {}
                () = done.notified() => {}
                _ = stop.changed() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Delivers one endpoint while its lease holds and there is no failure.
    async fn endpoint(&self, key: &Key, mut stop: watch::Receiver<bool>) {
        let (tenant, id) = key.clone();
        let (owner, ttl) = (self.config.owner.clone(), self.config.lease_ttl);
        let claimed = self
            .store(move |s| s.claim_webhook(&tenant, &id, &owner, ttl))
            .await;
        let hook = match claimed {
            Ok(Some(hook)) => hook,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(webhook = %key.1, error = %e, "webhooks: claim failed");
                return;
            }
        };
        let mut run = Run::new(self, hook);
        match run.deliver(&mut stop).await {
            Ok(()) | Err(RunEnd::LeaseLost) => {}
            Err(RunEnd::Store(e)) => {
                tracing::warn!(webhook = %key.1, error = %e, "webhooks: store failed");
                // The lease expires on its own if even this fails.
                let _ = run.release().await;
            }
        }
    }

    async fn store<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn crate::store::WebhookStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let b = self.backend.clone();
        tokio::task::spawn_blocking(move || match b.webhooks() {
            Some(s) => op(s),
            None => Err(StoreError::Unavailable("no webhook store".into())),
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// POSTs one event. `url` is the endpoint's URL as [`UrlPolicy::check_shape`] judged it
    /// (literal addresses never reach the resolver: they are checked there, as names are by
    /// the resolver).
    async fn send(
        &self,
        url: &Result<url::Url, String>,
        signer: &Signer,
        event: &StoredEvent,
        tenant_name: &str,
    ) -> Result<(), SendFailure> {
        let fail = |error: String| SendFailure {
            error,
            retry_after: None,
            gone: false,
        };
        let url = url.clone().map_err(fail)?;
        let mut body = Vec::new();
        event.write_json(tenant_name, &mut body);
        let timestamp = unix_now_millis() / 1000;
        let signature = signer.sign(&event.id, timestamp, &body);
        let resp = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| backoff::retry_after(v, SystemTime::now()));
        // Read to the end so that the connection can be reused.
        let _ = resp.bytes().await;
        if status.is_success() {
            return Ok(());
        }
        Err(SendFailure {
            error: format!("HTTP {status}"),
            retry_after,
            gone: status == http::StatusCode::GONE,
        })
    }
}

/// A transport error without the URL (which may carry a token in its query).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum RunEnd {
    LeaseLost,
    Store(StoreError),
}

impl From<StoreError> for RunEnd {
    fn from(e: StoreError) -> Self {
        RunEnd::Store(e)
    }
}

/// One claim of one endpoint: the position reached and what is stored of it.
struct Run<'a> {
    worker: &'a Deliverer,
    hook: Webhook,
    lease: Lease,
    /// Delivered (or skipped) up to here.
    cursor: Option<Cursor>,
    /// Stored up to here.
    stored: Option<Cursor>,
    /// When the lease was last renewed (locally).
    renewed: Instant,
    attempts: u32,
    failing_since_ms: i64,
}

impl<'a> Run<'a> {
    fn new(worker: &'a Deliverer, hook: Webhook) -> Run<'a> {
        let lease = Lease {
            tenant: hook.tenant.clone(),
            id: hook.id.clone(),
            owner: worker.config.owner.clone(),
            epoch: hook.lease_epoch,
        };
        Run {
            worker,
            cursor: hook.cursor,
            stored: hook.cursor,
            renewed: Instant::now(),
            attempts: hook.attempts,
            failing_since_ms: hook.failing_since_ms,
            lease,
            hook,
        }
    }

    async fn deliver(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), RunEnd> {
        let w = self.worker;
        let tenant_id = self.hook.tenant.clone();
        // Off the async workers, like every store call: a blocking PostgreSQL client must
        // not run on them.
        let (b, t) = (w.backend.clone(), tenant_id.clone());
        let tenant = tokio::task::spawn_blocking(move || b.tenant(&t))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??
            .map(|t| t.name)
            .unwrap_or(tenant_id.clone());
        let signer = match w
            .key
            .open(&self.hook.tenant, &self.hook.id, &self.hook.secret)
            .map_err(|e| e.to_string())
            .and_then(|s| signing_key(&s).map_err(|e| e.to_string()))
        {
            Ok(key) => Signer::new(&key),
            Err(why) => return self.disable(format!("cannot sign: {why}")).await,
        };
        // The URL does not change during a claim: judged once, each send fails alike if refused.
        let url = w
            .policy
            .check_shape(&self.hook.url)
            .map_err(|e| e.to_string());
        let mut signal = w.backend.event_signal().subscribe();
        // Whether the last read reached the end of the feed: then wait for more first.
        let mut caught_up = false;
        loop {
            if *stop.borrow() {
                return self.release().await;
            }
            if caught_up {
                self.idle(&mut signal, stop).await;
                if *stop.borrow() {
                    return self.release().await;
                }
            }
            self.persist(false).await?;
            let (b, t, after, n) = (
                w.backend.clone(),
                tenant_id.clone(),
                self.cursor,
                w.config.page,
            );
            let page = tokio::task::spawn_blocking(move || {
                let page = b.events_after(&t, after, n)?;
                // Read after the page: a prune that removed events owed to us shows here.
                Ok::<_, StoreError>((page, b.event_horizon(&t)?))
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            let (events, horizon) = page;
            if let (Some(h), Some(c)) = (horizon, self.cursor) {
                if h > c {
                    let why = format!(
                        "events after cursor {c} were removed by retention (up to {h}): replay \
                         from a later cursor after resyncing"
                    );
                    return self.disable(why).await;
                }
            }
            caught_up = events.len() < w.config.page;
            for event in &events {
                if *stop.borrow() {
                    return self.release().await;
                }
                let wanted = self.hook.types.is_empty() || self.hook.types.contains(&event.kind);
                if wanted {
                    // A send must end within the lease: renew first when it might not.
                    if self.renewed.elapsed() + w.config.request_timeout
                        > w.config.lease_ttl.mul_f64(0.8)
                    {
                        self.persist(true).await?;
                    }
                    // A stop lets the attempt under way finish (it is bounded by the request
                    // timeout): abandoned, a receiver that accepted the event would get it
                    // again from the next holder of the lease.
                    let sent = w.send(&url, &signer, event, &tenant).await;
                    if let Err(f) = sent {
                        return self.failed(f).await;
                    }
                    self.attempts = 0;
                    self.failing_since_ms = 0;
                }
                self.cursor = Some(event.cursor);
                self.persist(false).await?;
            }
        }
    }

    /// Waits, at the end of the feed, for the next commit (the in-process signal, or
    /// [`RECHECK`] for another process's), then [`DeliveryConfig::gather`] more so that one read
    /// takes the commits of that while; wakes earlier when a delivered position is due to be
    /// stored ([`DeliveryConfig::persist_every`] after the last store, not at once: a store is a
    /// durable write, and under steady load the worker reaches the end of the feed at every
    /// commit).
    async fn idle(&mut self, signal: &mut watch::Receiver<u64>, stop: &mut watch::Receiver<bool>) {
        let w = self.worker;
        let wait = if self.cursor == self.stored {
            RECHECK
        } else {
            w.config
                .persist_every
                .saturating_sub(self.renewed.elapsed())
                .min(RECHECK)
        };
        tokio::select! {
            changed = signal.changed() => if changed.is_ok() && !w.config.gather.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(w.config.gather) => {}
                    _ = stop.changed() => {}
                }
            },
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }

    /// Stores the position, renewing the lease: when `force`, when the position moved
    /// `persist_every` ago, and a third through the lease's life.
    async fn persist(&mut self, force: bool) -> Result<(), RunEnd> {
        let w = self.worker;
        let elapsed = self.renewed.elapsed();
        let moved = self.cursor != self.stored;
        if !(force
            || elapsed >= w.config.lease_ttl / 3
            || (moved && elapsed >= w.config.persist_every))
        {
            return Ok(());
        }
        let (lease, cursor, ttl) = (self.lease.clone(), self.cursor, w.config.lease_ttl);
        let started = Instant::now();
        if !w
            .store(move |s| s.advance_webhook(&lease, cursor, ttl))
            .await?
        {
            return Err(RunEnd::LeaseLost);
        }
        self.stored = cursor;
        self.renewed = started;
        Ok(())
    }

    async fn release(&mut self) -> Result<(), RunEnd> {
        self.persist(self.cursor != self.stored).await?;
        let lease = self.lease.clone();
        self.worker
            .store(move |s| s.release_webhook(&lease))
            .await?;
        Ok(())
    }

    async fn disable(&mut self, reason: String) -> Result<(), RunEnd> {
        tracing::warn!(tenant = %self.hook.tenant, webhook = %self.hook.id, %reason, "webhook disabled");
        self.record(Failure {
            attempts: self.attempts,
            retry_in: Duration::ZERO,
            error: reason.clone(),
            disable: Some(reason),
        })
        .await
    }

    async fn failed(&mut self, f: SendFailure) -> Result<(), RunEnd> {
        self.attempts = self.attempts.saturating_add(1);
        if f.gone {
            return self
                .disable("the receiver answered 410 Gone".to_string())
                .await;
        }
        let failing_for = if self.failing_since_ms == 0 {
            Duration::ZERO
        } else {
            let ms = unix_now_millis().saturating_sub(self.failing_since_ms);
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        };
        match backoff::next(self.attempts, failing_for, f.retry_after, rand::random()) {
            Some(wait) => {
                tracing::warn!(
                    tenant = %self.hook.tenant,
                    webhook = %self.hook.id,
                    error = %f.error,
                    attempts = self.attempts,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "webhook delivery failed"
                );
                self.record(Failure {
                    attempts: self.attempts,
                    retry_in: wait,
                    error: f.error,
                    disable: None,
                })
                .await
            }
            None => {
                let why = format!(
                    "retries exhausted after {} attempts over {} hours; last error: {}",
                    self.attempts,
                    failing_for.as_secs() / 3600,
                    f.error
                );
                self.disable(why).await
            }
        }
    }

    /// Stores the position reached, then the failure (which ends the lease).
    async fn record(&mut self, failure: Failure) -> Result<(), RunEnd> {
        self.persist(self.cursor != self.stored).await?;
        let lease = self.lease.clone();
        if !self
            .worker
            .store(move |s| s.fail_webhook(&lease, &failure))
            .await?
        {
            return Err(RunEnd::LeaseLost);
        }
        Ok(())
    }
}
