//! The wasmtime embedding: one shared [`Engine`], the component pre-instantiated once, and a
//! bounded wasmtime store per instance, kept warm for its tenant between calls ([`pool`]).
//! Every SCIM rule the host needs — serving a request ([`Runtime::handle`]), the operator
//! calls of the CLI and admin API ([`operator`]), the text of its own error responses
//! ([`Runtime::error_page`]) — is a call into the loaded component: the host links no SCIM
//! code of its own, so `--component` changes all of it.
//!
//! [`Engine`]: wasmtime::Engine

mod engine;
pub mod operator;
mod pages;
mod pool;
mod state;
mod stream;
mod turns;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use crate::metrics::{FaultKind, Metrics};
use crate::store::{Backend, Tenant};
use engine::{classify, thread_cpu_time, wt};
pub use engine::{PACKAGE, VERSION};
pub use pages::{ErrorPage, HostFailure};
use pool::{Warm, WarmPool};
use state::{HostCalls, MemoryLimiter, State};
pub use stream::{BodyStream, StreamFailure};
pub use turns::Turns;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "scim-plugin",
    });
}

pub use bindings::exports::scimlet::scim::handler::Request as GuestRequest;
pub use bindings::scimlet::scim::types::Context as GuestContext;
use bindings::{ScimPlugin, ScimPluginPre};

/// The production guest component, built by `build.rs` and embedded in the binary.
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scimlet.wasm"));

/// Bounds for each guest invocation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a guest instance may grow to.
    pub memory_bytes: usize,
    /// Linear memory for a request on a large-body route (`PUT /Groups/{id}` with every member:
    /// replacing 100 000 members builds about 60 MiB of edge writes in the guest).
    pub large_memory_bytes: usize,
    /// CPU time one request may use in the component before it is interrupted: the CPU time
    /// of the thread running the call (its host calls included), checked at every epoch tick.
    /// Time the call spends blocked — waiting for a commit's fsync, for a lock, or descheduled
    /// on a busy machine — does not count, so the budget does not shrink under load
    /// (`request-timeout-ms` bounds the wait instead).
    pub cpu_deadline: Duration,
    /// Component instances alive at once in the pooling allocator.
    pub max_instances: u32,
    /// Instances kept warm between requests (0: a fresh instance for every request). Each is
    /// bound to one tenant and holds its linear memory, at most `warm_memory_bytes`.
    pub warm_instances: usize,
    /// An instance whose linear memory grew beyond this is not kept warm.
    pub warm_memory_bytes: usize,
    /// Requests one instance serves before it is replaced by a fresh one.
    pub warm_max_uses: u32,
}

impl Limits {
    /// Limits for the CLI's offline commands (`import`, `export`, `check`, `team`): one caller,
    /// whole-tenant work in few calls, so a large memory and CPU budget and few instances.
    pub fn offline() -> Limits {
        Limits {
            memory_bytes: 1 << 30,
            large_memory_bytes: 1 << 30,
            cpu_deadline: Duration::from_secs(3600),
            // An import plans up to four batches at once (crate::import).
            max_instances: 8,
            warm_instances: 4,
            warm_memory_bytes: 1 << 30,
            warm_max_uses: 10_000,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            large_memory_bytes: 256 << 20,
            cpu_deadline: Duration::from_secs(5),
            max_instances: 128,
            warm_instances: 32,
            warm_memory_bytes: 8 << 20,
            warm_max_uses: 10_000,
        }
    }
}

/// Why a guest invocation failed (the request gets a SCIM 5xx; the process keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum GuestFault {
    /// The call used up its CPU time budget.
    #[error("the request exceeded its CPU time budget")]
    Timeout,
    /// The call used up its memory budget.
    #[error("the request exceeded its memory budget")]
    OutOfMemory,
    /// The component trapped (a panic, an invalid operation): why.
    #[error("the SCIM component failed: {0}")]
    Trap(String),
    /// No instance of the component could be made: why.
    #[error("the SCIM component could not be instantiated: {0}")]
    Instantiate(String),
}

