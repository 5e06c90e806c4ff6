//! The wasmtime embedding: one shared [`Engine`], the component pre-instantiated once, and a
//! bounded [`Store`] per invocation. An instance that served a request cleanly is kept warm for
//! the next request of the same tenant (never another tenant's), so a request does not pay for
//! instantiation, fresh heap pages and the guest's one-time setup; an instance that trapped, hit
//! a limit, grew large or served many requests is dropped.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap, UpdateDeadline,
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

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_deadline: Duration::from_secs(5),
            max_instances: 128,
            warm_instances: 32,
            warm_memory_bytes: 8 << 20,
            warm_max_uses: 10_000,
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
    /// The calling thread's CPU time when the current call began.
    cpu_start: Duration,
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
    /// Largest linear memory granted so far.
    size: usize,
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
        self.size = self.size.max(desired);
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
    warm: Arc<WarmPool>,
}

/// An instance between two requests of its tenant.
struct Warm {
    store: Store<State>,
    plugin: ScimPlugin,
    uses: u32,
}

/// Warm instances, least recently used first. A linear scan: the pool holds a few dozen.
struct WarmPool {
    idle: Mutex<VecDeque<Warm>>,
    capacity: usize,
}

impl WarmPool {
    fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Warm>> {
        // A plain list: a panic elsewhere cannot leave it inconsistent.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, tenant_id: &str) -> Option<Warm> {
        let mut idle = self.idle();
        let at = idle
            .iter()
            .rposition(|w| w.store.data().tenant_id == tenant_id)?;
        idle.remove(at)
    }

    /// Keeps `warm`, making room by evicting the least recently used instance.
    fn put(&self, warm: Warm) {
        if self.capacity == 0 {
            return;
        }
        let evicted = {
            let mut idle = self.idle();
            idle.push_back(warm);
            (idle.len() > self.capacity).then(|| idle.pop_front())
        };
        // Dropped outside the lock: freeing an instance returns its slot to the allocator.
        drop(evicted);
    }

