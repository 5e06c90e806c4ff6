//! Webhook delivery throughput: events already in a SQLite feed, one endpoint on a loopback
//! receiver that accepts at once, durable store (`synchronous=FULL`), as `serve` runs it.
//!
//! `cargo bench -p scimlet --bench webhooks` (`SCIMLET_BENCH_EVENTS=N`, default 20 000).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scimlet::events::{Event, EventKind, NewEvent};
use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::{Backend, Write};
use scimlet::webhooks::delivery::{Deliverer, DeliveryConfig};
use scimlet::webhooks::secrets::SecretKey;
use scimlet::webhooks::url_policy::UrlPolicy;
use scimlet::webhooks::Webhooks;

fn main() {
    let n: usize = std::env::var("SCIMLET_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> =
        Arc::new(SqliteBackend::open(&dir.path().join("scimlet.db")).unwrap());
    let tenant = backend
        .create_tenant("bench", serde_json::json!({}))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let url = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { axum::http::StatusCode::NO_CONTENT }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    let key = SecretKey::random();
    let policy = UrlPolicy {
        allow_private: true,
    };
    Webhooks::new(backend.clone(), key.clone(), policy)
        .add("bench", &url, vec![])
        .unwrap();
    // A user-sized payload, 100 events per commit.
    let data = format!(
        r#"{{"id":"u","userName":"ada@example.com","name":{{"givenName":"Ada","familyName":"Lovelace"}},"emails":[{{"value":"ada@example.com","primary":true}}],"active":true,"pad":"{}"}}"#,
        "x".repeat(200)
    );
    for chunk in 0..n.div_ceil(100) {
        let events: Vec<NewEvent> = (0..100.min(n - chunk * 100))
            .map(|_| NewEvent {
                id: NewEvent::new_id(),
                request_id: "bench".into(),
                event: Event {
                    kind: EventKind::UserUpdated,
                    data: data.clone(),
                    previous: None,
                },
            })
            .collect();
        backend
            .commit_events(
                &tenant.id,
                vec![],
                vec![Write::Put(format!("k/{chunk}"), vec![1])],
                events,
            )
            .unwrap();
    }
    let worker = Deliverer::new(backend.clone(), key, policy, DeliveryConfig::default()).unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let task = rt.spawn(worker.run(stop));
    while received.load(Ordering::Relaxed) < n {
        assert!(started.elapsed() < Duration::from_secs(600), "stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    stop_tx.send_replace(true);
    rt.block_on(task).unwrap();
    println!(
        "webhook delivery: {n} events to one loopback endpoint in {:.2} s = {:.0} events/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}