impl GuestFault {
    /// The failure the component renders the client's error response for.
    pub fn failure(&self) -> HostFailure {
        match self {
            GuestFault::Timeout => HostFailure::ComponentTimeout,
            GuestFault::OutOfMemory => HostFailure::ComponentOutOfMemory,
            GuestFault::Trap(_) | GuestFault::Instantiate(_) => HostFailure::ComponentFailed,
        }
    }

    /// The `kind` label of `scimlet_guest_faults_total`.
    pub fn kind(&self) -> FaultKind {
        match self {
            GuestFault::Timeout => FaultKind::Timeout,
            GuestFault::OutOfMemory => FaultKind::OutOfMemory,
            GuestFault::Trap(_) | GuestFault::Instantiate(_) => FaultKind::Trap,
        }
    }
}

/// A loaded SCIM component, ready to serve calls from many threads.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    pre: ScimPluginPre<State>,
    limits: Limits,
    metrics: Metrics,
    warm: Arc<WarmPool>,
    pages: Arc<pages::Pages>,
    /// (method, endpoint) of the routes that take large bodies, as the component declared.
    large_body_routes: Arc<Vec<(String, String)>>,
}

/// A response of the component's `handler`.
pub struct Handled {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body, or its first part when `rest` is set.
    pub body: Vec<u8>,
    /// The rest of the body, to be pulled chunk by chunk (it holds the instance meanwhile).
    pub rest: Option<BodyStream>,
    /// The provisioning record of a write, for the audit log; never for the client.
    pub audit: Option<String>,
}

impl std::fmt::Debug for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handled")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("streamed", &self.rest.is_some())
            .field("audit", &self.audit)
            .finish()
    }
}

/// Which tenant's storage an instance is bound to.
#[derive(Clone, Copy)]
enum Binding<'a> {
    Tenant(&'a Arc<dyn Backend>, &'a Tenant),
    /// Calls that need no storage (error pages, policy checks).
    None,
}

impl Binding<'_> {
    fn tenant_id(&self) -> &str {
        match self {
            Binding::Tenant(_, t) => &t.id,
            Binding::None => "",
        }
    }
}

