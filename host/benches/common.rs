//! Shared pieces of the benchmarks: a runtime, request builders and a timer.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use scimlet::runtime::{
    GuestContext, GuestRequest, GuestResponse, Limits, Runtime, EMBEDDED_COMPONENT,
};
use scimlet::store::{Backend, Tenant};

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
) -> GuestResponse {
    req.ctx.policy = tenant.policy.to_string();
    rt.handle(backend.clone(), tenant, req).expect("guest ran")
}

/// Runs a request through the natively linked guest.
pub fn native(backend: &Arc<dyn Backend>, tenant: &Tenant, req: GuestRequest) -> GuestResponse {
    scimlet::native::handle(backend.as_ref(), tenant, req)
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
