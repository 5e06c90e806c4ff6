//! Several `scimlet serve` processes on one PostgreSQL database (`--store postgres`): what one
//! host commits, the other serves at once, and a database outage is a 503 the hosts recover
//! from by themselves. Each test runs in a schema of its own on the test database; without a
//! reachable PostgreSQL the tests skip (printing why), except under CI (`CI` set): they fail.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::support::{
    admin_json, admin_url, cli, get_as, json, new_user, scimlet, Server, ADMIN_TOKEN,
};
use crate::testdb::{TestDb, PG_HOST, PG_PORT};

/// A host on `url` with the admin API; `token` is the default tenant's (printed by the first
/// host only).
fn host(url: &str, token: Option<&str>) -> Server {
    host_with(url, token, &[])
}

/// [`host`] with more environment variables.
pub(crate) fn host_with(url: &str, token: Option<&str>, env: &[(&str, &str)]) -> Server {
    let args = [
        "--store",
        "postgres",
        "--database-url",
        url,
        "--admin-listen",
        "127.0.0.1:0",
        "--database-pool-size",
        "8",
    ];
    let data = tempfile::tempdir().unwrap();
    let mut s = Server::start_with(data, &args, |cmd| {
        cmd.env("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN);
        cmd.envs(env.iter().copied());
    });
    if let Some(token) = token {
        assert!(s.token.is_empty(), "only the first host creates the tenant");
        s.token = token.to_string();
    }
    assert!(!s.token.is_empty());
    s
}

fn two_hosts(schema: &TestDb) -> (Server, Server) {
    let a = host(&schema.url(), None);
    let b = host(&schema.url(), Some(&a.token.clone()));
    (a, b)
}

fn total(s: &Server, path: &str) -> u64 {
    let (status, list) = json(s.get(path));
    assert_eq!(status, 200, "{list}");
    list["totalResults"].as_u64().unwrap()
}

#[test]
fn what_one_host_creates_the_other_finds_and_counts_at_once() {
    let Some(schema) = TestDb::new("scale_out::finds_and_counts") else {
        return;
    };
    let (a, b) = two_hosts(&schema);
    let (status, alice) = json(a.send_json("POST", "/Users", &new_user("alice@example.com")));
    assert_eq!(status, 201, "{alice}");
    let (status, found) = json(b.get("/Users?filter=userName%20eq%20%22alice@example.com%22"));
    assert_eq!(status, 200);
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], alice["id"]);
    // The same userName through the other host is a uniqueness conflict, not a duplicate.
    let (status, _) = json(b.send_json("POST", "/Users", &new_user("alice@example.com")));
    assert_eq!(status, 409);
    for i in 0..5 {
        let (status, _) = json(b.send_json("POST", "/Users", &new_user(&format!("b{i}@x.io"))));
        assert_eq!(status, 201);
        assert_eq!(total(&a, "/Users?count=1"), 2 + i);
    }
    let (status, _) = json(
        a.req(
            "DELETE",
            &format!("/Users/{}", alice["id"].as_str().unwrap()),
        )
        .send()
        .unwrap(),
    );
    assert_eq!(status, 204);
    assert_eq!(total(&b, "/Users?count=1"), 5);
}

