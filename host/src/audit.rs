//! The append-only, per-tenant provisioning log: one record per write request (who, what, when,
//! the normalised operation the guest applied, the result), kept in the tenant's own key space
//! under `a/` and capped by a retention setting.
//!
//! Records are written by a background thread in batches, so a request never waits for an
//! extra durable commit; the cost is that a crash can lose the last fraction of a second of
//! records (never provisioning data itself).

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::store::{Backend, Scan, StoreError, Write};

/// Key prefix of audit records inside a tenant's key space.
const PREFIX: &str = "a/";
/// Records waiting for the writer before new ones are dropped (counted, never blocking).
const QUEUE: usize = 10_000;
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// One provisioning record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The tenant the request was made for.
    pub tenant_id: String,
    /// The request's `X-Request-Id` (the client's, or one generated for it).
    pub request_id: String,
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// HTTP status of the response.
    pub status: u16,
    /// The guest's record of the normalised operation.
    pub operation: Value,
}

enum Message {
    Record(Box<Record>, u64),
    Flush(SyncSender<()>),
}

/// Handle to the background writer.
pub struct AuditLog {
    tx: Mutex<Option<SyncSender<Message>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dropped: std::sync::atomic::AtomicU64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl AuditLog {
    /// Starts the writer; each tenant keeps at most `retention` records (oldest removed first).
    pub fn start(backend: Arc<dyn Backend>, retention: u64) -> AuditLog {
        let (tx, rx) = mpsc::sync_channel::<Message>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("scimlet-audit".into())
            .spawn(move || {
                let mut w = Writer {
                    backend,
                    retention,
                    seq: 0,
                    pending: Vec::new(),
                    since_trim: 0,
                };
                loop {
                    match rx.recv_timeout(FLUSH_EVERY) {
                        Ok(Message::Record(r, t)) => {
                            w.pending.push((*r, t));
                            if w.pending.len() >= BATCH {
                                w.flush();
                            }
                        }
                        Ok(Message::Flush(done)) => {
                            w.flush();
                            let _ = done.send(());
                        }
                        Err(RecvTimeoutError::Timeout) => w.flush(),
                        Err(RecvTimeoutError::Disconnected) => {
                            w.flush();
                            return;
                        }
                    }
                }
            })
            .ok();
        AuditLog {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(writer),
            dropped: Default::default(),
        }
    }

    /// Queues a record; never blocks the request (a full queue drops and counts it).
    pub fn record(&self, record: Record) {
        let tx = self.tx.lock().ok().and_then(|g| g.clone());
        let sent = tx.is_some_and(|tx| {
            tx.try_send(Message::Record(Box::new(record), now_micros()))
                .is_ok()
        });
        if !sent {
            let n = self
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            tracing::warn!(
                dropped = n,
                "audit queue full: a provisioning record was dropped"
            );
        }
    }

    /// Waits until every queued record is stored.
    pub fn flush(&self) {
        let tx = self.tx.lock().ok().and_then(|g| g.clone());
        if let Some(tx) = tx {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if tx.send(Message::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }
}

impl Drop for AuditLog {
    /// Stores what is queued before the process goes (graceful shutdown).
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(writer) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = writer.join();
        }
    }
}

struct Writer {
    backend: Arc<dyn Backend>,
    retention: u64,
    seq: u64,
    pending: Vec<(Record, u64)>,
    since_trim: usize,
}

impl Writer {
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut by_tenant: std::collections::BTreeMap<String, Vec<Write>> = Default::default();
        for (r, micros) in std::mem::take(&mut self.pending) {
            self.seq += 1;
            // Time first so that keys sort by time; the sequence keeps equal times distinct.
            let key = format!("{PREFIX}{micros:020}-{:08}", self.seq % 100_000_000);
            let value = json!({
                "time": rfc3339_micros(micros),
                "requestId": r.request_id,
                "userAgent": r.user_agent,
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "operation": r.operation,
            });
            by_tenant
                .entry(r.tenant_id)
                .or_default()
                .push(Write::Put(key, value.to_string().into_bytes()));
        }
        for (tenant, writes) in by_tenant {
            if let Err(e) = self.backend.commit(&tenant, &[], &writes) {
                tracing::error!(%tenant, "audit records could not be stored: {e}");
            }
            self.since_trim += writes.len();
        }
        if self.since_trim >= 1000 {
            self.since_trim = 0;
            self.trim_all();
        }
    }

    fn trim_all(&self) {
        let Ok(tenants) = self.backend.tenants() else {
            return;
        };
        for t in tenants {
            if let Err(e) = trim(self.backend.as_ref(), &t.id, self.retention) {
                tracing::warn!(tenant = %t.name, "audit retention trim failed: {e}");
            }
        }
    }
}

fn prefix_end() -> String {
    format!("{PREFIX}{}", char::MAX)
}

