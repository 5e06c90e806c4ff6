//! The backend conformance suite and the multi-host properties, on a real PostgreSQL.

use std::sync::Arc;

use super::testdb::TestDb;
use super::*;
use crate::store::conformance;

impl TestDb {
    /// Options that put the backend's tables in this schema.
    fn options(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.schema.clone()),
            ..PgOptions::default()
        }
    }

    /// A backend (one "host") on this schema.
    fn backend(&self) -> PostgresBackend {
        PostgresBackend::open(&self.url(), self.options()).expect("open the test backend")
    }
}

#[test]
fn conforms() {
    let Some(db) = TestDb::new("postgres::conforms") else {
        return;
    };
    conformance::run_all(&db.backend());
}

#[test]
fn concurrent_increments_lose_nothing() {
    let Some(db) = TestDb::new("postgres::concurrent_increments") else {
        return;
    };
    conformance::concurrent_increments(Arc::new(db.backend()));
}

/// Two hosts on one database, each with its own pool, incrementing one counter: the
/// per-tenant row lock serialises them, so no increment is lost.
#[test]
fn two_hosts_lose_no_increment() {
    let Some(db) = TestDb::new("postgres::two_hosts_lose_no_increment") else {
        return;
    };
    let (a, b) = (db.backend(), db.backend());
    std::thread::scope(|s| {
        for host in [&a, &b, &a, &b] {
            s.spawn(move || {
                for _ in 0..50 {
                    increment(host);
                }
            });
        }
    });
    let e = b.get("t", "n").unwrap().unwrap();
    assert_eq!(e.value, b"200");
    assert_eq!(a.count("t", "n", "o").unwrap(), 1);
}

