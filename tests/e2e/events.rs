//! Change events: the admin events API (pages, long poll, bad parameters, 410 after retention)
//! and `scimlet events` (pages, `--follow` seeing a server's commits from another process).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::{admin_json, admin_url, cli_output, new_user, scimlet, Server, ADMIN_TOKEN};

const ADMIN: [&str; 4] = [
    "--admin-listen",
    "127.0.0.1:0",
    "--admin-token",
    ADMIN_TOKEN,
];

fn admin_server() -> Server {
    Server::start(&ADMIN)
}

/// `GET /admin/tenants/{tenant}/events?{query}`: status and body.
fn events(s: &Server, tenant: &str, query: &str) -> (u16, Value) {
    let url = format!("{}/tenants/{tenant}/events?{query}", admin_url(s));
    admin_json(s.raw().get(url).bearer_auth(ADMIN_TOKEN).send().unwrap())
}

/// Creates a user and answers its id, with the request id `request_id`.
fn create_user(s: &Server, user_name: &str, request_id: &str) -> String {
    let resp = s
        .req("POST", "/Users")
        .header("content-type", "application/scim+json")
        .header("x-request-id", request_id)
        .body(new_user(user_name).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let doc: Value = resp.json().unwrap();
    doc["id"].as_str().unwrap().to_string()
}

fn types(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

#[test]
fn the_events_api_pages_in_commit_order() {
    let s = admin_server();
    let ids: Vec<String> = (1..=3)
        .map(|i| create_user(&s, &format!("u{i}@example.com"), &format!("req-{i}")))
        .collect();
    let resp = s
        .req("PATCH", &format!("/Users/{}", ids[0]))
        .header("content-type", "application/scim+json")
        .body(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (status, first) = events(&s, "default", "limit=2");
    assert_eq!(status, 200, "{first}");
    assert_eq!(types(&first), ["user.created", "user.created"]);
    assert_eq!(first["has_more"], true);
    let e = &first["data"][0];
    assert_eq!(e["tenant"], "default");
    assert_eq!(e["request_id"], "req-1");
    assert_eq!(e["data"]["id"], ids[0].as_str());
    assert_eq!(e["data"]["userName"], "u1@example.com");
    assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
    assert_eq!(first["next_cursor"], first["data"][1]["cursor"]);

    let next = first["next_cursor"].as_str().unwrap();
    let (status, rest) = events(&s, "default", &format!("after={next}"));
    assert_eq!(status, 200, "{rest}");
    assert_eq!(types(&rest), ["user.created", "user.deactivated"]);
    assert_eq!(rest["has_more"], false);
    let deactivated = &rest["data"][1];
    assert_eq!(deactivated["data"]["active"], false);
    // `active` was not stated when the user was created: its previous value is null.
    assert!(
        deactivated["previous"]
            .as_object()
            .is_some_and(|p| p.contains_key("active")),
        "{deactivated}"
    );
    // Cursors grow along the feed; the same read by tenant id answers the same page.
    assert!(rest["data"][0]["cursor"].as_str().unwrap() > next);
    let id = s
        .raw()
        .get(format!("{}/tenants/default", admin_url(&s)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    let tenant_id = admin_json(id).1["id"].as_str().unwrap().to_string();
    assert_eq!(events(&s, &tenant_id, &format!("after={next}")).1, rest);

    // At the end: an empty page that stays where it is.
    let end = rest["next_cursor"].as_str().unwrap();
    let (status, empty) = events(&s, "default", &format!("after={end}&wait=0"));
    assert_eq!(status, 200);
    assert_eq!(empty["data"], serde_json::json!([]));
    assert_eq!(empty["next_cursor"], end);
    assert_eq!(empty["has_more"], false);
}

#[test]
fn a_long_poll_answers_when_an_event_commits() {
    let s = admin_server();
    create_user(&s, "first@example.com", "req-first");
    let (_, page) = events(&s, "default", "");
    let end = page["next_cursor"].as_str().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            tx.send(events(&s, "default", &format!("after={end}&wait=25")))
                .unwrap();
        });
        // The poll is waiting: nothing has answered it.
        assert!(rx.recv_timeout(Duration::from_millis(700)).is_err());
        create_user(&s, "second@example.com", "req-second");
        let (status, page) = rx.recv_timeout(Duration::from_secs(20)).expect("answer");
        assert_eq!(status, 200, "{page}");
        assert_eq!(types(&page), ["user.created"]);
        assert_eq!(page["data"][0]["request_id"], "req-second");
    });
}

#[test]
fn bad_parameters_are_400s_naming_them_and_unknown_tenants_404() {
    let s = admin_server();
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        ("wait=61", "wait"),
        ("wait=-1", "wait"),
        ("after=not-a-cursor", "after"),
        ("cursor=000000000000000100000000", "cursor"),
    ] {
        let (status, body) = events(&s, "default", query);
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(name),
            "{query}: {body}"
        );
    }
    let (status, body) = events(&s, "nobody", "");
    assert_eq!(status, 404, "{body}");
    let url = format!("{}/tenants/default/events", admin_url(&s));
    assert_eq!(s.raw().get(url).send().unwrap().status(), 401);
}

