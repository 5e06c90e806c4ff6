//! Webhooks from two `scimlet serve` processes on one PostgreSQL database: both deliver the
//! one endpoint (whichever holds its lease), and the receiver gets every event of the feed,
//! signed, in feed order, accepted exactly once, across one host stopping in the middle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::scale_out::host_with;
use crate::support::{
    admin_json, admin_url, cli, cli_output, new_user, scimlet, Server, ADMIN_TOKEN,
};
use crate::testdb::TestDb;
use crate::webhooks::{first_accepted, start_receiver, wait_for, Receiver};

/// base64 of 32 bytes: the key every host seals and opens the secrets with.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn create_user(s: &Server, name: &str) -> String {
    let resp = s.send_json("POST", "/Users", &new_user(name));
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().unwrap();
    user["id"].as_str().unwrap().to_string()
}

fn deactivate(s: &Server, id: &str) {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}],
    });
    let status = s
        .send_json("PATCH", &format!("/Users/{id}"), &body)
        .status();
    assert!(status.is_success(), "{status}");
}

#[test]
fn two_hosts_deliver_every_event_once_in_order() {
    let Some(schema) = TestDb::new("scale_out_webhooks::deliver_once_in_order") else {
        return;
    };
    let db = schema.url();
    let receiver = Arc::new(Receiver {
        key: Mutex::new(Vec::new()),
        seen: Mutex::default(),
    });
    let url = start_receiver(receiver.clone());
    let env = [
        ("SCIMLET_WEBHOOK_SECRET_KEY", KEY),
        ("SCIMLET_WEBHOOK_ALLOW_PRIVATE", "true"),
    ];
    let a = host_with(&db, None, &env);
    let b = host_with(&db, Some(&a.token.clone()), &env);
    let pg = ["--store", "postgres", "--database-url", db.as_str()];

    // Without the shared key there is nothing to seal the secret with: refused, and why.
    let mut args = vec!["webhook", "add", "default", url.as_str()];
    args.extend(pg);
    let refused = cli_output(&args);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("webhook-secret-key"), "{why}");

    let out = scimlet().args(&args).envs(env).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout.lines().next().unwrap().trim().to_string();
    let secret = stdout.lines().last().unwrap().trim().to_string();
    *receiver.key.lock().unwrap() = STANDARD.decode(&secret["whsec_".len()..]).unwrap();

    // Either host lists it, with its position.
    let (status, listed) = admin_json(
        b.raw()
            .get(format!("{}/tenants/default/webhooks", admin_url(&b)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    let start = listed["webhooks"][0]["cursor"]
        .as_str()
        .unwrap_or("")
        .to_string();

    // Changes through both hosts, interleaved; one host stops (gracefully) in the middle of
    // delivering, the other carries on.
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        let uid = create_user(s, &format!("w{i}@x.io"));
        if i % 3 == 0 {
            deactivate(if i % 2 == 0 { &b } else { &a }, &uid);
        }
    }
    wait_for("a first accepted delivery", Duration::from_secs(30), || {
        !receiver.seen.lock().unwrap().accepted.is_empty()
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut a = a;
    assert!(a.wait_exit().success());
    for i in 8..12 {
        create_user(&b, &format!("w{i}@x.io"));
    }

    let mut args = vec!["events", "default", "--after", start.as_str()];
    args.extend(pg);
    let feed: Vec<Value> = cli(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let feed_ids: Vec<String> = feed
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(feed.len(), 12 + 3, "12 creates and 3 deactivations");
    wait_for("every event accepted", Duration::from_secs(90), || {
        first_accepted(&receiver).len() >= feed_ids.len()
    });
    let seen = receiver.seen.lock().unwrap();
    assert!(seen.bad.is_empty(), "bad signatures: {:?}", seen.bad);
    let accepted: Vec<&str> = seen.accepted.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        accepted, feed_ids,
        "every event accepted once, in feed order"
    );
    for (id, body) in &seen.accepted {
        let event = feed.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(body, event, "the body is the feed's event");
    }
    // The refusals were retries of the first event, then accepted.
    assert_eq!(seen.refused, [feed_ids[0].clone(), feed_ids[0].clone()]);
}
