//! Groups under real concurrency: membership edges never lose a member.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{json, Server};

fn create_users(s: &Server, n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (status, u) = json(s.send_json(
                "POST",
                "/Users",
                &json!({"userName": format!("{prefix}{i}@example.com")}),
            ));
            assert_eq!(status, 201, "{u}");
            u["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn members(s: &Server, gid: &str) -> Vec<String> {
    let (status, g) = json(s.get(&format!("/Groups/{gid}")));
    assert_eq!(status, 200);
    let mut ids: Vec<String> = g["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Runs one request per item on its own thread, all at once.
fn concurrently(s: &Arc<Server>, items: Vec<(String, Value)>) -> Vec<u16> {
    let barrier = Arc::new(std::sync::Barrier::new(items.len()));
    let handles: Vec<_> = items
        .into_iter()
        .map(|(path, body)| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                s.send_json("PATCH", &path, &body).status().as_u16()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn concurrent_member_adds_all_land() {
    let s = Arc::new(Server::start(&[]));
    let users = create_users(&s, 32, "add");
    let (_, g) = json(s.send_json(
        "POST",
        "/Groups",
        &json!({"displayName": "Everyone at once"}),
    ));
    let gid = g["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    let requests = users
        .iter()
        .map(|u| {
            (
                path.clone(),
                patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])),
            )
        })
        .collect();
    let statuses = concurrently(&s, requests);
    assert!(statuses.iter().all(|st| *st == 200), "{statuses:?}");
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(members(&s, &gid), expected);
}

#[test]
fn concurrent_adds_and_removes_of_different_members_lose_nothing() {
    let s = Arc::new(Server::start(&[]));
    let old = create_users(&s, 16, "old");
    let new = create_users(&s, 16, "new");
    let initial: Vec<Value> = old.iter().map(|u| json!({"value": u})).collect();
    let (_, g) = json(s.send_json(
        "POST",
        "/Groups",
        &json!({"displayName": "Churn", "members": initial}),
    ));
    let gid = g["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    let mut requests = Vec::new();
    for (o, n) in old.iter().zip(&new) {
        requests.push((
            path.clone(),
            patch(json!([{"op": "remove", "path": format!("members[value eq \"{o}\"]")}])),
        ));
        requests.push((
            path.clone(),
            patch(json!([{"op": "add", "path": "members", "value": [{"value": n}]}])),
        ));
    }
    let statuses = concurrently(&s, requests);
    assert!(statuses.iter().all(|st| *st == 200), "{statuses:?}");
    let mut expected = new.clone();
    expected.sort();
    assert_eq!(members(&s, &gid), expected);
}

#[test]
fn a_failed_patch_leaves_membership_untouched() {
    let s = Server::start(&[]);
    let users = create_users(&s, 3, "keep");
    let initial: Vec<Value> = users[..2].iter().map(|u| json!({"value": u})).collect();
    let (_, g) = json(s.send_json(
        "POST",
        "/Groups",
        &json!({"displayName": "Stable", "members": initial}),
    ));
    let gid = g["id"].as_str().unwrap().to_string();
    let before = members(&s, &gid);
    let bad = patch(json!([
        {"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])},
        {"op": "add", "path": "members", "value": [{"value": users[2]}, {"value": "no-such-user"}]},
    ]));
    let (status, body) = json(s.send_json("PATCH", &format!("/Groups/{gid}"), &bad));
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidValue"))
    );
    assert_eq!(members(&s, &gid), before);
}
