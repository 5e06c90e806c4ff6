//! Connection status and usage per tenant: when its identity provider last called (and with
//! which user agent), when each bearer token was last used, and requests and errors per hour.
//!
//! Like the audit log, it never touches a request's commit: requests hand a small record to a
//! background thread (dropped, never waited for, when the queue is full), which folds them and
//! writes each tenant's figures at most once a second, in the tenant's key space under `h/`.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::store::{unix_now, Backend, Check, Scan, StoreError, Write};

const LAST: &str = "h/last";
const HOURS: &str = "h/hour/";
const TOKENS: &str = "h/token/";
const QUEUE: usize = 10_000;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One served request, as the usage writer needs it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The tenant the token authenticated as.
    pub tenant_id: String,
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path below the SCIM base.
    pub path: String,
    /// Response status.
    pub status: u16,
}

/// The last request of a tenant's identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRequest {
    /// Unix seconds.
    pub at: i64,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Response status.
    pub status: u16,
}

/// Requests and errors (status 400 and above) of one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCount {
    /// Requests served.
    pub requests: u64,
    /// Of which answered with a status of 400 or more.
    pub errors: u64,
}

/// Handle to the background writer; cheap to clone.
#[derive(Clone)]
pub struct UsageLog {
    tx: SyncSender<(Hit, i64)>,
}

