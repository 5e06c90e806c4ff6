//! Webhooks end to end: a loopback receiver that verifies every signature and refuses the first
//! two deliveries gets an Okta sequence's events once accepted, in feed order, across a
//! `kill -9` of the server in the middle of delivering.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{admin_json, admin_url, cli, cli_output, new_user, Server, ADMIN_TOKEN};

/// What the receiver saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// `webhook-id` of each refused delivery.
    pub(crate) refused: Vec<String>,
    /// (`webhook-id`, body) of each accepted delivery, in arrival order.
    pub(crate) accepted: Vec<(String, Value)>,
    /// Deliveries whose signature or headers were wrong.
    pub(crate) bad: Vec<String>,
}

pub(crate) struct Receiver {
    pub(crate) key: Mutex<Vec<u8>>,
    pub(crate) seen: Mutex<Seen>,
}

async fn hook(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if let Some(refusal) = judge(&r, &headers, &body) {
        return refusal;
    }
    // Slow enough that a kill lands in the middle of delivering.
    tokio::time::sleep(Duration::from_millis(150)).await;
    StatusCode::NO_CONTENT.into_response()
}

/// Records the delivery; answers the refusal, if it is refused.
fn judge(r: &Receiver, headers: &HeaderMap, body: &[u8]) -> Option<axum::response::Response> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    // The receiver's few lines: HMAC-SHA256 of "id.timestamp.body" with the decoded secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(&r.key.lock().unwrap()).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = ts
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(now_secs()) < 300);
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut seen = r.seen.lock().unwrap();
    if !sig.split(' ').any(|s| s == expected) || !fresh || doc["id"] != id.as_str() {
        seen.bad.push(id);
        return Some((StatusCode::BAD_REQUEST, [("retry-after", "1")]).into_response());
    }
    if seen.refused.len() < 2 {
        seen.refused.push(id);
        return Some((StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")]).into_response());
    }
    seen.accepted.push((id, doc));
    None
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Starts the receiver on a loopback port in a thread of its own; answers its URL.
pub(crate) fn start_receiver(r: Arc<Receiver>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/hook", axum::routing::post(hook))
                .with_state(r);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

fn data(s: &Server) -> String {
    s.data_dir().display().to_string()
}

fn patch(s: &Server, path: &str, ops: Value) -> Value {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let resp = s.send_json("PATCH", path, &body);
    assert!(
        resp.status().is_success(),
        "PATCH {path}: {}",
        resp.status()
    );
    resp.text()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn feed_after(s: &Server, after: &str) -> Vec<Value> {
    let out = cli(&["events", "default", "--after", after, "--data", &data(s)]);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Accepted ids, each once, in the order first accepted.
pub(crate) fn first_accepted(r: &Receiver) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (id, _) in &r.seen.lock().unwrap().accepted {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_okta_sequence_arrives_signed_in_order_across_a_kill() {
    const ALLOW: (&str, &str) = ("SCIMLET_WEBHOOK_ALLOW_PRIVATE", "true");
    let receiver = Arc::new(Receiver {
        key: Mutex::new(Vec::new()),
        seen: Mutex::default(),
    });
    let url = start_receiver(receiver.clone());
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN_TOKEN,
        ],
        |c| {
            c.env(ALLOW.0, ALLOW.1);
        },
    );
    let dir = data(&s);

    // Private addresses are refused unless allowed.
    let refused = cli_output(&["webhook", "add", "default", &url, "--data", &dir]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = crate::support::scimlet()
        .args(["webhook", "add", "default", &url, "--data", &dir])
        .env(ALLOW.0, ALLOW.1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let id = lines[0].trim().to_string();
    let secret = lines.last().unwrap().trim().to_string();
    assert!(id.starts_with("wh_"), "{stdout}");
    assert!(secret.starts_with("whsec_"), "{stdout}");
    *receiver.key.lock().unwrap() = STANDARD.decode(&secret["whsec_".len()..]).unwrap();

    // Listed (admin API and CLI) with its position, never with its secret.
    let (status, listed) = admin_json(
        s.raw()
            .get(format!("{}/tenants/default/webhooks", admin_url(&s)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert_eq!(listed["webhooks"][0]["enabled"], true);
    let start = listed["webhooks"][0]["cursor"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let list = cli(&["webhook", "list", "default", "--data", &dir]);
    assert!(list.contains(&id) && !list.contains(&secret), "{list}");
    let db = std::fs::read(s.data_dir().join("scimlet.db")).unwrap();
    let wal = std::fs::read(s.data_dir().join("scimlet.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored encrypted"
        );
    }

    // Okta: create, update, deactivate, reactivate …
    let resp = s.send_json("POST", "/Users", &new_user("ada@example.com"));
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().unwrap();
    let uid = user["id"].as_str().unwrap().to_string();
    let upath = format!("/Users/{uid}");
    patch(
        &s,
        &upath,
        json!([{"op": "replace", "value": {"name": {"givenName": "Augusta"}}}]),
    );
    patch(
        &s,
        &upath,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    patch(
        &s,
        &upath,
        json!([{"op": "replace", "value": {"active": true}}]),
    );

    // … killed (-9) while delivering them (two refusals, then 150 ms per accepted event).
    wait_for("a first accepted delivery", Duration::from_secs(30), || {
        !receiver.seen.lock().unwrap().accepted.is_empty()
    });
    let s = s.restart(&[
        "--webhook-allow-private",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-token",
        ADMIN_TOKEN,
    ]);

    // … group push, member add and remove, group delete, on the restarted server.
    let resp = s.send_json(
        "POST",
        "/Groups",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng", "members": []}),
    );
    assert_eq!(resp.status(), 201);
    let group: Value = resp.json().unwrap();
    let gpath = format!("/Groups/{}", group["id"].as_str().unwrap());
    patch(
        &s,
        &gpath,
        json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
    );
    patch(
        &s,
        &gpath,
        json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
    );
    assert_eq!(s.req("DELETE", &gpath).send().unwrap().status(), 204);

    let feed = feed_after(&s, &start);
    let feed_ids: Vec<String> = feed
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let kinds: Vec<&str> = feed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let mut want = [
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
        "group.created",
        "group.member_added",
        "group.member_removed",
        "group.deleted",
    ]
    .into_iter()
    .peekable();
    for k in &kinds {
        if want.peek() == Some(k) {
            want.next();
        }
    }
    assert_eq!(want.next(), None, "the feed holds the sequence: {kinds:?}");

    // Lease of the killed process expires (20 s), then the new one delivers the rest.
    wait_for("every event accepted", Duration::from_secs(90), || {
        first_accepted(&receiver).len() >= feed_ids.len()
    });
    assert_eq!(
        first_accepted(&receiver),
        feed_ids,
        "once each, in feed order"
    );
    let seen = receiver.seen.lock().unwrap();
    assert!(seen.bad.is_empty(), "bad signatures: {:?}", seen.bad);
    // Retries keep the id: both refusals were of the first event, then accepted.
    assert_eq!(seen.refused, [feed_ids[0].clone(), feed_ids[0].clone()]);
    for (id, body) in &seen.accepted {
        let event = feed.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(body, event, "the body is the feed's event");
        assert_eq!(body["tenant"], "default");
    }
    drop(seen);

    // Replay: a bad cursor is refused clearly; a good one delivers again from there.
    let bad = cli_output(&[
        "webhook", "replay", "default", &id, "--after", "xyz", "--data", &dir,
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an event cursor"));
    let from = feed[feed.len() - 2]["cursor"].as_str().unwrap();
    cli(&[
        "webhook", "replay", "default", &id, "--after", from, "--data", &dir,
    ]);
    let before = receiver.seen.lock().unwrap().accepted.len();
    wait_for("the replayed event", Duration::from_secs(30), || {
        receiver.seen.lock().unwrap().accepted.len() > before
    });
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.accepted[before].0, feed_ids[feed_ids.len() - 1]);
    drop(seen);
    cli(&["webhook", "remove", "default", &id, "--data", &dir]);
    let (status, _) = admin_json(
        s.raw()
            .delete(format!("{}/tenants/default/webhooks/{id}", admin_url(&s)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 404);
}