/// The ids of the users a listing through `s` answers, and its `totalResults`.
fn listed(s: &Server, start_index: usize, count: usize) -> (Vec<String>, u64) {
    let path = format!("/Users?startIndex={start_index}&count={count}&attributes=id");
    let (status, list) = json(s.get(&path));
    assert_eq!(status, 200, "{list}");
    let ids = list["Resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|u| u["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (ids, list["totalResults"].as_u64().unwrap())
}

/// Host A remembers `totalResults` and where its pages start (so a deep page does not walk
/// every user before it); creates and deletes through host B void what A remembers at once:
/// A's next count and pages are B's, whichever host is asked.
#[test]
fn counts_and_pages_on_one_host_follow_creates_and_deletes_on_the_other() {
    let Some(schema) = TestDb::new("scale_out::counts_and_pages_follow") else {
        return;
    };
    let (a, b) = two_hosts(&schema);
    // Users are listed in creation order (ids are time-ordered).
    let mut ids: Vec<String> = (0..12)
        .map(|i| {
            let (status, u) = json(a.send_json("POST", "/Users", &new_user(&format!("p{i}@x.io"))));
            assert_eq!(status, 201, "{u}");
            u["id"].as_str().unwrap().to_string()
        })
        .collect();
    let expect = |ids: &[String], start: usize, count: usize| -> (Vec<String>, u64) {
        let page = ids.iter().skip(start - 1).take(count).cloned().collect();
        (page, ids.len() as u64)
    };
    // A walks the list page by page, twice: the second walk is answered from what it
    // remembers.
    for _ in 0..2 {
        for start in [1, 4, 7, 10] {
            assert_eq!(listed(&a, start, 3), expect(&ids, start, 3));
        }
    }
    // B creates two users and deletes the second: A's total and every page after it move.
    for i in 0..2 {
        let (status, u) = json(b.send_json("POST", "/Users", &new_user(&format!("q{i}@x.io"))));
        assert_eq!(status, 201, "{u}");
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        listed(&a, 1, 1).1,
        14,
        "totalResults on A after creates on B"
    );
    let gone = ids.remove(1);
    let status = b
        .req("DELETE", &format!("/Users/{gone}"))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 204);
    for start in [1, 4, 7, 10, 13] {
        assert_eq!(
            listed(&a, start, 3),
            expect(&ids, start, 3),
            "A, startIndex={start}"
        );
        assert_eq!(
            listed(&b, start, 3),
            expect(&ids, start, 3),
            "B, startIndex={start}"
        );
    }
    // And the other way round: deletes on A, seen by B's remembered pages.
    for gone in [ids.remove(0), ids.remove(5)] {
        let status = a
            .req("DELETE", &format!("/Users/{gone}"))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }
    for start in [1, 4, 7, 10] {
        assert_eq!(
            listed(&b, start, 3),
            expect(&ids, start, 3),
            "B, startIndex={start}"
        );
    }
}