/// Deletes a tenant's oldest records beyond `retention`.
pub fn trim(backend: &dyn Backend, tenant_id: &str, retention: u64) -> Result<u64, StoreError> {
    let count = backend.count(tenant_id, PREFIX, &prefix_end())?;
    if count <= retention {
        return Ok(0);
    }
    let excess = count - retention;
    let scan = Scan {
        start: PREFIX.into(),
        end: prefix_end(),
        skip: 0,
        limit: excess.min(u32::MAX as u64) as u32,
        descending: false,
        keys_only: true,
    };
    let writes: Vec<Write> = backend
        .scan(tenant_id, &scan)?
        .into_iter()
        .map(|e| Write::Delete(e.key))
        .collect();
    let n = writes.len() as u64;
    backend.commit(tenant_id, &[], &writes)?;
    Ok(n)
}

/// A tenant's records at or after `since_micros`, oldest first, at most `limit`.
pub fn read(
    backend: &dyn Backend,
    tenant_id: &str,
    since_micros: u64,
    limit: u32,
) -> Result<Vec<Value>, StoreError> {
    records(
        backend,
        tenant_id,
        format!("{PREFIX}{since_micros:020}"),
        limit,
        false,
    )
}

/// A tenant's newest records, newest first, at most `limit`.
pub fn newest(
    backend: &dyn Backend,
    tenant_id: &str,
    limit: u32,
) -> Result<Vec<Value>, StoreError> {
    records(backend, tenant_id, PREFIX.into(), limit, true)
}

fn records(
    backend: &dyn Backend,
    tenant_id: &str,
    start: String,
    limit: u32,
    descending: bool,
) -> Result<Vec<Value>, StoreError> {
    let scan = Scan {
        start,
        end: prefix_end(),
        skip: 0,
        limit,
        descending,
        keys_only: false,
    };
    Ok(backend
        .scan(tenant_id, &scan)?
        .into_iter()
        .filter_map(|e| serde_json::from_slice(&e.value).ok())
        .collect())
}

/// Microseconds since the epoch as RFC 3339, UTC (`1970-01-02T00:00:00.000001Z`).
fn rfc3339_micros(micros: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros);
    humantime::format_rfc3339_micros(at).to_string()
}

/// Parses `--since`: an RFC 3339 time, or a duration back from now (`90s`, `15m`, `2h`, `7d`).
pub fn parse_since(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let units: &[(&str, u64)] = &[("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)];
    for (suffix, secs) in units {
        if let Some(n) = t.strip_suffix(suffix).and_then(|n| n.parse::<u64>().ok()) {
            return Ok(now_micros().saturating_sub(n * secs * 1_000_000));
        }
    }
    OffsetDateTime::parse(t, &Rfc3339)
        .ok()
        .and_then(|at| u64::try_from(at.unix_timestamp_nanos() / 1000).ok())
        .ok_or_else(|| {
            format!("'{text}' is neither a time like 2026-11-28T10:00:00Z nor a duration like 2h")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    fn record(tenant: &str, n: usize) -> Record {
        Record {
            tenant_id: tenant.into(),
            request_id: format!("r{n}"),
            user_agent: Some("Okta SCIM Client 1.0.0".into()),
            method: "POST".into(),
            path: "/scim/v2/Users".into(),
            status: 201,
            operation: json!({"action": "create", "resource": "User"}),
        }
    }

    #[test]
    fn records_are_stored_per_tenant_in_order_and_trimmed() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let a = backend.create_tenant("a", json!({})).unwrap();
        let b = backend.create_tenant("b", json!({})).unwrap();
        let log = AuditLog::start(backend.clone(), 1000);
        for n in 0..5 {
            log.record(record(&a.id, n));
        }
        log.record(record(&b.id, 99));
        log.flush();
        let got = read(backend.as_ref(), &a.id, 0, 100).unwrap();
        assert_eq!(
            got.iter()
                .map(|r| r["requestId"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["r0", "r1", "r2", "r3", "r4"]
        );
        assert_eq!(read(backend.as_ref(), &b.id, 0, 100).unwrap().len(), 1);
        let newest = newest(backend.as_ref(), &a.id, 2).unwrap();
        assert_eq!(newest[0]["requestId"], "r4");
        assert_eq!(newest[1]["requestId"], "r3");
        assert_eq!(trim(backend.as_ref(), &a.id, 2).unwrap(), 3);
        let kept = read(backend.as_ref(), &a.id, 0, 100).unwrap();
        assert_eq!(
            kept.iter()
                .map(|r| r["requestId"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["r3", "r4"]
        );
        assert!(
            read(backend.as_ref(), &a.id, now_micros() + 10_000_000, 100)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn since_takes_times_and_durations() {
        assert_eq!(parse_since("1970-01-02T00:00:00Z").unwrap(), 86_400_000_000);
        assert_eq!(
            rfc3339_micros(86_400_000_001),
            "1970-01-02T00:00:00.000001Z"
        );
        let two_hours = parse_since("2h").unwrap();
        assert!(now_micros() - two_hours >= 7_200_000_000);
        assert!(parse_since("yesterday").is_err());
    }
}
