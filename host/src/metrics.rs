//! Prometheus metrics of the host, served as OpenMetrics text at `GET /metrics`.
//!
//! One [`Metrics`] is shared (cheaply cloned) by the [`crate::Runtime`], which counts guest
//! invocations, store commits and faults, and the [`crate::ScimService`], which counts requests.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The SCIM resource a request addressed, as a metric label with a bounded set of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `/Users`.
    Users,
    /// `/Groups`.
    Groups,
    /// `/Schemas`.
    Schemas,
    /// `/ResourceTypes`.
    ResourceTypes,
    /// `/ServiceProviderConfig`.
    ServiceProviderConfig,
    /// Any other path (label `other`).
    Other,
}

impl Resource {
    /// Classifies a path relative to the SCIM base (`/Users/123` → `Users`). Endpoint names
    /// match in any case, as the component routes them (`/users` is `Users`).
    pub fn of_path(rel_path: &str) -> Resource {
        let first = rel_path.trim_start_matches('/').split('/').next();
        let first = first.unwrap_or_default();
        [
            Resource::Users,
            Resource::Groups,
            Resource::Schemas,
            Resource::ResourceTypes,
            Resource::ServiceProviderConfig,
        ]
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(first))
        .unwrap_or(Resource::Other)
    }

    /// The metric label value: the endpoint's name, or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Users => "Users",
            Resource::Groups => "Groups",
            Resource::Schemas => "Schemas",
            Resource::ResourceTypes => "ResourceTypes",
            Resource::ServiceProviderConfig => "ServiceProviderConfig",
            Resource::Other => "other",
        }
    }
}

/// The result of one store commit made by the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed.
    Ok,
    /// A check failed: nothing was written.
    Conflict,
    /// The store failed.
    Error,
}

/// Why a guest invocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The guest trapped.
    Trap,
    /// The guest ran out of CPU time.
    Timeout,
    /// The guest ran out of memory.
    OutOfMemory,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    resource: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResourceLabels {
    resource: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

type HistogramFamily = Family<ResourceLabels, Histogram, fn() -> Histogram>;

/// Every metric of the host, registered in a registry of its own.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    instances_in_use: Gauge,
    instance_capacity: Gauge,
    commits: Family<OutcomeLabels, Counter>,
    faults: Family<KindLabels, Counter>,
    connections_open: Gauge,
    connections_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// 1 ms to about 16 s: SCIM calls are fast, and the guest deadline caps the slow end.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let instances_in_use = Gauge::default();
        let instance_capacity = Gauge::default();
        let commits = Family::<OutcomeLabels, Counter>::default();
        let faults = Family::<KindLabels, Counter>::default();
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "scimlet_requests",
            "SCIM requests served, by resource and HTTP status",
            requests.clone(),
        );
        registry.register(
            "scimlet_request_duration_seconds",
            "Time to serve a SCIM request, by resource",
            durations.clone(),
        );
        registry.register(
            "scimlet_instances_in_use",
            "Guest invocations running now",
            instances_in_use.clone(),
        );
        registry.register(
            "scimlet_instance_capacity",
            "Requests that may be served at once",
            instance_capacity.clone(),
        );
        registry.register(
            "scimlet_store_commits",
            "Store commits made by the guest, by outcome",
            commits.clone(),
        );
        registry.register(
            "scimlet_guest_faults",
            "Guest invocations that trapped, ran out of time or ran out of memory",
            faults.clone(),
        );
        registry.register(
            "scimlet_connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        registry.register(
            "scimlet_connections_refused",
            "Connections closed at once because max-connections were open",
            connections_refused.clone(),
        );
        // Every outcome and fault kind is exposed from the start, at zero, so that rates and
        // alerts over them work before the first occurrence.
        for outcome in ["ok", "conflict", "error"] {
            let _ = commits.get_or_create(&OutcomeLabels { outcome });
        }
        for kind in ["trap", "timeout", "oom"] {
            let _ = faults.get_or_create(&KindLabels { kind });
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                durations,
                instances_in_use,
                instance_capacity,
                commits,
                faults,
                connections_open,
                connections_refused,
            }),
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Counts a served SCIM request and records how long it took.
    pub fn observe_request(&self, resource: Resource, status: u16, elapsed: Duration) {
        let resource = resource.as_str();
        self.inner
            .requests
            .get_or_create(&RequestLabels { resource, status })
            .inc();
        self.inner
            .durations
            .get_or_create(&ResourceLabels { resource })
            .observe(elapsed.as_secs_f64());
    }

    /// Sets how many requests may be served at once.
    pub fn set_instance_capacity(&self, capacity: usize) {
        self.inner
            .instance_capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    /// Counts a guest invocation as running until the returned guard is dropped.
    pub fn instance_in_use(&self) -> GaugeGuard {
        GaugeGuard::new(&self.inner.instances_in_use)
    }

    /// Counts a store commit made by the guest.
    pub fn store_commit(&self, outcome: CommitOutcome) {
        let outcome = match outcome {
            CommitOutcome::Ok => "ok",
            CommitOutcome::Conflict => "conflict",
            CommitOutcome::Error => "error",
        };
        self.inner
            .commits
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a failed guest invocation.
    pub fn guest_fault(&self, kind: FaultKind) {
        let kind = match kind {
            FaultKind::Trap => "trap",
            FaultKind::Timeout => "timeout",
            FaultKind::OutOfMemory => "oom",
        };
        self.inner.faults.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection_open(&self) -> GaugeGuard {
        GaugeGuard::new(&self.inner.connections_open)
    }

    /// Counts a connection closed at once because max-connections were open.
    pub fn connection_refused(&self) {
        self.inner.connections_refused.inc();
    }
}

/// Holds one unit of a gauge (an invocation in use, an open connection) and gives it back
/// when dropped, also when the guest traps or the connection fails.
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn new(gauge: &Gauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_a_bounded_set_of_resources() {
        assert_eq!(Resource::of_path("/Users/42"), Resource::Users);
        assert_eq!(Resource::of_path("/Groups"), Resource::Groups);
        assert_eq!(
            Resource::of_path("/Schemas/urn:x").as_str(),
            Resource::Schemas.as_str()
        );
        assert_eq!(Resource::of_path("/"), Resource::Other);
        assert_eq!(
            Resource::of_path("/users"),
            Resource::Users,
            "as the component routes"
        );
        assert_eq!(Resource::of_path("/Usersx"), Resource::Other);
    }

    #[test]
    fn the_exposition_names_every_documented_metric() {
        let m = Metrics::new();
        m.observe_request(Resource::Users, 201, Duration::from_millis(3));
        m.set_instance_capacity(4);
        let guard = m.instance_in_use();
        m.store_commit(CommitOutcome::Conflict);
        m.guest_fault(FaultKind::OutOfMemory);
        let text = m.encode();
        for needle in [
            "scimlet_requests_total{resource=\"Users\",status=\"201\"} 1",
            "scimlet_request_duration_seconds_bucket{le=\"0.004\",resource=\"Users\"} 1",
            "scimlet_instances_in_use 1",
            "scimlet_instance_capacity 4",
            "scimlet_store_commits_total{outcome=\"conflict\"} 1",
            "scimlet_guest_faults_total{kind=\"oom\"} 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        drop(guard);
        let text = m.encode();
        assert!(text.contains("scimlet_instances_in_use 0"));
        assert!(text.contains("scimlet_guest_faults_total{kind=\"trap\"} 0"));
    }
}
