//! The backend conformance suite and the multi-host properties, on a real PostgreSQL.

use std::sync::Arc;

use super::testdb::TestDb;
use super::*;
use crate::store::conformance;

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
    let (url, options) = (db.url.clone(), db.options());
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

/// One host's commits are seen by the other's next read: counts included (nothing cached).
#[test]
fn counts_and_pages_see_the_other_hosts_commits() {
    let Some(db) = TestDb::new("postgres::counts_see_other_hosts") else {
        return;
    };
    let (a, b) = (db.backend(), db.backend());
    let put = |k: &str| Write::Put(k.into(), Vec::new());
    a.commit("t", &[], &[put("r/1"), put("r/2")]).unwrap();
    assert_eq!(b.count("t", "r/", "r0").unwrap(), 2);
    let s1 = b.commit("t", &[], &[put("r/3")]).unwrap();
    assert_eq!(a.count("t", "r/", "r0").unwrap(), 3);
    let s2 = a.commit("t", &[], &[Write::Delete("r/1".into())]).unwrap();
    assert!(s2 > s1, "one counter per tenant across hosts");
    assert_eq!(b.count("t", "r/", "r0").unwrap(), 2);
    let page = Scan {
        start: "r/".into(),
        end: "r0".into(),
        skip: 1,
        limit: 5,
        descending: false,
        keys_only: true,
    };
    let got: Vec<String> = b
        .scan("t", &page)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(got, ["r/3"]);
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