/// Moves every stored event `days` into the past, straight in the SQLite file.
fn age_events(s: &Server, days: i64) {
    let db = rusqlite::Connection::open(s.data_dir().join("scimlet.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute(
        "UPDATE events SET time_ms = time_ms - ?1",
        [days * 86_400_000],
    )
    .unwrap();
}

#[test]
fn a_cursor_older_than_the_retention_gets_410() {
    let s = admin_server();
    create_user(&s, "old1@example.com", "r1");
    create_user(&s, "old2@example.com", "r2");
    let (_, page) = events(&s, "default", "limit=1");
    let seen = page["next_cursor"].as_str().unwrap().to_string();
    age_events(&s, 31);
    // Pruned on start: the default retention is 30 days.
    let mut extra = ADMIN.to_vec();
    extra.extend(["--event-retention-days", "30"]);
    let s = s.restart(&extra);
    create_user(&s, "new@example.com", "r3");
    let (status, body) = events(&s, "default", &format!("after={seen}"));
    assert_eq!(status, 410, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("GET /Users") && message.contains("GET /Groups"),
        "{message}"
    );
    // A fresh read starts at the oldest event kept.
    let (status, fresh) = events(&s, "default", "");
    assert_eq!(status, 200);
    assert_eq!(types(&fresh), ["user.created"]);
    assert_eq!(fresh["data"][0]["data"]["userName"], "new@example.com");
    // The 410 names where to continue once resynced: the newest event then.
    assert_eq!(body["resume_cursor"], fresh["data"][0]["cursor"], "{body}");
    create_user(&s, "newer@example.com", "r4");
    let resume = body["resume_cursor"].as_str().unwrap();
    let (status, after) = events(&s, "default", &format!("after={resume}"));
    assert_eq!(status, 200);
    assert_eq!(after["data"][0]["data"]["userName"], "newer@example.com");
    // The CLI says the same and fails.
    let dir = s.data_dir().to_str().unwrap().to_string();
    let out = cli_output(&["events", "default", "--after", &seen, "--data", &dir]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resync"));
}

#[test]
fn a_retention_of_zero_days_is_refused() {
    let out = cli_output(&["config", "check", "--event-retention-days", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("event-retention-days"));
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn scimlet_events_prints_json_lines_and_follows_another_process() {
    let s = Server::start(&[]);
    for i in 1..=3 {
        create_user(&s, &format!("c{i}@example.com"), &format!("cli-{i}"));
    }
    let dir = s.data_dir().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["events", "default", "--data", dir.as_str()];
        all.extend_from_slice(args);
        let out = cli_output(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out.stdout)
    };
    let all = run(&[]);
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["data"]["userName"], "c3@example.com");
    assert_eq!(all[0]["request_id"], "cli-1");
    let two = run(&["--limit", "2"]);
    assert_eq!(two, all[..2]);
    let after = all[0]["cursor"].as_str().unwrap();
    assert_eq!(run(&["--after", after]), all[1..]);

    for (args, says) in [
        (vec!["events", "nobody"], "nobody"),
        (
            vec!["events", "default", "--after", "bogus"],
            "not an event cursor",
        ),
    ] {
        let mut args = args;
        args.extend(["--data", dir.as_str()]);
        let out = cli_output(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }

    // --follow: the server (another process) commits; the follower prints it.
    let last = all[2]["cursor"].as_str().unwrap();
    let mut follower = scimlet()
        .args([
            "events", "default", "--follow", "--after", last, "--data", &dir,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    assert!(rx.recv_timeout(Duration::from_millis(700)).is_err());
    let id = create_user(&s, "followed@example.com", "cli-follow");
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a followed event");
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "user.created");
    assert_eq!(event["data"]["id"], id.as_str());
    assert!(
        follower.try_wait().unwrap().is_none(),
        "--follow keeps running"
    );
    follower.kill().unwrap();
    follower.wait().unwrap();
}
