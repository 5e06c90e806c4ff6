//! `scimlet copy`: a populated deployment moved from SQLite to PostgreSQL and back, serving the
//! same tenants, resources, ETags, tokens, audit log and events on every store; a target that
//! is not empty is refused. Needs the test PostgreSQL (skipped without it, failing under CI).

use std::path::Path;

use serde_json::{json, Value};

use crate::support::{cli, cli_output, get_as, json, new_user, Server};
use crate::testdb::TestDb;

/// Creates tenant `name` in `data` and answers its bearer token.
fn create_tenant(data: &str, name: &str) -> String {
    let out = cli(&["tenant", "create", name, "--data", data]);
    out.lines().last().unwrap().trim().to_string()
}

fn send_as(s: &Server, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    json(
        s.raw()
            .request(method.parse().unwrap(), s.url(path))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .unwrap(),
    )
}

/// Users, a group with members, an update, a delete: resources, events and audit records.
fn populate(s: &Server, token: &str, domain: &str) {
    let mut ids = Vec::new();
    for i in 0..4 {
        let (status, user) = send_as(
            s,
            token,
            "POST",
            "/Users",
            &new_user(&format!("u{i}@{domain}")),
        );
        assert_eq!(status, 201, "{user}");
        ids.push(user["id"].as_str().unwrap().to_string());
    }
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": format!("Engineering {domain}"),
        "members": [{"value": ids[0]}, {"value": ids[1]}],
    });
    let (status, group) = send_as(s, token, "POST", "/Groups", &group);
    assert_eq!(status, 201, "{group}");
    let add = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[2]}]}],
    });
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let (status, body) = send_as(s, token, "PATCH", &path, &add);
    assert!(status == 200 || status == 204, "{status} {body}");
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let (status, body) = send_as(
        s,
        token,
        "PATCH",
        &format!("/Users/{}", ids[1]),
        &deactivate,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = send_as(
        s,
        token,
        "DELETE",
        &format!("/Users/{}", ids[3]),
        &Value::Null,
    );
    assert_eq!(status, 204);
}

/// What a tenant's clients see over SCIM: its users, groups and members, with their ETags
/// (locations without the server's address).
fn resources(s: &Server, token: &str) -> String {
    let mut seen = String::new();
    for path in [
        "/Users?count=100",
        "/Groups?count=100",
        "/Groups?count=100&attributes=members",
    ] {
        let (status, list) = get_as(s, token, path);
        assert_eq!(status, 200, "{list}");
        seen.push_str(&list.to_string().replace(&s.base, ""));
        seen.push('\n');
    }
    assert!(seen.contains("\"members\":[{"), "{seen}");
    seen
}

/// `scimlet events` and `scimlet audit` of `tenant` on the store `store` selects.
fn feed_and_audit(tenant: &str, store: &[&str]) -> (String, String) {
    let events = cli(&[&["events", tenant][..], store].concat());
    let audit = cli(&[&["audit", tenant][..], store].concat());
    (events, audit)
}

fn postgres_host(url: &str, token: &str) -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(data, &["--store", "postgres", "--database-url", url]);
    assert!(s.token.is_empty(), "a copied store has its tenants already");
    s.token = token.to_string();
    s
}

fn copy(from: &str, to: &str) -> String {
    cli(&["copy", "--from", from, "--to", to])
}

