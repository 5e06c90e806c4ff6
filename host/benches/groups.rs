//! Membership cost against group size: adding one member to a 100 000-member group versus an
//! empty one, and reading the group without members, through the component on SQLite with
//! durable commits.
//!
//! Run: `cargo bench -p scimlet --bench groups` (SCIMLET_BENCH_MEMBERS overrides 100 000).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{native, request, runtime, time, us, wasm};
use scimlet::store::sqlite::{SqliteBackend, SqliteOptions};
use scimlet::store::Backend;
use serde_json::{json, Value};

fn id_of(resp: &common::Reply) -> String {
    assert!(
        resp.status < 300,
        "{} {}",
        resp.status,
        String::from_utf8_lossy(&resp.body)
    );
    serde_json::from_slice::<Value>(&resp.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn main() {
    let size: usize = std::env::var("SCIMLET_BENCH_MEMBERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let started = Instant::now();
    let rt = runtime();
    {
        // Preload without fsync per commit; the measured phase below reopens with durable commits.
        let fast = SqliteOptions {
            synchronous_full: false,
            ..SqliteOptions::default()
        };
        let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open_with(&db, fast).unwrap());
        let (tenant, _) =
            scimlet::tenants::create(backend.as_ref(), &rt, "bench", "standard", None).unwrap();
        let big = id_of(&native(
            &backend,
            &tenant,
            request("POST", "/Groups", "", Some(&json!({"displayName": "Big"}))),
        ));
        native(
            &backend,
            &tenant,
            request(
                "POST",
                "/Groups",
                "",
                Some(&json!({"displayName": "Small"})),
            ),
        );
        let mut batch = Vec::new();
        for i in 0..size {
            let body = json!({"userName": format!("member{i}@example.com")});
            batch.push(json!({"value": id_of(&native(&backend, &tenant, request("POST", "/Users", "", Some(&body))))}));
            if batch.len() == 1000 || i + 1 == size {
                let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": batch}]});
                let resp = native(
                    &backend,
                    &tenant,
                    request("PATCH", &format!("/Groups/{big}"), "", Some(&ops)),
                );
                assert_eq!(resp.status, 200);
                batch = Vec::new();
            }
        }
    }
    println!(
        "preloaded {size} users into one group in {:.1?} (native, synchronous=NORMAL)",
        started.elapsed()
    );

    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&db).unwrap());
    let tenant = backend.tenant("bench").unwrap().unwrap();
    let find = |name: &str| {
        let resp = wasm(
            &rt,
            &backend,
            &tenant,
            request(
                "GET",
                "/Groups",
                &format!("filter=displayName%20eq%20%22{name}%22"),
                None,
            ),
        );
        serde_json::from_slice::<Value>(&resp.body).unwrap()["Resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (big, small) = (find("Big"), find("Small"));
    let n = 400;
    let extra: Vec<String> = (0..2 * (n + n / 10))
        .map(|i| {
            id_of(&wasm(
                &rt,
                &backend,
                &tenant,
                request(
                    "POST",
                    "/Users",
                    "",
                    Some(&json!({"userName": format!("extra{i}@example.com")})),
                ),
            ))
        })
        .collect();
    let add = |group: &str, user: &str| {
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]});
        let resp = wasm(
            &rt,
            &backend,
            &tenant,
            request(
                "PATCH",
                &format!("/Groups/{group}"),
                "excludedAttributes=members",
                Some(&ops),
            ),
        );
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    };
    // Every call adds a user that is not a member yet, so every call commits.
    let mut fresh = extra.iter();
    let (big50, big99) = time(n, |_| add(&big, fresh.next().unwrap()));
    let (small50, small99) = time(n, |_| add(&small, fresh.next().unwrap()));
    let get = |group: &str| {
        let resp = wasm(
            &rt,
            &backend,
            &tenant,
            request(
                "GET",
                &format!("/Groups/{group}"),
                "excludedAttributes=members",
                None,
            ),
        );
        assert_eq!(resp.status, 200);
    };
    let (gbig50, gbig99) = time(2000, |_| get(&big));
    let (gsmall50, gsmall99) = time(2000, |_| get(&small));
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "scenario (µs per request, component, SQLite FULL)",
        "big p50",
        "big p99",
        "small p50",
        "small p99",
        "ratio"
    );
    println!(
        "{:<52} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>7.2}",
        "PATCH add 1 member",
        us(big50),
        us(big99),
        us(small50),
        us(small99),
        us(big50) / us(small50)
    );
    println!(
        "{:<52} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>7.2}",
        "GET /Groups/{id}?excludedAttributes=members",
        us(gbig50),
        us(gbig99),
        us(gsmall50),
        us(gsmall99),
        us(gbig50) / us(gsmall50)
    );
}