    /// Frees the least recently used instance (its pooling slot is wanted by another).
    fn evict_one(&self) -> bool {
        let evicted = self.idle().pop_front();
        evicted.is_some()
    }
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
        let warm = Arc::new(WarmPool {
            idle: Mutex::new(VecDeque::new()),
            // Leave most pooling slots to concurrent requests.
            capacity: limits.warm_instances.min(limits.max_instances as usize / 2),
        });
        Ok(Runtime {
            engine,
            pre,
            limits,
            metrics: Metrics::new(),
            warm,
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

    /// Serves one request, in a warm instance of this tenant when one is idle. Blocking: call
    /// it from a blocking thread.
    pub fn handle(
        &self,
        backend: Arc<dyn Backend>,
        tenant: &backend::Tenant,
        request: GuestRequest,
    ) -> Result<GuestResponse, GuestFault> {
        let _in_use = self.metrics.instance_in_use();
        let mut warm = match self.warm.take(&tenant.id) {
            Some(mut warm) => {
                let state = warm.store.data_mut();
                state.backend = backend;
                state.tenant_name.clone_from(&tenant.name);
                state.limiter.hit = false;
                warm
            }
            None => self.instantiate(backend, tenant)?,
        };
        warm.store.data_mut().cpu_start = thread_cpu_time();
        warm.store.set_epoch_deadline(1);
        let result = warm
            .plugin
            .scimlet_scim_handler()
            .call_handle(&mut warm.store, &request);
        match result {
            Ok(response) => {
                warm.uses += 1;
                if warm.uses < self.limits.warm_max_uses
                    && warm.store.data().limiter.size <= self.limits.warm_memory_bytes
                {
                    self.warm.put(warm);
                }
                Ok(response)
            }
            // A trapped instance is never called again.
            Err(e) => {
                let fault = classify(&e, warm.store.data().limiter.hit);
                self.metrics.guest_fault(fault.kind());
                Err(fault)
            }
        }
    }

    /// A fresh instance for `tenant`; when the pooling allocator has no free slot, idle warm
    /// instances give theirs up.
    fn instantiate(
        &self,
        backend: Arc<dyn Backend>,
        tenant: &backend::Tenant,
    ) -> Result<Warm, GuestFault> {
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
                tenant_id: tenant.id.clone(),
                tenant_name: tenant.name.clone(),
                metrics: self.metrics.clone(),
                cpu_start: thread_cpu_time(),
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
    crate::private_files::create_dir(dir)
        .with_context(|| format!("create cache dir {}", dir.display()))?;
    // A name of its own per writer: two runtimes of one process may compile at once.
    static WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let writer = WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{writer}", std::process::id()));
    crate::private_files::write_file(&tmp, &compiled)?;
    // Another writer may have put the same bytes there first: the cache is only an optimisation.
    if let Err(e) = std::fs::rename(&tmp, &path) {
        tracing::warn!(
            "cannot cache the compiled component at {}: {e}",
            path.display()
        );
        let _ = std::fs::remove_file(&tmp);
    }
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

/// CPU time used by the calling thread so far.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID always exists on the
    // platforms Rust's std supports as unix.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Without a per-thread CPU clock, wall-clock time since the first call stands in for it.
#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Advances the engine's epoch so that the deadline callback checks every running call's CPU
/// time once per tick; stops with the engine.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    #[allow(dead_code)] // build.rs's part of the shared file
    mod guest_build {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/guest_build.rs"));
    }

    /// Every request creates the same user: run against another tenant's data it would conflict.
    fn request(tenant: &backend::Tenant, path: &str, fault: Option<&str>) -> GuestRequest {
        let mut headers = vec![("content-type".into(), "application/scim+json".into())];
        if let Some(kind) = fault {
            headers.push(("x-scimlet-fault".into(), kind.into()));
        }
        GuestRequest {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            headers,
            body: br#"{"userName":"same@example.com"}"#.to_vec(),
            ctx: GuestContext {
                base_url: "http://test/scim/v2".into(),
                policy: tenant.policy.to_string(),
            },
        }
    }

    fn setup(wasm: &[u8], limits: Limits) -> (Runtime, Arc<dyn Backend>, Vec<backend::Tenant>) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let tenants = ["acme", "globex"]
            .iter()
            .map(|name| {
                crate::tenants::create(backend.as_ref(), name, "standard", None)
                    .unwrap()
                    .0
            })
            .collect();
        let cache = std::env::temp_dir().join("scimlet-test-cwasm");
        (
            Runtime::new(wasm, Some(&cache), limits).unwrap(),
            backend,
            tenants,
        )
    }

    #[test]
    fn a_warm_instance_serves_only_the_tenant_it_was_made_for() {
        let (rt, backend, t) = setup(EMBEDDED_COMPONENT, Limits::default());
        for _ in 0..3 {
            rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
                .unwrap();
        }
        assert_eq!(rt.warm_instances(), 1, "one tenant, one instance reused");
        let created = rt
            .handle(backend.clone(), &t[1], request(&t[1], "/Users", None))
            .unwrap();
        assert_eq!(created.status, 201);
        assert_eq!(
            rt.warm_instances(),
            2,
            "another tenant gets its own instance"
        );
        let other = rt
            .handle(backend.clone(), &t[0], request(&t[0], "/Users", None))
            .unwrap();
        assert_eq!(other.status, 201, "tenants' data stay apart: {other:?}");
    }

    #[test]
    fn instances_are_replaced_after_their_uses_and_past_their_memory() {
        let limits = Limits {
            warm_max_uses: 2,
            ..Limits::default()
        };
        let (rt, backend, t) = setup(EMBEDDED_COMPONENT, limits);
        let call = || {
            rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
                .unwrap()
        };
        call();
        assert_eq!(rt.warm_instances(), 1);
        call();
        assert_eq!(
            rt.warm_instances(),
            0,
            "retired after warm_max_uses requests"
        );
        let small = Limits {
            warm_memory_bytes: 0,
            ..Limits::default()
        };
        let (rt, backend, t) = setup(EMBEDDED_COMPONENT, small);
        rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
            .unwrap();
        assert_eq!(rt.warm_instances(), 0, "grew beyond warm_memory_bytes");
    }

    #[test]
    fn the_warm_pool_keeps_the_most_recently_used_within_its_capacity() {
        let limits = Limits {
            warm_instances: 1,
            ..Limits::default()
        };
        let (rt, backend, t) = setup(EMBEDDED_COMPONENT, limits);
        for tenant in &t {
            rt.handle(backend.clone(), tenant, request(tenant, "/Nothing", None))
                .unwrap();
        }
        assert_eq!(rt.warm_instances(), 1);
        assert!(
            rt.warm.take(&t[1].id).is_some(),
            "the latest tenant's stays"
        );
    }

    #[test]
    fn an_instance_that_trapped_is_dropped_and_the_next_request_succeeds() {
        let path = guest_build::fault_component(
            env!("CARGO"),
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
            std::path::Path::new(env!("SCIMLET_GUEST_TARGET_DIR")),
        );
        let faulty = std::fs::read(path).unwrap();
        let (rt, backend, t) = setup(&faulty, Limits::default());
        rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
            .unwrap();
        assert_eq!(rt.warm_instances(), 1);
        let fault = rt
            .handle(
                backend.clone(),
                &t[0],
                request(&t[0], "/Users", Some("panic")),
            )
            .unwrap_err();
        assert!(matches!(fault, GuestFault::Trap(_)), "{fault:?}");
        assert_eq!(rt.warm_instances(), 0, "the trapped instance is gone");
        let next = rt
            .handle(backend.clone(), &t[0], request(&t[0], "/Users", None))
            .unwrap();
        assert_eq!(next.status, 201);
    }
}