/// The hex of a token hash's first 8 bytes: how usage names a token.
pub fn token_key(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Folded {
    last: Option<LastRequest>,
    hours: HashMap<i64, HourCount>,
    tokens: HashMap<String, i64>,
}

impl UsageLog {
    /// Starts the writer thread.
    pub fn start(backend: Arc<dyn Backend>) -> UsageLog {
        let (tx, rx) = mpsc::sync_channel::<(Hit, i64)>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("scimlet-usage".into())
            .spawn(move || {
                let mut pending: HashMap<String, Folded> = HashMap::new();
                let mut next_flush = Instant::now() + FLUSH_EVERY;
                loop {
                    let wait = next_flush.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok((hit, at)) => {
                            fold(pending.entry(hit.tenant_id.clone()).or_default(), hit, at)
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            flush(backend.as_ref(), &mut pending);
                            return;
                        }
                    }
                    if Instant::now() >= next_flush {
                        flush(backend.as_ref(), &mut pending);
                        next_flush = Instant::now() + FLUSH_EVERY;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("usage writer could not start: {e}");
        }
        UsageLog { tx }
    }

    /// Queues a request's record; never blocks (a full queue drops it).
    pub fn record(&self, hit: Hit) {
        let _ = self.tx.try_send((hit, unix_now()));
    }
}

fn fold(f: &mut Folded, hit: Hit, at: i64) {
    let hour = f.hours.entry(at / 3600).or_default();
    hour.requests += 1;
    hour.errors += u64::from(hit.status >= 400);
    f.tokens.insert(token_key(&hit.token_hash), at);
    f.last = Some(LastRequest {
        at,
        user_agent: hit.user_agent,
        method: hit.method,
        path: hit.path,
        status: hit.status,
    });
}

fn flush(backend: &dyn Backend, pending: &mut HashMap<String, Folded>) {
    for (tenant, folded) in pending.drain() {
        // Counters are read, added to and written under a version check (another host may
        // count the same hour): a conflict reads again.
        for _ in 0..5 {
            match write(backend, &tenant, &folded) {
                Err(StoreError::Conflict) => continue,
                Err(e) => tracing::warn!(%tenant, "usage could not be stored: {e}"),
                Ok(()) => {}
            }
            break;
        }
    }
}

fn write(backend: &dyn Backend, tenant: &str, f: &Folded) -> Result<(), StoreError> {
    let mut checks = Vec::new();
    let mut writes = Vec::new();
    for (hour, add) in &f.hours {
        let key = format!("{HOURS}{hour:010}");
        let read = backend.get(tenant, &key)?;
        let mut count: HourCount = read
            .as_ref()
            .and_then(|e| serde_json::from_slice(&e.value).ok())
            .unwrap_or_default();
        count.requests += add.requests;
        count.errors += add.errors;
        checks.push(Check::unchanged(key.clone(), read.as_ref()));
        writes.push(Write::Put(
            key,
            serde_json::to_vec(&count).unwrap_or_default(),
        ));
    }
    for (token, at) in &f.tokens {
        writes.push(Write::Put(
            format!("{TOKENS}{token}"),
            at.to_string().into_bytes(),
        ));
    }
    if let Some(last) = &f.last {
        writes.push(Write::Put(
            LAST.into(),
            serde_json::to_vec(last).unwrap_or_default(),
        ));
    }
    if writes.is_empty() {
        return Ok(());
    }
    backend.commit(tenant, &checks, &writes).map(|_| ())
}

/// What the console shows of a tenant's usage.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// The identity provider's last request.
    pub last: Option<LastRequest>,
    /// Unix hour (seconds / 3600) to its counts, for the hours asked for.
    pub hours: HashMap<i64, HourCount>,
    /// [`token_key`] to the last use (Unix seconds).
    pub tokens: HashMap<String, i64>,
}

fn prefixed(
    backend: &dyn Backend,
    tenant: &str,
    start: String,
    end: String,
) -> Result<Vec<crate::store::Entry>, StoreError> {
    backend.scan(
        tenant,
        &Scan {
            start,
            end,
            skip: 0,
            limit: 10_000,
            descending: false,
            keys_only: false,
        },
    )
}

/// A tenant's usage, with the hour counts since `since_hour` (Unix hours).
pub fn read(backend: &dyn Backend, tenant: &str, since_hour: i64) -> Result<Usage, StoreError> {
    let last = backend
        .get(tenant, LAST)?
        .and_then(|e| serde_json::from_slice(&e.value).ok());
    let hours = prefixed(
        backend,
        tenant,
        format!("{HOURS}{since_hour:010}"),
        format!("{HOURS}~"),
    )?
    .into_iter()
    .filter_map(|e| {
        let hour = e.key.strip_prefix(HOURS)?.parse().ok()?;
        Some((hour, serde_json::from_slice(&e.value).ok()?))
    })
    .collect();
    let tokens = prefixed(backend, tenant, TOKENS.into(), format!("{TOKENS}~"))?
        .into_iter()
        .filter_map(|e| {
            let at = std::str::from_utf8(&e.value).ok()?.parse().ok()?;
            Some((e.key.strip_prefix(TOKENS)?.to_string(), at))
        })
        .collect();
    Ok(Usage {
        last,
        hours,
        tokens,
    })
}

/// The identity provider a `User-Agent` names, if it is one scimlet knows.
pub fn idp_of(user_agent: &str) -> Option<&'static str> {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("okta") {
        Some("Okta")
    } else if ua.contains("azure") || ua.contains("entra") || ua.contains("microsoft") {
        Some("Microsoft Entra ID")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    #[test]
    fn requests_are_folded_per_hour_token_and_last_call() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let t = backend
            .create_tenant("acme", serde_json::json!({}))
            .unwrap();
        let hit = |status, ua: &str| Hit {
            tenant_id: t.id.clone(),
            token_hash: [7; 32],
            user_agent: Some(ua.into()),
            method: "GET".into(),
            path: "/Users".into(),
            status,
        };
        let mut pending = HashMap::new();
        for (status, at) in [(200, 7200), (404, 7201), (201, 3600 * 5)] {
            fold(
                pending.entry(t.id.clone()).or_default(),
                hit(status, "Okta SCIM Client 1.0.0"),
                at,
            );
        }
        flush(backend.as_ref(), &mut pending);
        fold(
            pending.entry(t.id.clone()).or_default(),
            hit(500, "Azure AD SCIM"),
            7300,
        );
        flush(backend.as_ref(), &mut pending);
        let usage = read(backend.as_ref(), &t.id, 0).unwrap();
        assert_eq!(
            usage.hours[&2],
            HourCount {
                requests: 3,
                errors: 2
            }
        );
        assert_eq!(
            usage.hours[&5],
            HourCount {
                requests: 1,
                errors: 0
            }
        );
        assert_eq!(usage.tokens[&token_key(&[7; 32])], 7300);
        let last = usage.last.unwrap();
        assert_eq!((last.at, last.status), (7300, 500));
        assert_eq!(
            idp_of(last.user_agent.as_deref().unwrap()),
            Some("Microsoft Entra ID")
        );
        assert_eq!(idp_of("Okta SCIM Client 1.0.0"), Some("Okta"));
        assert_eq!(idp_of("curl/8"), None);
        assert_eq!(read(backend.as_ref(), &t.id, 3).unwrap().hours.len(), 1);
    }
}
