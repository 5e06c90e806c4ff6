//! The wasmtime embedding: one shared [`Engine`], the component pre-instantiated once, and a
//! fresh, bounded [`Store`] per request that is dropped afterwards (always, and after a trap).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::metrics::{CommitOutcome, FaultKind, Metrics};
use crate::store::{self as backend, Backend};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "scim-plugin",
    });
}

pub use bindings::exports::scimlet::scim::handler::{
    Request as GuestRequest, Response as GuestResponse,
};
pub use bindings::scimlet::scim::types::Context as GuestContext;
use bindings::scimlet::scim::{log, store, types};
use bindings::{ScimPlugin, ScimPluginPre};

/// The production guest component, built by `build.rs` and embedded in the binary.
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scimlet.wasm"));

/// Bounds for each guest invocation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a guest instance may grow to.
    pub memory_bytes: usize,
    /// Guest CPU time per request before it is interrupted (epoch deadline).
    pub cpu_deadline: Duration,
    /// Component instances alive at once in the pooling allocator.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_deadline: Duration::from_secs(5),
            max_instances: 128,
        }
    }
}

const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a guest invocation failed (the request gets a SCIM 5xx; the process keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum GuestFault {
    #[error("the request exceeded its CPU time budget")]
    Timeout,
    #[error("the request exceeded its memory budget")]
    OutOfMemory,
    #[error("the SCIM component failed: {0}")]
    Trap(String),
    #[error("the SCIM component could not be instantiated: {0}")]
    Instantiate(String),
}

impl GuestFault {
    pub fn status(&self) -> u16 {
        match self {
            GuestFault::Timeout | GuestFault::OutOfMemory => 503,
            GuestFault::Trap(_) | GuestFault::Instantiate(_) => 500,
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

/// Per-request host state.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    backend: Arc<dyn Backend>,
    tenant_id: String,
    tenant_name: String,
    metrics: Metrics,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers that the cap was hit, so OOM is not mistaken for a panic.
struct MemoryLimiter {
    max: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl types::Host for State {}

fn to_wit(e: backend::StoreError) -> store::StoreError {
    match e {
        backend::StoreError::Conflict => store::StoreError::Conflict,
        backend::StoreError::Invalid(m) => store::StoreError::Invalid(m),
        other => store::StoreError::Unavailable(other.to_string()),
    }
}

fn entry(e: backend::Entry) -> store::Entry {
    store::Entry {
        key: e.key,
        value: e.value,
        version: e.version,
    }
}

impl store::Host for State {
    fn get(&mut self, key: String) -> Result<Option<store::Entry>, store::StoreError> {
        self.backend
            .get(&self.tenant_id, &key)
            .map(|e| e.map(entry))
            .map_err(to_wit)
    }
    fn get_many(
        &mut self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<store::Entry>>, store::StoreError> {
        let found = self
            .backend
            .get_many(&self.tenant_id, &keys)
            .map_err(to_wit)?;
        Ok(found.into_iter().map(|e| e.map(entry)).collect())
    }
    fn scan(
        &mut self,
        start: String,
        end: String,
        skip: u64,
        limit: u32,
        descending: bool,
        keys_only: bool,
    ) -> Result<Vec<store::Entry>, store::StoreError> {
        let scan = backend::Scan {
            start,
            end,
            skip,
            limit,
            descending,
            keys_only,
        };
        let found = self.backend.scan(&self.tenant_id, &scan).map_err(to_wit)?;
        Ok(found.into_iter().map(entry).collect())
    }
    fn count(&mut self, start: String, end: String) -> Result<u64, store::StoreError> {
        self.backend
            .count(&self.tenant_id, &start, &end)
            .map_err(to_wit)
    }
    fn commit(
        &mut self,
        checks: Vec<store::Check>,
        writes: Vec<store::Write>,
    ) -> Result<u64, store::StoreError> {
        let checks: Vec<backend::Check> = checks
            .into_iter()
            .map(|c| backend::Check {
                key: c.key,
                version: c.version,
            })
            .collect();
        let writes: Vec<backend::Write> = writes
            .into_iter()
            .map(|w| match w {
                store::Write::Put((k, v)) => backend::Write::Put(k, v),
                store::Write::Delete(k) => backend::Write::Delete(k),
            })
            .collect();
        let result = self.backend.commit(&self.tenant_id, &checks, &writes);
        self.metrics.store_commit(match &result {
            Ok(_) => CommitOutcome::Ok,
            Err(backend::StoreError::Conflict) => CommitOutcome::Conflict,
            Err(_) => CommitOutcome::Error,
        });
        result.map_err(to_wit)
    }
}

impl log::Host for State {
    fn emit(&mut self, level: log::Level, message: String) {
        let tenant = self.tenant_name.as_str();
        match level {
            log::Level::Trace => tracing::trace!(tenant, "guest: {message}"),
            log::Level::Debug => tracing::debug!(tenant, "guest: {message}"),
            log::Level::Info => tracing::info!(tenant, "guest: {message}"),
            log::Level::Warn => tracing::warn!(tenant, "guest: {message}"),
            log::Level::Error => tracing::error!(tenant, "guest: {message}"),
        }
    }
}

/// A loaded SCIM component, ready to serve requests from many threads.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    pre: ScimPluginPre<State>,
    limits: Limits,
    metrics: Metrics,
}

impl Runtime {
    /// Loads a component (`.wasm`, compiled and cached as `.cwasm` in `cache_dir`).
    pub fn new(wasm: &[u8], cache_dir: Option<&Path>, limits: Limits) -> anyhow::Result<Runtime> {
        let engine = new_engine(&limits)?;
        let component = load_component(&engine, wasm, cache_dir)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wt)?;
        ScimPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s).map_err(wt)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(wt)
            .context("link the SCIM component")?;
        let pre = ScimPluginPre::new(instance_pre).map_err(wt)?;
        spawn_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            pre,
            limits,
            metrics: Metrics::new(),
        })
    }

    /// Counts this runtime's invocations, commits and faults in `metrics` (a runtime starts
    /// with metrics of its own, which nothing reads).
    pub fn with_metrics(mut self, metrics: Metrics) -> Runtime {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves one request in a fresh instance. Blocking: call it from a blocking thread.
    pub fn handle(
        &self,
        backend: Arc<dyn Backend>,
        tenant: &backend::Tenant,
        request: GuestRequest,
    ) -> Result<GuestResponse, GuestFault> {
        let state = State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max: self.limits.memory_bytes,
                hit: false,
            },
            backend,
            tenant_id: tenant.id.clone(),
            tenant_name: tenant.name.clone(),
            metrics: self.metrics.clone(),
        };
        let _in_use = self.metrics.instance_in_use();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (self.limits.cpu_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        let plugin = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| GuestFault::Instantiate(format!("{e:#}")))?;
        let result = plugin
            .scimlet_scim_handler()
            .call_handle(&mut store, &request);
        result.map_err(|e| {
            let fault = classify(&e, store.data().limiter.hit);
            self.metrics.guest_fault(fault.kind());
            fault
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn classify(err: &wasmtime::Error, memory_hit: bool) -> GuestFault {
    if memory_hit {
        return GuestFault::OutOfMemory;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) | Some(Trap::OutOfFuel) => GuestFault::Timeout,
        _ => GuestFault::Trap(format!("{err:#}")),
    }
}

/// wasmtime's own error type into anyhow's (wasmtime is built without its `anyhow` feature).
fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// A pooling engine when the machine can reserve the address space, else on-demand.
fn new_engine(limits: &Limits) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(limits.max_instances)
        .total_core_instances(limits.max_instances * 4)
        .total_memories(limits.max_instances * 2)
        .total_tables(limits.max_instances * 2)
        .total_stacks(limits.max_instances)
        .max_memory_size(limits.memory_bytes)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_core_instances_per_component(32)
        // Reset a reused slot's first pages with memset instead of madvise: cheaper for a guest
        // that touches little memory per request (as Spin does).
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10);
    let mut pooled = base_config();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!("pooling allocator unavailable ({e:#}); using on-demand instantiation");
            Engine::new(&base_config())
                .map_err(wt)
                .context("create the wasmtime engine")
        }
    }
}

