//! Shared pieces of the benchmarks: a runtime, request builders and a timer.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use scimlet::runtime::{GuestContext, GuestRequest, Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::{Backend, Tenant, TenantStore};

/// A response, its body complete (a streamed one collected).
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

pub const BASE: &str = "http://bench.local/scim/v2";

pub fn runtime() -> Runtime {
    runtime_with(Limits::default())
}

/// A runtime that instantiates the component afresh for every request.
pub fn fresh_runtime() -> Runtime {
    runtime_with(Limits {
        warm_instances: 0,
        ..Limits::default()
    })
}

fn runtime_with(limits: Limits) -> Runtime {
    let cache = std::env::temp_dir().join("scimlet-bench-cwasm");
    Runtime::new(EMBEDDED_COMPONENT, Some(&cache), limits).expect("load component")
}

pub fn request(
    method: &str,
    path: &str,
    query: &str,
    body: Option<&serde_json::Value>,
) -> GuestRequest {
    GuestRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: vec![("content-type".into(), "application/scim+json".into())],
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        ctx: GuestContext {
            base_url: BASE.into(),
            policy: String::new(),
        },
    }
}

/// Runs a request through the component.
pub fn wasm(
    rt: &Runtime,
    backend: &Arc<dyn Backend>,
    tenant: &Tenant,
    mut req: GuestRequest,
) -> Reply {
    req.ctx.policy = tenant.policy.to_string();
    let mut handled = rt.handle(backend.clone(), tenant, req).expect("guest ran");
    if let Some(rest) = handled.rest.as_mut() {
        while let Some(chunk) = rest.next_chunk().expect("streamed body") {
            handled.body.extend_from_slice(&chunk);
        }
    }
    Reply {
        status: handled.status,
        body: handled.body,
    }
}

/// Runs a request through the guest linked natively (a dev-dependency of the benches only:
/// the `native` column is what the component boundary is measured against).
pub fn native(backend: &Arc<dyn Backend>, tenant: &Tenant, req: GuestRequest) -> Reply {
    let store = TenantStore::new(backend.as_ref(), &tenant.id);
    let req = scimlet_guest::http::Request {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: req.body,
        base_url: req.ctx.base_url,
        policy: tenant.policy.to_string(),
    };
    let resp = scimlet_guest::http::handle(&store, &req);
    let status = resp.status;
    Reply {
        status,
        body: resp.body.collect().expect("streamed body"),
    }
}

/// Median and p99 of per-call times over `n` calls (after `n / 10` warm-up calls). Each call
/// gets its own index, warm-up included.
pub fn time(n: usize, mut call: impl FnMut(usize)) -> (Duration, Duration) {
    let warm_up = n / 10;
    for i in 0..warm_up {
        call(i);
    }
    let mut samples: Vec<Duration> = (warm_up..warm_up + n)
        .map(|i| {
            let t = Instant::now();
            call(i);
            t.elapsed()
        })
        .collect();
    samples.sort();
    (samples[n / 2], samples[(n * 99 / 100).min(n - 1)])
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
