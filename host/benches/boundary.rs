//! What the component boundary costs per request: the same guest code called through wasmtime
//! (fresh instance per request: Store + instantiate + call) and linked natively.
//!
//! Run: `cargo bench -p scimlet --bench boundary`

mod common;

use std::sync::Arc;

use common::{native, request, runtime, time, us, wasm};
use scimlet::store::memory::MemoryBackend;
use scimlet::store::Backend;
use serde_json::json;

/// Builds the i-th request of a scenario.
type MakeRequest<'a> = Box<dyn Fn(usize) -> scimlet::runtime::GuestRequest + 'a>;

fn main() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let (tenant, _) =
        scimlet::tenants::create(backend.as_ref(), "bench", "standard", None).unwrap();
    let rt = runtime();
    let n = 5000;
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
        "{:<44} {:>12} {:>12} {:>8}",
        "scenario (median µs per request)", "wasm", "native", "ratio"
    );
    let scenarios: Vec<(&str, MakeRequest)> = vec![
        (
            "unknown path (instantiate + call, 404)",
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
    for (name, make) in &scenarios {
        let (w50, _) = time(n, |i| {
            wasm(&rt, &backend, &tenant, make(i));
        });
        let (n50, _) = time(n, |i| {
            native(&backend, &tenant, make(i));
        });
        println!(
            "{name:<44} {:>12.1} {:>12.1} {:>8.2}",
            us(w50),
            us(n50),
            us(w50) / us(n50)
        );
    }
    let mut k = 0;
    let (w50, _) = time(n, |_| {
        k += 1;
        wasm(
            &rt,
            &backend,
            &tenant,
            request(
                "POST",
                "/Users",
                "",
                Some(&json!({"userName": format!("w{k}@example.com")})),
            ),
        );
    });
    let (n50, _) = time(n, |_| {
        k += 1;
        native(
            &backend,
            &tenant,
            request(
                "POST",
                "/Users",
                "",
                Some(&json!({"userName": format!("n{k}@example.com")})),
            ),
        );
    });
    println!(
        "{:<44} {:>12.1} {:>12.1} {:>8.2}",
        "POST /Users (memory store)",
        us(w50),
        us(n50),
        us(w50) / us(n50)
    );
}