/// Compiles the component, or loads it from the `.cwasm` cache keyed by the component's hash
/// and the engine's compatibility hash (a `.cwasm` is only valid for the config that made it).
fn load_component(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> anyhow::Result<Component> {
    if Engine::detect_precompiled(wasm).is_some() {
        anyhow::bail!(
            "expected a .wasm component; pass .cwasm files through the cache, never as input"
        );
    }
    let Some(dir) = cache_dir else {
        return Component::new(engine, wasm)
            .map_err(wt)
            .context("compile the SCIM component");
    };
    let path = cache_path(engine, wasm, dir);
    if path.exists() {
        // SAFETY: the cache only holds files this function wrote for this exact component and
        // engine configuration (both are in the file name).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok(c),
            Err(e) => tracing::warn!(
                "ignoring unusable component cache {}: {e:#}",
                path.display()
            ),
        }
    }
    let compiled = engine
        .precompile_component(wasm)
        .map_err(wt)
        .context("compile the SCIM component")?;
    std::fs::create_dir_all(dir).with_context(|| format!("create cache dir {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &compiled)?;
    std::fs::rename(&tmp, &path)?;
    // SAFETY: just produced by this engine.
    Ok(unsafe { Component::deserialize(engine, &compiled).map_err(wt)? })
}

fn cache_path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = Sha256::digest(wasm);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("scimlet-{hex}-{:016x}.cwasm", hasher.finish()))
}

/// Advances the engine's epoch so that runaway guests hit their deadline; stops with the engine.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("scimlet-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .ok();
}