fn increment(b: &PostgresBackend) {
    loop {
        let cur = b.get("t", "n").unwrap();
        let (n, version) = match &cur {
            Some(e) => (
                std::str::from_utf8(&e.value)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
                Some(e.version),
            ),
            None => (0, None),
        };
        let check = Check {
            key: "n".into(),
            version,
        };
        let put = Write::Put("n".into(), (n + 1).to_string().into_bytes());
        match b.commit("t", &[check], &[put]) {
            Ok(_) => return,
            Err(StoreError::Conflict) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Many writers creating the same absent key at once (a userName index entry): exactly one
/// wins, on any interleaving; under READ COMMITTED a naive check would let several pass.
#[test]
fn only_one_of_racing_creates_wins() {
    let Some(db) = TestDb::new("postgres::only_one_of_racing_creates_wins") else {
        return;
    };
    let hosts = [db.backend(), db.backend()];
    for round in 0..20 {
        let key = format!("u/name/{round}");
        let won: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (host, key) = (&hosts[i % 2], key.clone());
                    s.spawn(move || {
                        let absent = Check {
                            key: key.clone(),
                            version: None,
                        };
                        match host.commit("t", &[absent], &[Write::Put(key, vec![i as u8])]) {
                            Ok(_) => 1,
                            Err(StoreError::Conflict) => 0,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(won, 1, "round {round}");
    }
}

/// Hosts starting together on an empty database all come up (no advisory lock), and see one
/// schema.
#[test]
fn hosts_starting_at_once_share_one_schema() {
    let Some(db) = TestDb::new("postgres::hosts_starting_at_once") else {
        return;
    };
    let (url, options) = (db.url(), db.options());
    let opened: Vec<Result<PostgresBackend, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| PostgresBackend::open(&url, options.clone())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let hosts: Vec<PostgresBackend> = opened.into_iter().map(Result::unwrap).collect();
    let t = hosts[0]
        .create_tenant("acme", serde_json::json!({}))
        .unwrap();
    assert_eq!(hosts[5].tenant("acme").unwrap(), Some(t));
}

/// Keys are bytes in bytewise order: NUL sorts first, UTF-8 after ASCII, whatever the
/// database's collation.
#[test]
fn keys_hold_nul_and_sort_bytewise() {
    let Some(db) = TestDb::new("postgres::keys_sort_bytewise") else {
        return;
    };
    let b = db.backend();
    let keys = ["k/a", "k/a\u{0}b", "k/B", "k/é", "k/z", "k/\u{0}"];
    let writes: Vec<Write> = keys
        .iter()
        .map(|k| Write::Put((*k).into(), k.as_bytes().to_vec()))
        .collect();
    b.commit("t", &[], &writes).unwrap();
    let mut want: Vec<&str> = keys.to_vec();
    want.sort_unstable();
    assert_eq!(
        want[..3],
        ["k/\u{0}", "k/B", "k/a"],
        "Rust orders str bytewise"
    );
    let scan = Scan {
        start: "k/".into(),
        end: "k0".into(),
        skip: 0,
        limit: 100,
        descending: false,
        keys_only: false,
    };
    let got: Vec<String> = b
        .scan("t", &scan)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(got, want);
    // Continuing after a key: bound `key + "\0"`.
    let after = Scan {
        start: "k/a\u{0}".into(),
        ..scan
    };
    let got: Vec<String> = b
        .scan("t", &after)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(got, want[3..], "the keys after k/a");
}

fn page(start: &str, end: &str, skip: u64, limit: u32, descending: bool) -> Scan {
    Scan {
        start: start.into(),
        end: end.into(),
        skip,
        limit,
        descending,
        keys_only: true,
    }
}

fn keys_of(entries: Vec<Entry>) -> Vec<String> {
    entries.into_iter().map(|e| e.key).collect()
}

/// Counts and deep pages are remembered, and one host's commits void what the other
/// remembers at once: creates and deletes on B show in A's next count and page.
#[test]
fn remembered_counts_and_pages_see_the_other_hosts_commits() {
    let Some(mut db) = TestDb::new("postgres::counts_see_other_hosts") else {
        return;
    };
    let (a, b) = (db.backend(), db.backend());
    let put = |k: &str| Write::Put(k.into(), Vec::new());
    let users: Vec<Write> = (10..40).map(|i| put(&format!("r/User/{i}"))).collect();
    a.commit("t", &[], &users).unwrap();
    assert_eq!(a.count("t", "r/User/", "r/User0").unwrap(), 30);
    let deep = page("r/User/", "r/User0", 20, 3, false);
    assert_eq!(
        keys_of(a.scan("t", &deep).unwrap()),
        ["r/User/30", "r/User/31", "r/User/32"]
    );
    // Rows written behind the backends' backs (no stamp raised): A answers from what it
    // remembers, so the memos are really used.
    db.sql("INSERT INTO scimlet_kv(tenant, key, value, version) VALUES ('t', 'r/User/00', '', 1)");
    assert_eq!(
        a.count("t", "r/User/", "r/User0").unwrap(),
        30,
        "remembered"
    );
    let deeper = page("r/User/", "r/User0", 23, 2, false);
    assert_eq!(
        keys_of(a.scan("t", &deeper).unwrap()),
        ["r/User/33", "r/User/34"],
        "from the anchor"
    );
    db.sql("DELETE FROM scimlet_kv WHERE key = 'r/User/00'");
    // B creates: A's count and pages move.
    let s1 = b.commit("t", &[], &[put("r/User/05")]).unwrap();
    assert_eq!(a.count("t", "r/User/", "r/User0").unwrap(), 31);
    assert_eq!(
        keys_of(a.scan("t", &deep).unwrap()),
        ["r/User/29", "r/User/30", "r/User/31"]
    );
    // B deletes: again.
    let s2 = b
        .commit(
            "t",
            &[],
            &[
                Write::Delete("r/User/10".into()),
                Write::Delete("r/User/11".into()),
            ],
        )
        .unwrap();
    assert!(s2 > s1);
    assert_eq!(a.count("t", "r/User/", "r/User0").unwrap(), 29);
    assert_eq!(
        keys_of(a.scan("t", &deep).unwrap()),
        ["r/User/31", "r/User/32", "r/User/33"]
    );
    let desc = page("r/User/", "r/User0", 2, 2, true);
    assert_eq!(
        keys_of(a.scan("t", &desc).unwrap()),
        ["r/User/37", "r/User/36"]
    );
    b.commit("t", &[], &[Write::Delete("r/User/39".into())])
        .unwrap();
    assert_eq!(
        keys_of(a.scan("t", &desc).unwrap()),
        ["r/User/36", "r/User/35"]
    );
    assert_eq!(a.count("t", "r/User/", "r/User0").unwrap(), 28);
    // Updates in place (checked to exist) move nothing and keep the memos; writes to another
    // class or tenant keep them too.
    let e = b.get("t", "r/User/20").unwrap().unwrap();
    let at = Check {
        key: e.key.clone(),
        version: Some(e.version),
    };
    b.commit("t", &[at], &[Write::Put(e.key, b"v".to_vec())])
        .unwrap();
    b.commit("t", &[], &[put("m/g/u")]).unwrap();
    b.commit("u", &[], &[put("r/User/x")]).unwrap();
    db.sql("INSERT INTO scimlet_kv(tenant, key, value, version) VALUES ('t', 'r/User/00', '', 1)");
    assert_eq!(
        a.count("t", "r/User/", "r/User0").unwrap(),
        28,
        "still remembered"
    );
}

/// Random creates, deletes and updates through two hosts: every count and page either host
/// answers, remembered or not, is what a plain walk of the keys gives.
#[test]
fn remembered_counts_and_pages_never_change_an_answer() {
    use rand::{Rng, SeedableRng};
    let Some(db) = TestDb::new("postgres::remembered_never_change_an_answer") else {
        return;
    };
    let hosts = [db.backend(), db.backend()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = std::collections::BTreeSet::new();
    for step in 0..300 {
        let host = &hosts[rng.random_range(0..2)];
        let key = format!("r/User/{:02}", rng.random_range(0..60));
        match rng.random_range(0..5) {
            0 | 1 => {
                host.commit("t", &[], &[Write::Put(key.clone(), vec![])])
                    .unwrap();
                model.insert(key);
            }
            2 => {
                host.commit("t", &[], &[Write::Delete(key.clone())])
                    .unwrap();
                model.remove(&key);
            }
            3 => {
                let n = host.count("t", "r/User/", "r/User0").unwrap();
                assert_eq!(n, model.len() as u64, "step {step}");
            }
            _ => {
                let (skip, limit) = (rng.random_range(1..40), rng.random_range(1..8));
                let descending = rng.random_bool(0.5);
                let got = keys_of(
                    host.scan("t", &page("r/User/", "r/User0", skip, limit, descending))
                        .unwrap(),
                );
                let want: Vec<String> = if descending {
                    model
                        .iter()
                        .rev()
                        .skip(skip as usize)
                        .take(limit as usize)
                        .cloned()
                        .collect()
                } else {
                    model
                        .iter()
                        .skip(skip as usize)
                        .take(limit as usize)
                        .cloned()
                        .collect()
                };
                assert_eq!(
                    got, want,
                    "step {step}: skip {skip} limit {limit} desc {descending}"
                );
            }
        }
    }
}

/// An unreachable database is `Unavailable` (a 503 to clients), not a panic or a hang.
#[test]
fn an_unreachable_database_is_unavailable() {
    let options = PgOptions {
        connect_timeout: Duration::from_millis(500),
        ..PgOptions::default()
    };
    // Port 1 on localhost refuses connections.
    let opened = PostgresBackend::open("postgres://postgres@127.0.0.1:1/test", options);
    assert!(matches!(opened, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        PostgresBackend::open("postgres://[::1", PgOptions::default()),
        Err(StoreError::Invalid(_))
    ));
}

/// The webhook store's conformance suite on PostgreSQL.
#[test]
fn webhooks_conform() {
    let Some(db) = TestDb::new("postgres::webhooks_conform") else {
        return;
    };
    let backend = db.backend();
    let store = backend.webhooks().expect("PostgreSQL keeps webhooks");
    crate::store::webhooks::conformance::run_all(store);
}

/// Hosts racing to claim one endpoint, round after round: exactly one holds it each time, and
/// a holder fenced out by a replay moves nothing.
#[test]
fn exactly_one_of_racing_hosts_claims_an_endpoint() {
    use crate::store::webhooks::{Lease, Webhook};
    let Some(db) = TestDb::new("postgres::one_claim_wins") else {
        return;
    };
    let hosts = [db.backend(), db.backend(), db.backend()];
    let store = |i: usize| hosts[i].webhooks().unwrap();
    let hook = Webhook::new(
        "t".into(),
        "wh_1".into(),
        "http://x".into(),
        vec![],
        vec![0],
        0,
        None,
    );
    store(0).add_webhook(&hook).unwrap();
    let ttl = Duration::from_secs(30);
    for round in 0..20u32 {
        let won: Vec<Webhook> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let host = &hosts[i % 3];
                    s.spawn(move || {
                        host.webhooks()
                            .unwrap()
                            .claim_webhook("t", "wh_1", &format!("host-{i}"), ttl)
                            .unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(won.len(), 1, "round {round}");
        let w = &won[0];
        let lease = Lease {
            tenant: "t".into(),
            id: "wh_1".into(),
            owner: w.lease_owner.clone().unwrap(),
            epoch: w.lease_epoch,
        };
        let c = Cursor {
            seq: u64::from(round) + 1,
            index: 0,
        };
        assert!(store(1).advance_webhook(&lease, Some(c), ttl).unwrap());
        assert!(store(2).release_webhook(&lease).unwrap());
        assert!(
            !store(0).advance_webhook(&lease, None, ttl).unwrap(),
            "released: fenced"
        );
        assert_eq!(
            store(0).webhook("t", "wh_1").unwrap().unwrap().cursor,
            Some(c)
        );
    }
}
