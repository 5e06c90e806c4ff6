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

#[test]
fn writer_tenants_link_product_teams_created_with_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let out = crate::support::cli(&[
        "tenant",
        "create",
        "acme",
        "--profile",
        "writer",
        "--default-team",
        "Staff",
        "--data",
        &dir,
    ]);
    let token = out.lines().last().unwrap().trim().to_string();
    crate::support::cli(&["team", "create", "acme", "Sales", "--data", &dir]);
    let listed = crate::support::cli(&["team", "list", "acme", "--data", &dir]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("Sales") && l.contains(" no ")),
        "{listed}"
    );

    let mut s = Server::start_in(data, &[]);
    s.token = token;
    let (status, refused) =
        json(s.send_json("POST", "/Groups", &json!({"displayName": "Marketing"})));
    assert_eq!(status, 400, "{refused}");
    crate::support::assert_scim_error(&refused, 400, Some("invalidValue"));
    let (_, found) = json(s.get("/Groups?filter=displayName%20eq%20%22Marketing%22"));
    assert_eq!(
        found["totalResults"], 0,
        "the refused group was not stored: {found}"
    );
    let (_, user) = json(s.send_json("POST", "/Users", &json!({"userName": "ada@example.com"})));
    let uid = user["id"].as_str().unwrap();
    let (status, linked) = json(s.send_json(
        "POST",
        "/Groups",
        &json!({"displayName": "Sales", "members": [{"value": uid}]}),
    ));
    assert_eq!(status, 201, "{linked}");
    let listed = crate::support::cli(&["team", "list", "acme", "--data", &dir]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("Sales") && l.contains(" yes ") && l.trim_end().ends_with('1')),
        "{listed}"
    );
    assert!(
        listed.lines().any(|l| l.starts_with("Staff")),
        "the default team was created on first use: {listed}"
    );
}

#[test]
fn import_is_idempotent_and_export_round_trips() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    crate::support::cli(&[
        "tenant",
        "create",
        "acme",
        "--profile",
        "writer",
        "--data",
        &dir,
    ]);
    let file = data.path().join("people.jsonl");
    std::fs::write(
        &file,
        [
            r#"{"type":"team","name":"Sales"}"#,
            r#"{"type":"user","userName":"ada@example.com","givenName":"Ada","email":"ada@example.com","role":"admin","teams":["Sales"]}"#,
            r#"{"type":"user","userName":"bob@example.com","active":false}"#,
            r#"{"type":"user"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::BIN)
            .args(args)
            .output()
            .unwrap()
    };
    let first = run(&["import", "acme", &file, "--data", &dir]);
    assert!(
        !first.status.success(),
        "a bad row makes the run fail after importing the rest"
    );
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("people.jsonl:4:"),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("3 created"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let second = run(&["import", "acme", &file, "--data", &dir]);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("0 created, 0 updated, 3 unchanged"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    let exported = crate::support::cli(&["export", "acme", "--data", &dir]);
    assert!(
        exported.contains(r#""userName":"ada@example.com""#)
            && exported.contains(r#""teams":["Sales"]"#),
        "{exported}"
    );
    let back = data.path().join("back.jsonl");
    std::fs::write(&back, &exported).unwrap();
    let again = crate::support::cli(&["import", "acme", back.to_str().unwrap(), "--data", &dir]);
    assert!(again.contains("0 created, 0 updated"), "{again}");
}

#[test]
fn writes_are_recorded_in_the_audit_log_without_secrets() {
    let s = Server::start(&[]);
    let resp = s
        .req("POST", "/Users")
        .header("user-agent", "Okta SCIM Client 1.0.0")
        .header("content-type", "application/scim+json")
        .body(json!({"userName": "ada@example.com", "password": "hunter2"}).to_string())
        .send()
        .unwrap();
    assert!(
        resp.headers().get("x-scimlet-audit").is_none(),
        "the record never reaches the client"
    );
    let (_, user) = json(resp);
    let id = user["id"].as_str().unwrap().to_string();
    let off = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(
        s.send_json("PATCH", &format!("/Users/{id}"), &off).status(),
        200
    );
    assert_eq!(
        s.send_json("POST", "/Users", &json!({"userName": "ada@example.com"}))
            .status(),
        409
    );
    let dir = s.data_dir().to_str().unwrap().to_string();
    // Records are written in the background within a fraction of a second; poll, bounded.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = crate::support::cli(&["audit", "default", "--data", &dir])
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["operation"]["action"], "create");
    assert_eq!(records[0]["userAgent"], "Okta SCIM Client 1.0.0");
    assert_eq!(records[0]["status"], 201);
    assert_eq!(
        records[1]["operation"]["operations"][0],
        json!({"op": "replace", "path": "active", "value": false})
    );
    assert_eq!(
        (
            records[2]["status"].as_u64(),
            records[2]["operation"]["error"]["scimType"].as_str()
        ),
        (Some(409), Some("uniqueness"))
    );
    assert!(!lines.join("\n").contains("hunter2"));
    let recent = crate::support::cli(&["audit", "default", "--since", "1h", "--data", &dir]);
    assert_eq!(recent.lines().count(), 3);
    let future = crate::support::cli(&[
        "audit",
        "default",
        "--since",
        "2999-01-01T00:00:00Z",
        "--data",
        &dir,
    ]);
    assert!(future.trim().is_empty());
}