#[test]
fn a_deployment_moves_from_sqlite_to_postgres_and_back() {
    let Some(schema) = TestDb::new("copy::round_trip") else {
        return;
    };
    let url = schema.url();
    // The servers' data directories outlive them (inside `root`, removed at the end).
    let root = tempfile::tempdir().unwrap();
    let mut data = tempfile::TempDir::new_in(root.path()).unwrap();
    data.disable_cleanup(true);
    let acme = create_tenant(data.path().to_str().unwrap(), "acme");
    let beta = create_tenant(data.path().to_str().unwrap(), "beta");
    let sqlite = Server::start_in(data, &[]);
    let dir = sqlite.data_dir().to_path_buf();
    let dir_arg = dir.to_str().unwrap().to_string();
    populate(&sqlite, &acme, "acme.example");
    populate(&sqlite, &beta, "beta.example");
    let before = [resources(&sqlite, &acme), resources(&sqlite, &beta)];
    // The audit writer flushes every 100 ms; the server is killed, not stopped.
    std::thread::sleep(std::time::Duration::from_millis(600));
    drop(sqlite);
    let sqlite_store = ["--data", dir_arg.as_str()];
    let feeds = [
        feed_and_audit("acme", &sqlite_store),
        feed_and_audit("beta", &sqlite_store),
    ];
    assert!(feeds[0].0.contains("group.member_added"), "{}", feeds[0].0);
    assert!(feeds[0].1.lines().count() >= 6, "{}", feeds[0].1);
    // A webhook endpoint, with its position (nothing delivers while no server runs).
    let added = crate::support::scimlet()
        .args([
            "webhook",
            "add",
            "acme",
            "http://127.0.0.1:9/hook",
            "--data",
            &dir_arg,
        ])
        .env("SCIMLET_WEBHOOK_ALLOW_PRIVATE", "true")
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let hook_id = String::from_utf8_lossy(&added.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let hooks = cli(&["webhook", "list", "acme", "--data", &dir_arg]);
    assert!(hooks.contains(&hook_id), "{hooks}");

    // SQLite to PostgreSQL.
    let out = copy(&dir_arg, &url);
    assert!(out.contains("copied 2 tenant(s), 2 token(s)"), "{out}");
    assert!(
        out.contains("tenant 'acme'") && out.contains(": ok"),
        "{out}"
    );
    assert!(!out.contains(&url), "the URL may hold a password: {out}");
    assert!(
        out.contains("copied 1 webhook endpoint(s) of tenant 'acme' with their positions"),
        "{out}"
    );
    assert!(
        out.contains("webhook-secret.key"),
        "which key to configure: {out}"
    );
    let pg_store = ["--store", "postgres", "--database-url", url.as_str()];
    assert_eq!(
        cli(&[&["webhook", "list", "acme"][..], &pg_store].concat()),
        hooks
    );
    assert_eq!(feed_and_audit("acme", &pg_store), feeds[0]);
    assert_eq!(feed_and_audit("beta", &pg_store), feeds[1]);
    cli(&[&["check"][..], &pg_store].concat());

    // The tokens work against a host on the copy, which serves the same resources and ETags,
    // and goes on committing after them.
    let pg = postgres_host(&url, &acme);
    assert_eq!([resources(&pg, &acme), resources(&pg, &beta)], before);
    let (status, carol) = send_as(
        &pg,
        &beta,
        "POST",
        "/Users",
        &new_user("carol@beta.example"),
    );
    assert_eq!(status, 201, "{carol}");
    let (status, _) = get_as(&pg, "scimlet_not-a-token", "/Users");
    assert_eq!(status, 401);
    drop(pg);
    let beta_events = cli(&[&["events", "beta"][..], &pg_store].concat());
    assert!(
        beta_events.starts_with(&feeds[1].0),
        "the copied feed continues"
    );
    assert!(beta_events.contains("carol@beta.example"));

    // A second copy into the same database is refused, and so is one into a used directory.
    let refused = cli_output(&["copy", "--from", &dir_arg, "--to", &url]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert!(stderr.contains("acme, beta"), "{stderr}");

    // PostgreSQL back to a new SQLite directory.
    let mut back = tempfile::TempDir::new_in(root.path()).unwrap();
    back.disable_cleanup(true);
    let back_arg = back.path().to_str().unwrap().to_string();
    let back_arg = back_arg.as_str();
    let out = copy(&url, back_arg);
    assert!(out.contains("copied 2 tenant(s)"), "{out}");
    let back_store = ["--data", back_arg];
    assert_eq!(
        cli(&[&["webhook", "list", "acme"][..], &back_store].concat()),
        hooks
    );
    assert_eq!(feed_and_audit("acme", &back_store), feeds[0]);
    assert_eq!(
        cli(&[&["events", "beta"][..], &back_store].concat()),
        beta_events
    );
    let refused = cli_output(&["copy", "--from", &url, "--to", back_arg]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not empty"));

    let again = Server::start_in(back, &[]);
    assert!(again.token.is_empty());
    assert_eq!(resources(&again, &acme), before[0]);
    let (status, users) = get_as(
        &again,
        &beta,
        "/Users?filter=userName%20eq%20%22carol@beta.example%22",
    );
    assert_eq!(status, 200);
    assert_eq!(users["totalResults"], 1, "{users}");
}

#[test]
fn copy_refuses_a_missing_source() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nothing");
    let out = cli_output(&[
        "copy",
        "--from",
        missing.to_str().unwrap(),
        "--to",
        root.path().join("to").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no scimlet store at"), "{stderr}");
    assert!(!Path::new(&missing).exists(), "the source is not created");
}
