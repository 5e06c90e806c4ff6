//! Webhook receiver for `host/benches/events.sh`: a loopback endpoint that costs little CPU, so
//! that what the benchmark measures is scimlet's delivery and not the receiver.
//!
//! ```text
//! cargo bench -p scimlet --bench receiver -- PORT [SECRET]
//! ```
//!
//! Listens on `127.0.0.1:PORT` with one thread. Every `POST` is answered `204`; with `SECRET`
//! (`whsec_…`) its Standard Webhooks signature is verified first and a bad one is answered `400`
//! (and counted). `GET` answers `ACCEPTED BAD` (two numbers), so the script can wait until every
//! event arrived and check that none was badly signed.
//!
//! Run by `cargo bench` without arguments it prints this usage and exits successfully.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use scimlet::webhooks::secrets::signing_key;
use scimlet::webhooks::signing::verify;

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    bad: AtomicU64,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(port) = args.first().and_then(|p| p.parse::<u16>().ok()) else {
        println!("usage: receiver PORT [SECRET]  (a webhook receiver for host/benches/events.sh)");
        return;
    };
    let key = args
        .get(1)
        .map(|s| signing_key(s).expect("a whsec_ secret"));
    let counts = Arc::new(Counts::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the port is free");
        let (c1, c2) = (counts.clone(), counts);
        let app = axum::Router::new().fallback(
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let ok = key.as_ref().is_none_or(|k| signed(k, &headers, &body));
                let counter = if ok { &c1.accepted } else { &c1.bad };
                counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    if ok {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::BAD_REQUEST
                    }
                }
            })
            .get(move || {
                let text = format!(
                    "{} {}",
                    c2.accepted.load(Ordering::Relaxed),
                    c2.bad.load(Ordering::Relaxed)
                );
                async move { text }
            }),
        );
        axum::serve(listener, app).await.expect("serving");
    });
}

fn signed(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sig)) = (
        text("webhook-id"),
        text("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()),
        text("webhook-signature"),
    ) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(body).is_ok() && verify(key, id, ts, body, sig)
}
