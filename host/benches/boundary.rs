//! What the component boundary costs per request: the same guest code called through wasmtime
//! and linked natively. `wasm` is the production path (a warm instance of the tenant per
//! request); `fresh` instantiates the component for every request (Store + instantiate + call),
//! which is what a request pays when no warm instance is idle.
//!
//! Run: `cargo bench -p scimlet --bench boundary`; `SCIMLET_BENCH_ONLY=<text>` runs only the
//! scenarios whose name contains it, and `SCIMLET_BENCH_SIDE=wasm|fresh|native` only that side
//! (to profile one path, e.g. under `perf record`), `SCIMLET_BENCH_ITERS` sets the calls timed.

mod common;

use std::sync::Arc;

use common::{fresh_runtime, native, request, runtime, time, us, wasm};
use scimlet::store::memory::MemoryBackend;
use scimlet::store::Backend;
use serde_json::json;

/// Builds the i-th request of a scenario.
type MakeRequest<'a> = Box<dyn Fn(usize) -> scimlet::runtime::GuestRequest + 'a>;

fn main() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let rt = runtime();
    let (tenant, _) =
        scimlet::tenants::create(backend.as_ref(), &rt, "bench", "standard", None).unwrap();
    let fresh = fresh_runtime();
    let n: usize = std::env::var("SCIMLET_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    for i in 0..1000 {
        let body = json!({"userName": format!("seed{i}@example.com"), "name": {"givenName": "S", "familyName": "Eed"}});
        native(
            &backend,
            &tenant,
            request("POST", "/Users", "", Some(&body)),
        );
    }
    let user = native(
        &backend,
        &tenant,
        request(
            "POST",
            "/Users",
            "",
            Some(&json!({"userName": "target@example.com"})),
        ),
    );
    let id = serde_json::from_slice::<serde_json::Value>(&user.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>12} {:>13}",
        "scenario (median µs per request)",
        "wasm",
        "fresh",
        "native",
        "wasm/native",
        "fresh/native"
    );
    let scenarios: Vec<(&str, MakeRequest)> = vec![
        (
            "unknown path (404)",
            Box::new(|_| request("GET", "/Nothing", "", None)),
        ),
        (
            "GET /ServiceProviderConfig",
            Box::new(|_| request("GET", "/ServiceProviderConfig", "", None)),
        ),
        (
            "GET /Users/{id}",
            Box::new(|_| request("GET", &format!("/Users/{id}"), "", None)),
        ),
        (
            "GET /Users?filter=userName eq",
            Box::new(|i| {
                request(
                    "GET",
                    "/Users",
                    &format!("filter=userName%20eq%20%22seed{}@example.com%22", i % 1000),
                    None,
                )
            }),
        ),
        (
            "GET /Users?startIndex=500&count=100",
            Box::new(|_| request("GET", "/Users", "startIndex=500&count=100", None)),
        ),
    ];
    let only = std::env::var("SCIMLET_BENCH_ONLY").unwrap_or_default();
    let side = std::env::var("SCIMLET_BENCH_SIDE").unwrap_or_default();
    let runs = |s: &str| side.is_empty() || side == s;
    for (name, make) in scenarios.iter().filter(|(name, _)| name.contains(&only)) {
        let mut w50 = std::time::Duration::ZERO;
        let (mut f50, mut n50) = (w50, w50);
        if runs("wasm") {
            w50 = time(n, |i| {
                wasm(&rt, &backend, &tenant, make(i));
            })
            .0;
        }
        if runs("fresh") {
            f50 = time(n, |i| {
                wasm(&fresh, &backend, &tenant, make(i));
            })
            .0;
        }
        if runs("native") {
            n50 = time(n, |i| {
                native(&backend, &tenant, make(i));
            })
            .0;
        }
        row(name, us(w50), us(f50), us(n50));
    }
    if !"POST /Users (memory store)".contains(&only) || !side.is_empty() {
        return;
    }
    // Every request creates a user, so each side names its own.
    let post = |side: &str, i: usize| {
        let body = json!({"userName": format!("{side}{i}@example.com")});
        request("POST", "/Users", "", Some(&body))
    };
    let (w50, _) = time(n, |i| {
        wasm(&rt, &backend, &tenant, post("w", i));
    });
    let (f50, _) = time(n, |i| {
        wasm(&fresh, &backend, &tenant, post("f", i));
    });
    let (n50, _) = time(n, |i| {
        native(&backend, &tenant, post("n", i));
    });
    row("POST /Users (memory store)", us(w50), us(f50), us(n50));
}

fn row(name: &str, wasm: f64, fresh: f64, native: f64) {
    println!(
        "{name:<44} {wasm:>9.1} {fresh:>9.1} {native:>9.1} {:>12.2} {:>13.2}",
        wasm / native,
        fresh / native
    );
}