#[test]
fn a_membership_storm_across_two_hosts_loses_no_member() {
    let Some(schema) = TestDb::new("scale_out::membership_storm") else {
        return;
    };
    let (a, b) = two_hosts(&schema);
    const CLIENTS: usize = 16;
    const OPS: usize = 50;
    const USERS_EACH: usize = 4;
    let users: Vec<Vec<String>> = (0..CLIENTS)
        .map(|c| {
            (0..USERS_EACH)
                .map(|i| {
                    let s = if i % 2 == 0 { &a } else { &b };
                    let (status, u) =
                        json(s.send_json("POST", "/Users", &new_user(&format!("c{c}u{i}@x.io"))));
                    assert_eq!(status, 201, "{u}");
                    u["id"].as_str().unwrap().to_string()
                })
                .collect()
        })
        .collect();
    let (status, g) = json(a.send_json("POST", "/Groups", &json!({"displayName": "storm"})));
    assert_eq!(status, 201);
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let hosts = Arc::new([a, b]);
    let barrier = Arc::new(std::sync::Barrier::new(CLIENTS));
    // Each client owns its users, so its own ops decide their final membership.
    let handles: Vec<_> = users
        .into_iter()
        .map(|mine| {
            let (hosts, barrier, path) = (hosts.clone(), barrier.clone(), path.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                let mut member = vec![false; mine.len()];
                barrier.wait();
                for _ in 0..OPS {
                    let i = rng.random_range(0..mine.len());
                    let op = if member[i] {
                        json!({"op": "remove", "path": format!("members[value eq \"{}\"]", mine[i])})
                    } else {
                        json!({"op": "add", "path": "members", "value": [{"value": mine[i]}]})
                    };
                    let body = json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [op],
                    });
                    let s = &hosts[rng.random_range(0..2)];
                    let resp = s.send_json("PATCH", &path, &body);
                    let status = resp.status().as_u16();
                    assert!(status == 200 || status == 204, "{status}: {}", resp.text().unwrap());
                    member[i] = !member[i];
                }
                mine.into_iter()
                    .zip(member)
                    .filter_map(|(id, m)| m.then_some(id))
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    let mut want: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    want.sort();
    for s in hosts.iter() {
        let (status, g) = json(s.get(&path));
        assert_eq!(status, 200);
        let mut got: Vec<String> = g["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        got.sort();
        assert_eq!(got, want);
    }
}

#[test]
fn a_token_revoked_through_one_host_is_refused_by_both() {
    let Some(schema) = TestDb::new("scale_out::token_revoked") else {
        return;
    };
    let (a, b) = two_hosts(&schema);
    let admin = |s: &Server, method: &str, path: &str| {
        let req = a
            .raw()
            .request(method.parse().unwrap(), format!("{}{path}", admin_url(s)))
            .bearer_auth(ADMIN_TOKEN);
        admin_json(req.send().unwrap())
    };
    let (status, issued) = admin(&a, "POST", "/tenants/default/tokens");
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_string();
    assert_eq!(
        get_as(&b, &token, "/Users").0,
        200,
        "issued on a, valid on b"
    );
    let (status, _) = admin(
        &b,
        "DELETE",
        &format!("/tenants/default/tokens/{}", issued["id"].as_str().unwrap()),
    );
    assert_eq!(status, 204);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused = [false, false];
    while refused != [true, true] {
        assert!(
            Instant::now() < deadline,
            "still accepted after 5 s: {refused:?}"
        );
        for (i, s) in [&a, &b].into_iter().enumerate() {
            refused[i] = get_as(s, &token, "/Users").0 == 401;
        }
    }
    assert_eq!(
        get_as(&a, &a.token, "/Users").0,
        200,
        "other tokens still work"
    );
}

/// A TCP relay between a host and PostgreSQL that can be cut: every relayed connection is
/// closed and new ones are refused until it is restored. A database outage, as the host sees
/// it, without stopping the shared PostgreSQL.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect((PG_HOST, PG_PORT)) else {
                    continue;
                };
                o.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Relay { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_database_outage_is_a_503_and_the_host_recovers_by_itself() {
    let Some(schema) = TestDb::new("scale_out::outage") else {
        return;
    };
    let relay = Relay::start();
    let s = Arc::new(host(&schema.url_via(relay.port), None));
    // A write load across the outage; every acknowledged create must be there afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut acked, mut statuses) = (Vec::new(), Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let resp = s.send_json("POST", "/Users", &new_user(&format!("w{w}-{i}@x.io")));
                    let status = resp.status().as_u16();
                    if status == 503 {
                        assert!(
                            resp.headers().contains_key("retry-after"),
                            "503 without Retry-After"
                        );
                    }
                    if status == 201 {
                        let u: Value = resp.json().unwrap();
                        acked.push(u["id"].as_str().unwrap().to_string());
                    }
                    statuses.push(status);
                    i += 1;
                }
                (acked, statuses)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    relay.cut();
    let ready = s
        .raw()
        .get(s.url("").replace("/scim/v2", "/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let (status, _) = json(s.get("/Users?count=1"));
    assert_eq!(status, 503);
    relay.restore();
    // Recovery without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while json(s.get("/Users?count=1")).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not recovered 30 s after the database returned"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (mut acked, mut unavailable) = (Vec::new(), 0);
    for w in writers {
        let (ids, statuses) = w.join().unwrap();
        assert!(
            statuses.iter().all(|s| [201, 503].contains(s)),
            "only created or unavailable: {statuses:?}"
        );
        unavailable += statuses.iter().filter(|s| **s == 503).count();
        acked.extend(ids);
    }
    assert!(!acked.is_empty());
    assert!(
        unavailable > 0,
        "writes during the outage were answered 503"
    );
    for id in &acked {
        assert_eq!(
            json(s.get(&format!("/Users/{id}"))).0,
            200,
            "acknowledged {id} lost"
        );
    }
    let ready = s
        .raw()
        .get(s.url("").replace("/scim/v2", "/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[test]
fn migrate_and_the_cli_work_against_postgres() {
    let Some(schema) = TestDb::new("scale_out::migrate_and_cli") else {
        return;
    };
    let url = schema.url();
    let out = cli(&["migrate", "--database-url", &url]);
    assert_eq!(out.trim(), "PostgreSQL schema is at version 2");
    // Again: nothing to do, same answer.
    assert_eq!(cli(&["migrate", "--database-url", &url]), out);
    let out = cli(&[
        "tenant",
        "create",
        "acme",
        "--store",
        "postgres",
        "--database-url",
        &url,
    ]);
    assert!(out.contains("scimlet_"), "{out}");
    // Selected through the environment, as for serve.
    let listed = scimlet()
        .args(["tenant", "list"])
        .env("SCIMLET_STORE", "postgres")
        .env("SCIMLET_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("acme"));
    let missing = scimlet()
        .args(["tenant", "list", "--store", "postgres"])
        .env_remove("SCIMLET_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--database-url"));
    // A host started afterwards serves the tenant the CLI created.
    let s = host(&url, Some("unused"));
    let (status, _) = admin_json(
        s.raw()
            .get(format!("{}/tenants/acme", admin_url(&s)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
}
