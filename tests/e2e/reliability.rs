//! Reliability of the real binary: concurrent writers never break uniqueness, lose an update or
//! a membership change; hostile requests get SCIM errors; a faulty guest fails only its own
//! request. After each storm `scimlet check` verifies the store while the server keeps running.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;

use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::{Backend, Write as StoreWrite};
use serde_json::{json, Value};

use crate::support::{assert_scim_error, cli, fault_component, json, scimlet, Server, SCIM_JSON};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A server on a data dir whose path the test keeps, for `scimlet check`.
fn start(extra: &[&str]) -> (Server, PathBuf) {
    let data = tempfile::tempdir().expect("temp dir");
    let path = data.path().to_path_buf();
    (Server::start_in(data, extra), path)
}

/// Runs `scimlet check` on the live server's store and asserts it is clean.
fn assert_store_clean(data: &Path) {
    let out = scimlet()
        .args(["check", "--data"])
        .arg(data)
        .output()
        .expect("run scimlet check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scimlet check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("'default'") && stdout.contains(": ok"),
        "{stdout}"
    );
}

#[test]
fn scimlet_check_names_what_is_broken_and_exits_non_zero() {
    let (s, data) = start(&[]);
    let id = create_user(&s, "Broken@Example.com");
    assert_store_clean(&data);
    // Lose the user's userName index entry behind the server's back.
    let backend = SqliteBackend::open(&data.join("scimlet.db")).unwrap();
    let tenant = backend.tenant("default").unwrap().unwrap();
    let key = "u/User/userName/broken@example.com".to_string();
    assert!(backend.get(&tenant.id, &key).unwrap().is_some());
    backend
        .commit(&tenant.id, &[], &[StoreWrite::Delete(key)])
        .unwrap();
    let out = scimlet()
        .args(["check", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("tenant 'default'") && report.contains("1 problem"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "User {id} has userName \"broken@example.com\" but its index entry u/User/userName/broken@example.com is missing"
        )),
        "{report}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("store invariants do not hold"), "{stderr}");
}

fn create_user(s: &Server, name: &str) -> String {
    let (status, body) = json(s.send_json("POST", "/Users", &json!({ "userName": name })));
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn etag_of(resp: &reqwest::blocking::Response) -> String {
    resp.headers()["etag"].to_str().unwrap().to_string()
}

#[test]
fn concurrent_creates_of_one_user_name_make_exactly_one_user() {
    const WRITERS: usize = 64;
    let (s, data) = start(&["--max-concurrency", "256"]);
    let barrier = Barrier::new(WRITERS);
    let statuses: Vec<(u16, Value)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    // Different case each time: uniqueness is case-insensitive.
                    let name = if i % 2 == 0 {
                        "Storm@Example.com"
                    } else {
                        "storm@example.COM"
                    };
                    barrier.wait();
                    json(s.send_json("POST", "/Users", &json!({ "userName": name })))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: Vec<&Value> = statuses
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{statuses:?}");
    for (status, body) in statuses.iter().filter(|(st, _)| *st != 201) {
        assert_eq!(*status, 409, "{body}");
        assert_scim_error(body, 409, Some("uniqueness"));
    }
    let (_, list) = json(s.get("/Users?filter=userName%20eq%20%22storm@example.com%22"));
    assert_eq!(list["totalResults"], 1, "{list}");
    assert_eq!(list["Resources"][0]["id"], created[0]["id"]);
    assert_store_clean(&data);
}

/// One writer's increments of the user's `nickName` counter: read the ETag, write value + 1
/// with `If-Match`, retry on 412. Answers how many writes were acknowledged with 200.
fn increment(s: &Server, id: &str, times: usize, use_put: bool) -> usize {
    let mut acknowledged = 0;
    for _attempt in 0..10_000 {
        if acknowledged == times {
            return acknowledged;
        }
        let resp = s.get(&format!("/Users/{id}"));
        let etag = etag_of(&resp);
        let (_, user) = json(resp);
        let n: u64 = user["nickName"].as_str().unwrap().parse().unwrap();
        let next = (n + 1).to_string();
        let req = if use_put {
            let body = json!({"userName": user["userName"], "nickName": next});
            s.req("PUT", &format!("/Users/{id}")).body(body.to_string())
        } else {
            let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nickName", "value": next}]});
            s.req("PATCH", &format!("/Users/{id}"))
                .body(body.to_string())
        };
        let resp = req
            .header("content-type", SCIM_JSON)
            .header("if-match", &etag)
            .send()
            .unwrap();
        let (status, body) = json(resp);
        match status {
            200 => {
                assert_eq!(body["nickName"], next.as_str(), "{body}");
                acknowledged += 1;
            }
            412 => assert_scim_error(&body, 412, None),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    panic!("writer made no progress in 10 000 attempts");
}

#[test]
fn concurrent_conditional_puts_and_patches_lose_no_update() {
    const WRITERS: usize = 6;
    const EACH: usize = 8;
    let (s, data) = start(&[]);
    let (status, user) = json(s.send_json(
        "POST",
        "/Users",
        &json!({"userName": "counter", "nickName": "0"}),
    ));
    assert_eq!(status, 201);
    let id = user["id"].as_str().unwrap().to_string();
    let barrier = Barrier::new(WRITERS);
    let acknowledged: usize = thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (s, id, barrier) = (&s, &id, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    increment(s, id, EACH, i % 2 == 0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(acknowledged, WRITERS * EACH);
    let (_, user) = json(s.get(&format!("/Users/{id}")));
    assert_eq!(
        user["nickName"],
        acknowledged.to_string().as_str(),
        "{user}"
    );
    // Every acknowledged write made exactly one new revision.
    assert_eq!(
        user["meta"]["version"],
        format!("W/\"{}\"", acknowledged + 1).as_str()
    );
    assert_store_clean(&data);
}

/// The membership operations of one thread on its own users; the last one decides each user's
/// final membership. Shapes vary as IdPs send them (Okta's filter remove, Entra's value remove).
fn membership_ops(s: &Server, group: &str, users: &[String], rounds: usize) -> Vec<bool> {
    let mut member = vec![false; users.len()];
    for round in 0..rounds {
        for (i, user) in users.iter().enumerate() {
            // A fixed, uneven pattern so that final states differ between users.
            let add = (round + i) % 3 != 2;
            let op = match (add, (round + i) % 2) {
                (true, _) => json!({"op": "add", "path": "members", "value": [{"value": user}]}),
                (false, 0) => {
                    json!({"op": "remove", "path": format!("members[value eq \"{user}\"]")})
                }
                (false, _) => {
                    json!({"op": "Remove", "path": "members", "value": [{"value": user}]})
                }
            };
            let body = json!({"schemas": [PATCH_OP], "Operations": [op]});
            let (status, resp) = json(s.send_json("PATCH", &format!("/Groups/{group}"), &body));
            assert!(status == 200 || status == 204, "{status}: {resp}");
            member[i] = add;
        }
    }
    member
}

#[test]
fn concurrent_membership_storms_end_exactly_as_the_model() {
    const THREADS: usize = 6;
    const USERS_EACH: usize = 5;
    let (s, data) = start(&[]);
    let users: Vec<String> = (0..THREADS * USERS_EACH)
        .map(|i| create_user(&s, &format!("member-{i}@example.com")))
        .collect();
    let (status, group) = json(s.send_json(
        "POST",
        "/Groups",
        &json!({"displayName": "Storm", "members": users.iter().step_by(2).map(|u| json!({"value": u})).collect::<Vec<_>>()}),
    ));
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_string();
    let barrier = Barrier::new(THREADS);
    let expected: BTreeSet<String> = thread::scope(|scope| {
        let handles: Vec<_> = users
            .chunks(USERS_EACH)
            .enumerate()
            .map(|(t, mine)| {
                let (s, gid, barrier) = (&s, &gid, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let member = membership_ops(s, gid, mine, 3 + t % 2);
                    mine.iter()
                        .zip(member)
                        .filter(|(_, m)| *m)
                        .map(|(u, _)| u.clone())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let actual = member_ids(&s, &gid);
    assert_eq!(actual, expected);
    // The reverse direction agrees: each user's derived `groups`.
    for user in &users {
        let (_, u) = json(s.get(&format!("/Users/{user}")));
        let in_group = u["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["value"] == gid.as_str()));
        assert_eq!(in_group, expected.contains(user), "{u}");
    }
    assert_store_clean(&data);
}

#[test]
fn member_adds_racing_user_deletions_leave_no_member_that_is_gone() {
    const USERS: usize = 60;
    let (s, data) = start(&[]);
    let users: Vec<String> = (0..USERS)
        .map(|i| create_user(&s, &format!("doomed-{i}@example.com")))
        .collect();
    let (status, group) = json(s.send_json("POST", "/Groups", &json!({"displayName": "Race"})));
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_string();
    // Round after round, one user is deleted at the very moment two adders add it (and one
    // user that stays), each started together by a barrier.
    let doomed: Vec<&String> = users.iter().step_by(2).collect();
    let survivors: Vec<&String> = users.iter().skip(1).step_by(2).collect();
    let barrier = Barrier::new(3);
    // No thread panics mid-storm (the others would wait at the barrier forever): each lists
    // what went wrong, and the lists are checked once all are done.
    let add = |id: &str| -> Option<String> {
        let body = json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": id}]}]});
        let (status, answer) = json(s.send_json("PATCH", &format!("/Groups/{gid}"), &body));
        match status {
            200 | 204 => None,
            // The user was deleted first: not a member candidate any more.
            400 if answer["scimType"] == "invalidValue" => None,
            other => Some(format!("adding {id}: {other} {answer}")),
        }
    };
    let failures: Vec<String> = thread::scope(|scope| {
        let deleter = scope.spawn(|| {
            let mut failures = Vec::new();
            for id in &doomed {
                barrier.wait();
                let status = s
                    .req("DELETE", &format!("/Users/{id}"))
                    .send()
                    .unwrap()
                    .status();
                if status != 204 {
                    failures.push(format!("DELETE /Users/{id}: {status}"));
                }
            }
            failures
        });
        let adders: Vec<_> = [0, 1]
            .into_iter()
            .map(|adder| {
                let (barrier, doomed, survivors, add) = (&barrier, &doomed, &survivors, &add);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (id, stays) in doomed.iter().zip(survivors) {
                        barrier.wait();
                        failures.extend(add(id));
                        if adder == 0 {
                            failures.extend(add(stays));
                        }
                    }
                    failures
                })
            })
            .collect();
        let mut failures = deleter.join().unwrap();
        for adder in adders {
            failures.extend(adder.join().unwrap());
        }
        failures
    });
    assert_eq!(failures, Vec::<String>::new());
    let members = member_ids(&s, &gid);
    for member in &members {
        let (status, body) = json(s.get(&format!("/Users/{member}")));
        assert_eq!(status, 200, "member {member} of the group is gone: {body}");
    }
    let expected: BTreeSet<String> = survivors.into_iter().cloned().collect();
    assert_eq!(members, expected, "exactly the users that were not deleted");
    for id in doomed {
        assert_eq!(json(s.get(&format!("/Users/{id}"))).0, 404);
    }
    assert_store_clean(&data);
}

/// Sends raw bytes as an HTTP/1.1 request; answers the status code and the body.
fn raw_http(base: &str, request: &[u8]) -> (u16, String) {
    let authority = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).unwrap_or("0").parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, body.to_string())
}

/// A POST announcing a 10 MB body. Only the first `cap + 1` bytes are sent: the server reads
/// them all before it refuses, so it closes a drained connection and the answer arrives
/// intact (sending all 10 MB would race the server's close with a reset).
fn ten_megabyte_post(s: &Server, cap: usize) -> Vec<u8> {
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: {SCIM_JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        s.token,
        10 << 20
    );
    let mut request = head.into_bytes();
    request.extend(std::iter::repeat_n(b'x', cap + 1));
    request
}

#[test]
fn hostile_requests_get_scim_errors_and_the_server_stays_healthy() {
    let (s, data) = start(&[]);
    let post = |ct: &str, body: Vec<u8>| {
        let resp = s
            .req("POST", "/Users")
            .header("content-type", ct)
            .body(body)
            .send()
            .unwrap();
        json(resp)
    };
    let (status, body) = raw_http(&s.base, &ten_megabyte_post(&s, 1 << 20));
    assert_eq!(status, 413, "{body}");
    assert_scim_error(&serde_json::from_str(&body).unwrap(), 413, None);

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, body) = post(SCIM_JSON, deep.into_bytes());
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidSyntax"));

    let (status, body) = post(SCIM_JSON, br#"{"userName":"a","UserName":"b"}"#.to_vec());
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidSyntax"));

    let (status, body) = post(SCIM_JSON, b"{\"userName\":\"\xff\"}".to_vec());
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidSyntax"));

    let (status, body) = post("application/xml", br#"{"userName":"xml"}"#.to_vec());
    assert_eq!(status, 415);
    assert_scim_error(&body, 415, None);
    let (status, body) = post("application/json", b"userName=form&active=true".to_vec());
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidSyntax"));

    let deep_filter = format!("{}userName pr{}", "(".repeat(10_000), ")".repeat(10_000));
    let resp = s
        .req("GET", "/Users")
        .query(&[("filter", deep_filter.as_str())])
        .send()
        .unwrap();
    let (status, body) = json(resp);
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidFilter"));
    let (status, body) = json(s.get("/Users?count=99999999999999999999999"));
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidValue"));
    let (status, list) = json(s.get("/Users?count=4294967296"));
    assert_eq!((status, list["totalResults"].as_u64()), (200, Some(0)));
    let (status, body) = json(s.get("/Users?filter=userName%20eq%20%22%FF%FE%22"));
    assert_eq!((status, body["totalResults"].as_u64()), (200, Some(0)));
    let (status, body) = json(s.get("/Users?filter=%FF"));
    assert_eq!(status, 400);
    assert_scim_error(&body, 400, Some("invalidFilter"));
    // Raw bytes that are not UTF-8 in the request target never reach SCIM: the HTTP layer
    // refuses the request line.
    let raw = format!(
        "GET /scim/v2/Users?filter=x\u{ff} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
        s.token
    );
    let mut bytes = raw.into_bytes();
    let at = bytes
        .windows(2)
        .position(|w| w == "\u{ff}".as_bytes())
        .unwrap();
    bytes.splice(at..at + 2, [0xff]);
    assert_eq!(raw_http(&s.base, &bytes).0, 400);

    // Identifiers are bounded and free of control characters (guest/src/identifiers.rs): a
    // 1 000 000-character or NUL-bearing userName is a 400 that stores nothing.
    let long = "l".repeat(1_000_000);
    for name in [long.as_str(), "nul\u{0}a"] {
        let (status, body) = json(s.send_json("POST", "/Users", &json!({ "userName": name })));
        assert_eq!(status, 400, "{body}");
        assert_scim_error(&body, 400, Some("invalidValue"));
    }
    let (_, list) = json(s.get("/Users?filter=userName%20eq%20%22nul%5Cu0000a%22"));
    assert_eq!(list["totalResults"], 0, "{list}");
    // In free text, long values and NUL characters are data: stored exactly (SQLite keeps the
    // NUL).
    let with_text = |name: &str, text: &str| {
        let (status, body) = json(s.send_json(
            "POST",
            "/Users",
            &json!({ "userName": name, "displayName": text }),
        ));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    };
    let id = with_text("long", &long);
    let (_, read) = json(s.get(&format!("/Users/{id}")));
    assert!(read["displayName"].as_str() == Some(long.as_str()));
    let a = with_text("nul-a", "nul\u{0}a");
    let b = with_text("nul-b", "nul\u{0}b");
    let (_, read) = json(s.get(&format!("/Users/{a}")));
    assert_eq!(read["displayName"], "nul\u{0}a");
    let (_, list) = json(s.get("/Users?filter=displayName%20eq%20%22nul%5Cu0000b%22"));
    assert_eq!(list["totalResults"], 1, "{list}");
    assert_eq!(list["Resources"][0]["id"], b.as_str());

    create_user(&s, "still-healthy");
    assert_store_clean(&data);
}

#[test]
fn guest_faults_fail_their_own_requests_while_another_tenant_is_served() {
    let component = fault_component();
    let (s, data) = start(&[
        "--component",
        &component,
        "--guest-deadline-ms",
        "300",
        "--guest-memory-mib",
        "32",
    ]);
    let dir = data.to_str().unwrap();
    let out = cli(&["tenant", "create", "bystander", "--data", dir]);
    let other_token = out.lines().last().unwrap().trim().to_string();

    let faults_done = AtomicBool::new(false);
    let served = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    thread::scope(|scope| {
        let faulty: Vec<_> = ["panic", "loop", "oom", "panic", "loop", "oom"]
            .into_iter()
            .map(|fault| {
                let s = &s;
                scope.spawn(move || {
                    let resp = s
                        .req("GET", "/Users")
                        .header("x-scimlet-fault", fault)
                        .send()
                        .unwrap();
                    (fault, json(resp))
                })
            })
            .collect();
        let bystanders: Vec<_> = (0..2)
            .map(|t| {
                let (s, token, done, served, failures) =
                    (&s, &other_token, &faults_done, &served, &failures);
                scope.spawn(move || {
                    let mut i = 0;
                    // Keep requests in flight until every fault has been answered.
                    while !done.load(Ordering::SeqCst) || i < 3 {
                        let body = json!({"userName": format!("bystander-{t}-{i}")});
                        let resp = s
                            .raw()
                            .post(s.url("/Users"))
                            .bearer_auth(token)
                            .header("content-type", SCIM_JSON)
                            .body(body.to_string())
                            .send()
                            .unwrap();
                        let status = resp.status().as_u16();
                        if status != 201 {
                            failures
                                .lock()
                                .unwrap()
                                .push((status, resp.text().unwrap()));
                        }
                        served.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                })
            })
            .collect();
        for handle in faulty {
            let (fault, (status, body)) = handle.join().unwrap();
            let expected = if fault == "panic" { 500 } else { 503 };
            assert_eq!(status, expected, "{fault}: {body}");
            assert_scim_error(&body, expected, None);
        }
        faults_done.store(true, Ordering::SeqCst);
        for handle in bystanders {
            handle.join().unwrap();
        }
    });
    assert_eq!(*failures.lock().unwrap(), Vec::<(u16, String)>::new());
    let count = served.load(Ordering::SeqCst);
    let resp = s
        .raw()
        .get(s.url("/Users?count=0"))
        .bearer_auth(&other_token)
        .send()
        .unwrap();
    let (status, list) = json(resp);
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"].as_u64(), Some(count as u64));
    create_user(&s, "after-faults");
    let out = scimlet().args(["check", "--data", dir]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("'bystander'"),
        "{report}"
    );
}

/// The ids of a group's members, as `GET /Groups/{id}` answers them.
fn member_ids(s: &Server, gid: &str) -> BTreeSet<String> {
    let (_, group) = json(s.get(&format!("/Groups/{gid}")));
    group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|v| v["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}