impl Runtime {
    /// Loads a component (`.wasm`, compiled and cached as `.cwasm` in `cache_dir`), refusing one
    /// built against another version of the contract, and asks it for its error pages and
    /// large-body routes.
    pub fn new(wasm: &[u8], cache_dir: Option<&Path>, limits: Limits) -> anyhow::Result<Runtime> {
        let engine = engine::new_engine(&limits)?;
        let component = engine::load_component(&engine, wasm, cache_dir)?;
        engine::check_contract(&engine, &component)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wt)?;
        ScimPlugin::add_to_linker::<State, HostCalls>(&mut linker, State::view).map_err(wt)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(wt)
            .context("link the SCIM component")?;
        let pre = ScimPluginPre::new(instance_pre).map_err(wt)?;
        engine::spawn_epoch_ticker(&engine);
        // Leave most pooling slots to concurrent requests.
        let warm_capacity = limits.warm_instances.min(limits.max_instances as usize / 2);
        let mut runtime = Runtime {
            engine,
            pre,
            limits,
            metrics: Metrics::new(),
            warm: Arc::new(WarmPool::new(warm_capacity)),
            pages: Arc::new(pages::Pages::default()),
            large_body_routes: Arc::new(Vec::new()),
        };
        runtime.pages = Arc::new(pages::Pages::render(&runtime).context("render error pages")?);
        let routes = runtime
            .tenantless(|w| {
                w.plugin
                    .scimlet_scim_handler()
                    .call_large_body_routes(&mut w.store)
            })
            .context("ask the component for its large-body routes")?;
        runtime.large_body_routes =
            Arc::new(routes.into_iter().map(|r| (r.method, r.endpoint)).collect());
        Ok(runtime)
    }

    /// Counts this runtime's invocations, commits and faults in `metrics` (a runtime starts
    /// with metrics of its own, which nothing reads).
    pub fn with_metrics(mut self, metrics: Metrics) -> Runtime {
        self.metrics = metrics;
        self
    }

    /// The metrics this runtime counts in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether a request takes the large-body limit: its method and path match a route the
    /// component declared (`large-body-routes`: the method, then exactly two path segments,
    /// the first the endpoint ignoring ASCII case).
    pub fn takes_large_body(&self, method: &str, rel_path: &str) -> bool {
        let mut segments = rel_path.split('/').filter(|s| !s.is_empty());
        let (Some(first), Some(_), None) = (segments.next(), segments.next(), segments.next())
        else {
            return false;
        };
        self.large_body_routes
            .iter()
            .any(|(m, endpoint)| m == method && endpoint.eq_ignore_ascii_case(first))
    }

    /// Serves one request, in a warm instance of this tenant when one is idle. Blocking: call
    /// it from a blocking thread. A streamed response keeps its instance until the stream is
    /// finished or dropped.
    pub fn handle(
        &self,
        backend: Arc<dyn Backend>,
        tenant: &Tenant,
        request: GuestRequest,
    ) -> Result<Handled, GuestFault> {
        let in_use = self.metrics.instance_in_use();
        let memory = if self.takes_large_body(&request.method, &request.path) {
            self.limits.large_memory_bytes.max(self.limits.memory_bytes)
        } else {
            self.limits.memory_bytes
        };
        let mut warm = self.checkout(Binding::Tenant(&backend, tenant), memory)?;
        if let Some((_, id)) = request.headers.iter().find(|(k, _)| k == "x-request-id") {
            warm.store.data_mut().request_id.clone_from(id);
        }
        let (warm, response) = self.invoke(warm, |w| {
            w.plugin
                .scimlet_scim_handler()
                .call_handle(&mut w.store, &request)
        })?;
        let rest = match response.rest {
            Some(resource) => Some(BodyStream::new(self.clone(), warm, resource, in_use)),
            None => {
                self.release(warm);
                None
            }
        };
        Ok(Handled {
            status: response.status,
            headers: response.headers,
            body: response.body,
            rest,
            audit: response.audit,
        })
    }

    /// Runs `call` in an instance bound to `tenant`, released afterwards.
    fn with_tenant<T>(
        &self,
        backend: &Arc<dyn Backend>,
        tenant: &Tenant,
        call: impl FnOnce(&mut Warm) -> wasmtime::Result<T>,
    ) -> Result<T, GuestFault> {
        self.call_in(Binding::Tenant(backend, tenant), call)
    }

    /// Runs `call` in an instance bound to no tenant, released afterwards.
    fn tenantless<T>(
        &self,
        call: impl FnOnce(&mut Warm) -> wasmtime::Result<T>,
    ) -> Result<T, GuestFault> {
        self.call_in(Binding::None, call)
    }

    /// One call in an instance for `binding`, with the ordinary memory budget.
    fn call_in<T>(
        &self,
        binding: Binding<'_>,
        call: impl FnOnce(&mut Warm) -> wasmtime::Result<T>,
    ) -> Result<T, GuestFault> {
        let _in_use = self.metrics.instance_in_use();
        let warm = self.checkout(binding, self.limits.memory_bytes)?;
        let (warm, out) = self.invoke(warm, call)?;
        self.release(warm);
        Ok(out)
    }

    /// One call into an instance under the CPU budget; a trapped instance is never used again.
    fn invoke<T>(
        &self,
        mut warm: Warm,
        call: impl FnOnce(&mut Warm) -> wasmtime::Result<T>,
    ) -> Result<(Warm, T), GuestFault> {
        warm.store.data_mut().cpu_start = thread_cpu_time();
        warm.store.set_epoch_deadline(1);
        match call(&mut warm) {
            Ok(out) => Ok((warm, out)),
            Err(e) => {
                let fault = classify(&e, warm.store.data().limiter.hit);
                self.metrics.guest_fault(fault.kind());
                Err(fault)
            }
        }
    }

    /// An instance for `binding` that may grow to `memory` bytes: a warm one of the same
    /// tenant, else a fresh one.
    fn checkout(&self, binding: Binding<'_>, memory: usize) -> Result<Warm, GuestFault> {
        let mut warm = match self.warm.take(binding.tenant_id()) {
            Some(mut warm) => {
                let state = warm.store.data_mut();
                if let Binding::Tenant(backend, tenant) = binding {
                    state.backend = Some(backend.clone());
                    state.tenant_name.clone_from(&tenant.name);
                }
                state.limiter.hit = false;
                state.request_id.clear();
                warm
            }
            None => self.instantiate(binding)?,
        };
        warm.store.data_mut().limiter.max = memory;
        Ok(warm)
    }

    /// Returns an instance that finished its call cleanly to the pool, unless it is worn out.
    /// Instances bound to no tenant are not kept: their calls (error pages, policy checks) are
    /// rare, and the pool's slots are for the tenants' requests.
    fn release(&self, mut warm: Warm) {
        warm.uses += 1;
        if !warm.store.data().tenant_id.is_empty()
            && warm.uses < self.limits.warm_max_uses
            && warm.store.data().limiter.size <= self.limits.warm_memory_bytes
        {
            self.warm.put(warm);
        }
    }

    /// A fresh instance; when the pooling allocator has no free slot, idle warm instances give
    /// theirs up.
    fn instantiate(&self, binding: Binding<'_>) -> Result<Warm, GuestFault> {
        let (backend, tenant_id, tenant_name) = match binding {
            Binding::Tenant(b, t) => (Some(b.clone()), t.id.clone(), t.name.clone()),
            Binding::None => (None, String::new(), String::new()),
        };
        loop {
            // A fresh store per attempt: a failed instantiation may leave parts behind in it.
            let state = State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
                limiter: MemoryLimiter {
                    max: self.limits.memory_bytes,
                    hit: false,
                    size: 0,
                },
                backend: backend.clone(),
                tenant_id: tenant_id.clone(),
                tenant_name: tenant_name.clone(),
                metrics: self.metrics.clone(),
                cpu_start: thread_cpu_time(),
                turn: None,
                request_id: String::new(),
            };
            let mut store = Store::new(&self.engine, state);
            store.limiter(|s| &mut s.limiter);
            // At every epoch tick: interrupt the call once its thread used its CPU budget.
            let budget = self.limits.cpu_deadline;
            store.epoch_deadline_callback(move |ctx| {
                Ok(
                    if thread_cpu_time().saturating_sub(ctx.data().cpu_start) >= budget {
                        UpdateDeadline::Interrupt
                    } else {
                        UpdateDeadline::Continue(1)
                    },
                )
            });
            store.set_epoch_deadline(1);
            match self.pre.instantiate(&mut store) {
                Ok(plugin) => {
                    return Ok(Warm {
                        store,
                        plugin,
                        uses: 0,
                    })
                }
                Err(_) if self.warm.evict_one() => continue,
                Err(e) => return Err(GuestFault::Instantiate(format!("{e:#}"))),
            }
        }
    }

    /// Instances idle and warm right now.
    pub fn warm_instances(&self) -> usize {
        self.warm.idle().len()
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The embedded component, loaded once per test process (compiling it is the slow part).
#[cfg(test)]
pub(crate) fn test_runtime() -> Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cache = std::env::temp_dir().join("scimlet-test-cwasm");
            Runtime::new(EMBEDDED_COMPONENT, Some(&cache), Limits::default()).unwrap()
        })
        .clone()
}

#[cfg(test)]
mod tests;
