//! The operations and the worker against a loopback receiver: order, the lease between two
//! workers on one SQLite file, 410, replay limits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use super::delivery::{Deliverer, DeliveryConfig};
use super::*;
use crate::events::{Event, NewEvent};
use crate::store::sqlite::SqliteBackend;
use crate::store::Write;

#[derive(Default)]
struct Receiver {
    ids: Mutex<Vec<String>>,
    status: Mutex<u16>,
}

async fn start(r: Arc<Receiver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let r = r.clone();
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_string();
                let status = *r.status.lock().unwrap();
                if status < 300 {
                    r.ids.lock().unwrap().push(id);
                }
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn key() -> SecretKey {
    SecretKey::from_base64(&base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        [3u8; 32],
    ))
    .unwrap()
}

const OPEN: UrlPolicy = UrlPolicy {
    allow_private: true,
};

fn commit_users(b: &dyn Backend, tenant: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let e = NewEvent {
                id: NewEvent::new_id(),
                request_id: format!("r{i}"),
                event: Event {
                    kind: EventKind::UserCreated,
                    data: format!(r#"{{"id":"{i}"}}"#),
                    previous: None,
                },
            };
            let id = e.id.clone();
            b.commit_events(
                tenant,
                vec![],
                vec![Write::Put(format!("u/{i}"), vec![1])],
                vec![e],
            )
            .unwrap();
            id
        })
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(owner: &str) -> DeliveryConfig {
    DeliveryConfig {
        owner: owner.into(),
        poll_every: Duration::from_millis(50),
        ..DeliveryConfig::default()
    }
}

/// Two workers on one SQLite file, as two hosts on one database: every event is delivered
/// once, in order — exactly one of them holds the endpoint at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_file_deliver_each_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scimlet.db");
    let a: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&path).unwrap());
    let b: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&path).unwrap());
    let tenant = a.create_tenant("acme", json!({})).unwrap();
    let r = Arc::new(Receiver::default());
    *r.status.lock().unwrap() = 200;
    let url = start(r.clone()).await;
    let hooks = Webhooks::new(a.clone(), key(), OPEN);
    hooks.add("acme", &url, vec![]).unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let wa = Deliverer::new(a.clone(), key(), OPEN, config("host-a")).unwrap();
    let wb = Deliverer::new(b.clone(), key(), OPEN, config("host-b")).unwrap();
    let ta = tokio::spawn(wa.run(stop.clone()));
    let tb = tokio::spawn(wb.run(stop));
    // Commits through both handles, so both workers are woken.
    let mut ids = commit_users(a.as_ref(), &tenant.id, 100);
    ids.extend(commit_users(b.as_ref(), &tenant.id, 100));
    wait_for("200 deliveries", || r.ids.lock().unwrap().len() >= 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*r.ids.lock().unwrap(), ids, "once each, in order");
    stop_tx.send_replace(true);
    ta.await.unwrap();
    tb.await.unwrap();
    let w = &hooks.list("acme").unwrap()[0];
    assert_eq!(
        w.cursor,
        a.event_head(&tenant.id).unwrap().map(|c| c.to_string())
    );
}

/// 410 Gone disables the endpoint with the reason; a replay enables it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_and_replay_enables() {
    let b: Arc<dyn Backend> = Arc::new(crate::store::memory::MemoryBackend::new());
    let tenant = b.create_tenant("acme", json!({})).unwrap();
    let r = Arc::new(Receiver::default());
    *r.status.lock().unwrap() = 410;
    let url = start(r.clone()).await;
    let hooks = Webhooks::new(b.clone(), key(), OPEN);
    let id = hooks
        .add("acme", &url, vec![EventKind::UserCreated])
        .unwrap()
        .webhook
        .id;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(
        Deliverer::new(b.clone(), key(), OPEN, config("h"))
            .unwrap()
            .run(stop),
    );
    let ids = commit_users(b.as_ref(), &tenant.id, 2);
    let h = hooks.clone();
    wait_for("disabled", || !h.get("acme", &id).unwrap().enabled).await;
    let w = hooks.get("acme", &id).unwrap();
    assert!(w.disabled_reason.unwrap().contains("410"));
    *r.status.lock().unwrap() = 200;
    // Bad cursors are refused with the reason; none changes the endpoint.
    assert!(matches!(
        hooks.replay("acme", &id, "nope"),
        Err(WebhookError::BadCursor(_))
    ));
    assert!(matches!(
        hooks.replay("acme", &id, "7fffffffffffffff00000000"),
        Err(WebhookError::Ahead { .. })
    ));
    assert!(matches!(
        hooks.replay("acme", "wh_0000000000000000", ""),
        Err(WebhookError::NoSuchWebhook { .. })
    ));
    hooks.replay("acme", &id, "").unwrap();
    wait_for("redelivered", || r.ids.lock().unwrap().len() >= 2).await;
    assert_eq!(*r.ids.lock().unwrap(), ids);
    // Retention removed everything: a replay from before the horizon is refused.
    b.prune_events(crate::store::unix_now_millis() + 60_000)
        .unwrap();
    assert!(matches!(
        hooks.replay("acme", &id, "000000000000000000000000"),
        Err(WebhookError::Expired { .. })
    ));
    stop_tx.send_replace(true);
    worker.await.unwrap();
}
