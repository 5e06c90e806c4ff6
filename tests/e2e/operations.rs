//! Operating scimlet: tokens, tenant isolation, limits and back-pressure, request ids, probes,
//! metrics, logs, configuration, the admin API, TLS and graceful shutdown.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use reqwest::blocking::Response;
use serde_json::{json, Value};

use crate::support::{
    admin_url, assert_scim_error, cli, cli_output, fault_component, get_as, json, new_user, root,
    Server, ADMIN_TOKEN,
};

fn data_arg(s: &Server) -> String {
    s.data_dir().to_str().unwrap().to_string()
}

/// The token printed alone on the last stdout line.
fn last_line(out: &str) -> String {
    out.lines().last().unwrap().trim().to_string()
}

fn metrics(s: &Server) -> String {
    s.raw()
        .get(format!("{}/metrics", root(s)))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// Waits (bounded) until `n` guest invocations are running, as the server reports it.
fn wait_for_instances_in_use(s: &Server, n: u32) {
    let needle = format!("scimlet_instances_in_use {n}\n");
    for _ in 0..800 {
        if metrics(s).contains(&needle) {
            return;
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("the server never had {n} guest invocations in flight");
}

fn retry_after(resp: &Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

#[test]
fn a_revoked_token_gets_401_while_another_token_of_the_tenant_still_works() {
    let s = Server::start(&[]);
    let data = data_arg(&s);
    let second = last_line(&cli(&[
        "tenant", "token", "add", "default", "--data", &data,
    ]));
    assert!(second.starts_with("scimlet_") && second != s.token);
    assert_eq!(get_as(&s, &second, "/Users").0, 200);
    assert_eq!(get_as(&s, &s.token, "/Users").0, 200);

    let listed = cli(&["tenant", "token", "list", "default", "--data", &data]);
    assert!(
        !listed.contains(&s.token) && !listed.contains(&second),
        "{listed}"
    );
    let ids: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| id.starts_with("k_"))
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    // Oldest first: the first id is the token printed at the first start.
    cli(&[
        "tenant", "token", "revoke", "default", ids[0], "--data", &data,
    ]);

    let (status, body) = get_as(&s, &s.token, "/Users");
    assert_eq!(status, 401);
    assert_scim_error(&body, 401, None);
    assert_eq!(get_as(&s, &second, "/Users").0, 200);
    let listed = cli(&["tenant", "token", "list", "default", "--data", &data]);
    let revoked: Vec<&str> = listed.lines().filter(|l| l.ends_with("yes")).collect();
    assert_eq!(revoked.len(), 1, "{listed}");
    assert!(revoked[0].starts_with(ids[0]), "{listed}");

    let out = cli_output(&[
        "tenant", "token", "revoke", "default", "k_nope", "--data", &data,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("k_nope"));
}

#[test]
fn a_tenant_never_sees_another_tenants_users() {
    let s = Server::start(&[]);
    let data = data_arg(&s);
    let other = last_line(&cli(&["tenant", "create", "beta", "--data", &data]));
    let (status, created) = json(s.send_json("POST", "/Users", &new_user("grace@example.com")));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();

    let (status, body) = get_as(&s, &other, &format!("/Users/{id}"));
    assert_eq!(status, 404);
    assert_scim_error(&body, 404, None);
    let (_, list) = get_as(&s, &other, "/Users");
    assert_eq!(list["totalResults"], 0, "{list}");
    let filter = "/Users?filter=userName%20eq%20%22grace@example.com%22";
    let (_, found) = get_as(&s, &other, filter);
    assert_eq!(found["totalResults"], 0, "{found}");
    // Uniqueness is per tenant too: the same userName is free in the other tenant.
    let resp = s
        .raw()
        .post(s.url("/Users"))
        .bearer_auth(&other)
        .header("content-type", "application/scim+json")
        .body(new_user("grace@example.com").to_string())
        .send()
        .unwrap();
    let (status, theirs) = json(resp);
    assert_eq!(status, 201, "{theirs}");
    assert_ne!(theirs["id"], created["id"]);
    assert_eq!(json(s.get(filter)).1["totalResults"], 1);
}

/// Clears its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// `method path` with `token` and an optional JSON body.
fn send_as(
    s: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = s
        .raw()
        .request(method.parse().unwrap(), s.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    json(req.send().unwrap())
}

#[test]
fn a_tenant_cannot_change_another_tenants_users_or_groups() {
    const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    let s = Server::start(&[]);
    let owner = s.token.clone();
    let intruder = last_line(&cli(&["tenant", "create", "beta", "--data", &data_arg(&s)]));
    let create = |token: &str, path: &str, body: Value| {
        let (status, created) = send_as(&s, token, "POST", path, Some(&body));
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_string()
    };
    let user = create(&owner, "/Users", new_user("grace@example.com"));
    let busy = create(&owner, "/Users", new_user("busy@example.com"));
    let group = create(
        &owner,
        "/Groups",
        json!({"displayName": "Eng", "members": [{"value": user}]}),
    );
    let theirs = create(&intruder, "/Users", new_user("mallory@example.com"));
    let their_group = create(&intruder, "/Groups", json!({"displayName": "Eng"}));
    let (user_path, group_path) = (format!("/Users/{user}"), format!("/Groups/{group}"));
    let (_, user_before) = get_as(&s, &owner, &user_path);
    let (_, group_before) = get_as(&s, &owner, &group_path);

    let patch = |ops: Value| json!({"schemas": [PATCH_OP], "Operations": ops});
    let attempts: Vec<(&str, &String, Option<Value>)> = vec![
        (
            "PUT",
            &user_path,
            Some(json!({"userName": "owned@example.com"})),
        ),
        (
            "PATCH",
            &user_path,
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        ),
        ("DELETE", &user_path, None),
        ("PUT", &group_path, Some(json!({"displayName": "Owned"}))),
        (
            "PATCH",
            &group_path,
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": theirs}]}]),
            )),
        ),
        (
            "PATCH",
            &group_path,
            Some(patch(json!([{"op": "remove", "path": "members"}]))),
        ),
        ("DELETE", &group_path, None),
    ];
    let owner_writes = AtomicBool::new(true);
    thread::scope(|scope| {
        // Stops the owner's traffic however this scope ends, a failed assertion included.
        let _stop = StopOnDrop(&owner_writes);
        // The owner's own traffic goes on meanwhile, on a user the intruder does not target.
        let traffic = scope.spawn(|| {
            let mut n = 0;
            while owner_writes.load(Ordering::SeqCst) || n < 3 {
                let body =
                    patch(json!([{"op": "replace", "path": "nickName", "value": n.to_string()}]));
                let (status, body) =
                    send_as(&s, &owner, "PATCH", &format!("/Users/{busy}"), Some(&body));
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["nickName"], n.to_string().as_str());
                n += 1;
            }
            n
        });
        for (method, path, body) in &attempts {
            let (status, answer) = send_as(&s, &intruder, method, path, body.as_ref());
            assert_eq!(status, 404, "{method} {path} by another tenant: {answer}");
            assert_scim_error(&answer, 404, None);
        }
        // Another tenant's user is no member candidate, in either direction.
        let add =
            |id: &str| patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
        let (status, answer) = send_as(&s, &owner, "PATCH", &group_path, Some(&add(&theirs)));
        assert_eq!(status, 400, "{answer}");
        assert_scim_error(&answer, 400, Some("invalidValue"));
        let with_theirs = json!({"displayName": "Mixed", "members": [{"value": theirs}]});
        let (status, answer) = send_as(&s, &owner, "POST", "/Groups", Some(&with_theirs));
        assert_eq!(status, 400, "{answer}");
        assert_scim_error(&answer, 400, Some("invalidValue"));
        let their_path = format!("/Groups/{their_group}");
        let (status, answer) = send_as(&s, &intruder, "PATCH", &their_path, Some(&add(&user)));
        assert_eq!(status, 400, "{answer}");
        assert_scim_error(&answer, 400, Some("invalidValue"));
        owner_writes.store(false, Ordering::SeqCst);
        assert!(traffic.join().unwrap() >= 3);
    });

    let (_, user_after) = get_as(&s, &owner, &user_path);
    let (_, group_after) = get_as(&s, &owner, &group_path);
    assert_eq!(
        user_after["meta"]["version"],
        user_before["meta"]["version"]
    );
    assert_eq!(
        group_after["meta"]["version"],
        group_before["meta"]["version"]
    );
    assert_eq!(user_after, user_before);
    assert_eq!(group_after, group_before);
    let (_, mixed) = get_as(&s, &owner, "/Groups?filter=displayName%20eq%20%22Mixed%22");
    assert_eq!(mixed["totalResults"], 0, "{mixed}");
    let (_, their_after) = get_as(&s, &intruder, &format!("/Groups/{their_group}"));
    assert!(
        their_after.get("members").is_none_or(|m| m == &json!([])),
        "{their_after}"
    );
}

#[test]
fn the_store_holds_no_plaintext_token() {
    let s = Server::start(&[]);
    let data = data_arg(&s);
    let added = last_line(&cli(&[
        "tenant", "token", "add", "default", "--data", &data,
    ]));
    let other = last_line(&cli(&["tenant", "create", "beta", "--data", &data]));
    let (status, _) = json(s.send_json("POST", "/Users", &new_user("ada@example.com")));
    assert_eq!(status, 201);

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(s.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(
        bytes.windows(4).any(|w| w == b"beta"),
        "the store's files were read"
    );
    for token in [&s.token, &added, &other] {
        let secret = token.strip_prefix("scimlet_").unwrap().as_bytes();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "a token is stored in plain text"
        );
    }
}

#[test]
fn request_ids_are_echoed_or_generated() {
    let s = Server::start(&[]);
    let resp = s
        .req("GET", "/ServiceProviderConfig")
        .header("x-request-id", "e2e-req-42")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "e2e-req-42");

    let generated = |resp: Response| resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let a = generated(s.get("/ServiceProviderConfig"));
    let b = generated(s.raw().get(s.url("/Users")).send().unwrap());
    assert!(a.len() >= 16 && a != b, "{a} {b}");
    let insane = generated(
        s.req("GET", "/Users")
            .header("x-request-id", "not sane; <script>")
            .send()
            .unwrap(),
    );
    assert_ne!(insane, "not sane; <script>");
}

#[test]
fn probes_and_metrics_are_served() {
    let s = Server::start(&[]);
    let get = |path: &str| s.raw().get(format!("{}{path}", root(&s))).send().unwrap();
    let health = get("/healthz");
    assert_eq!(
        (health.status().as_u16(), health.text().unwrap()),
        (200, "ok".into())
    );
    let ready = get("/readyz");
    assert_eq!(
        (ready.status().as_u16(), ready.text().unwrap()),
        (200, "ready".into())
    );

    assert_eq!(
        json(s.send_json("POST", "/Users", &new_user("m@example.com"))).0,
        201
    );
    assert_eq!(json(s.get("/Users")).0, 200);
    assert_eq!(json(s.get("/Groups")).0, 200);
    assert_eq!(json(s.raw().get(s.url("/Schemas")).send().unwrap()).0, 401);

    let resp = get("/metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().unwrap();
    for needle in [
        "scimlet_requests_total{resource=\"Users\",status=\"201\"} 1",
        "scimlet_requests_total{resource=\"Users\",status=\"200\"} 1",
        "scimlet_requests_total{resource=\"Groups\",status=\"200\"} 1",
        "scimlet_requests_total{resource=\"Schemas\",status=\"401\"} 1",
        "scimlet_request_duration_seconds_bucket{",
        "scimlet_request_duration_seconds_count{resource=\"Users\"} 2",
        "scimlet_instances_in_use 0",
        "scimlet_instance_capacity 64",
        "scimlet_store_commits_total{outcome=\"ok\"}",
        "scimlet_store_commits_total{outcome=\"conflict\"}",
        "scimlet_guest_faults_total{kind=\"trap\"} 0",
        "scimlet_guest_faults_total{kind=\"timeout\"} 0",
        "scimlet_guest_faults_total{kind=\"oom\"} 0",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(
        !text.contains("scimlet_store_commits_total{outcome=\"ok\"} 0"),
        "{text}"
    );
}

#[test]
fn guest_faults_are_counted_by_kind() {
    let component = fault_component();
    let s = Server::start(&[
        "--component",
        &component,
        "--guest-deadline-ms",
        "300",
        "--guest-memory-mib",
        "32",
    ]);
    for fault in ["panic", "loop", "oom"] {
        let resp = s
            .req("GET", "/ServiceProviderConfig")
            .header("x-scimlet-fault", fault)
            .send()
            .unwrap();
        assert!(resp.status().is_server_error());
    }
    let text = metrics(&s);
    for kind in ["trap", "timeout", "oom"] {
        let needle = format!("scimlet_guest_faults_total{{kind=\"{kind}\"}} 1");
        assert!(text.contains(&needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn the_tenant_rate_limit_answers_429_with_retry_after() {
    let s = Server::start(&["--tenant-rate-limit", "1"]);
    let mut limited = None;
    for _ in 0..20 {
        let resp = s.get("/ServiceProviderConfig");
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("20 requests at once exceed 1 per second");
    assert!(retry_after(&resp) >= 1);
    let (_, body) = json(resp);
    assert_scim_error(&body, 429, None);

    // The limit is per tenant: another tenant's bucket is still full.
    let other = last_line(&cli(&["tenant", "create", "beta", "--data", &data_arg(&s)]));
    assert_eq!(get_as(&s, &other, "/ServiceProviderConfig").0, 200);
    assert!(metrics(&s).contains("status=\"429\""));
}

#[test]
fn a_saturated_server_answers_503_with_retry_after() {
    let component = fault_component();
    let s = Server::start(&[
        "--max-concurrency",
        "1",
        "--component",
        &component,
        "--guest-deadline-ms",
        "60000",
    ]);
    assert!(metrics(&s).contains("scimlet_instance_capacity 1"));
    thread::scope(|scope| {
        // Holds the only slot until released: no deadline or machine load decides the outcome.
        let busy = scope.spawn(|| {
            s.req("GET", "/ServiceProviderConfig")
                .header("x-scimlet-fault", "wait")
                .send()
                .unwrap()
                .status()
                .as_u16()
        });
        wait_for_instances_in_use(&s, 1);
        let resp = s.get("/Users");
        assert_eq!(resp.status(), 503);
        assert!(retry_after(&resp) >= 1);
        let (_, body) = json(resp);
        assert_scim_error(&body, 503, None);
        s.release_waiting_requests();
        assert_eq!(busy.join().unwrap(), 200, "the held request is served");
    });
    assert_eq!(json(s.get("/Users")).0, 200, "the slot is free again");
}

#[test]
fn a_request_over_the_timeout_answers_503_with_retry_after() {
    let component = fault_component();
    let s = Server::start(&[
        "--component",
        &component,
        "--request-timeout-ms",
        "300",
        "--guest-deadline-ms",
        "20000",
    ]);
    let resp = s
        .req("GET", "/ServiceProviderConfig")
        .header("x-scimlet-fault", "loop")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(retry_after(&resp) >= 1);
    let (_, body) = json(resp);
    assert_scim_error(&body, 503, None);
    assert_eq!(json(s.get("/ServiceProviderConfig")).0, 200);
}

#[test]
fn logs_never_contain_tokens_or_passwords() {
    let data = tempfile::tempdir().unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("scimlet.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let s = Server::start_with(data, &["--admin-listen", "127.0.0.1:0"], |cmd| {
        cmd.env("SCIMLET_LOG", "scimlet=debug")
            .env("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN)
            .stderr(Stdio::from(log));
    });
    let password = "Pa55-w0rd-never-logged";
    let mut user = new_user("logged@example.com");
    user["password"] = json!(password);
    let (status, created) = json(s.send_json("POST", "/Users", &user));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "password", "value": format!("{password}-2")}],
    });
    let (status, patched) = json(s.send_json("PATCH", &format!("/Users/{id}"), &patch));
    assert_eq!(status, 200, "{patched}");
    let bad_token = "scimlet_thisTokenIsWrongAndMustNotBeLogged";
    let resp = s
        .raw()
        .get(s.url("/Users"))
        .bearer_auth(bad_token)
        .header("x-request-id", "log-check-1")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, found) = json(s.get("/Users?filter=userName%20eq%20%22logged@example.com%22"));
    assert_eq!(
        (status, found["totalResults"].as_u64()),
        (200, Some(1)),
        "{found}"
    );
    let admin = admin_url(&s);
    let listed = s
        .raw()
        .get(format!("{admin}/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(listed.status(), 200);

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("log-check-1"),
        "the request log is captured:\n{logged}"
    );
    for secret in [s.token.as_str(), bad_token, password, ADMIN_TOKEN] {
        assert!(
            !logged.contains(secret),
            "{secret} is in the log:\n{logged}"
        );
    }
    assert!(
        !logged.contains("logged@example.com"),
        "the query string is not logged"
    );
}

#[test]
fn sigterm_drains_an_in_flight_write_which_survives_the_restart() {
    let component = fault_component();
    let mut s = Server::start(&["--component", &component, "--guest-deadline-ms", "60000"]);
    let pid = s.pid().to_string();
    let (status, created) = thread::scope(|scope| {
        // Held inside the component until released, so it is in flight when the signal comes.
        let in_flight = scope.spawn(|| {
            let resp = s
                .req("POST", "/Users")
                .header("content-type", "application/scim+json")
                .header("x-scimlet-fault", "wait")
                .body(new_user("in-flight@example.com").to_string())
                .send()
                .expect("the in-flight request gets its response");
            json(resp)
        });
        wait_for_instances_in_use(&s, 1);
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        // Only once the server has stopped accepting does the write go on.
        s.wait_until_not_accepting();
        s.release_waiting_requests();
        in_flight.join().unwrap()
    });
    assert_eq!(status, 201, "the in-flight write completes: {created}");
    assert!(s.wait_exit().success(), "a graceful stop exits 0");

    let s = s.restart(&[]);
    let id = created["id"].as_str().unwrap();
    let (status, read) = json(s.get(&format!("/Users/{id}")));
    assert_eq!(
        status, 200,
        "the acknowledged write survives the restart: {read}"
    );
    assert_eq!(read["userName"], "in-flight@example.com");
    assert_eq!(read["meta"]["version"], created["meta"]["version"]);
}

#[test]
fn the_guest_deadline_counts_cpu_time_not_time_spent_waiting() {
    let component = fault_component();
    let s = Server::start(&["--component", &component, "--guest-deadline-ms", "300"]);
    thread::scope(|scope| {
        let held = scope.spawn(|| {
            let resp = s
                .req("POST", "/Users")
                .header("content-type", "application/scim+json")
                .header("x-scimlet-fault", "wait")
                .body(new_user("patient@example.com").to_string())
                .send()
                .unwrap();
            json(resp)
        });
        wait_for_instances_in_use(&s, 1);
        // Held for over three times its budget of wall-clock time, using next to no CPU time:
        // a wall-clock deadline would have interrupted it.
        thread::sleep(Duration::from_millis(1000));
        s.release_waiting_requests();
        let (status, body) = held.join().unwrap();
        assert_eq!(status, 201, "{body}");
    });
    // Spinning uses CPU time: the same budget stops it.
    let resp = s
        .req("GET", "/ServiceProviderConfig")
        .header("x-scimlet-fault", "loop")
        .send()
        .unwrap();
    let (status, body) = json(resp);
    assert_eq!(status, 503, "{body}");
    assert_scim_error(&body, 503, None);
    assert!(metrics(&s).contains("scimlet_guest_faults_total{kind=\"timeout\"} 1"));
}
