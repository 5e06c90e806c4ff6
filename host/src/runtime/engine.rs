//! The wasmtime engine and component loading: pooling allocation when the machine allows it,
//! epoch interruption driven by each call's thread CPU time, the `.cwasm` cache, and the check
//! that a component speaks the contract this host implements.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Trap};

use super::{GuestFault, Limits};

/// The WIT package this host implements (`wit/scimlet.wit`).
pub const PACKAGE: &str = "scimlet:scim";
/// Its version: a component built against another one is refused at load.
pub const VERSION: &str = "0.3.0";

const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Refuses, in words an operator can act on, a component that does not export this host's
/// `scimlet:scim` interfaces at [`VERSION`] (linking would fail later with a type error that
/// names neither version).
pub(super) fn check_contract(engine: &Engine, component: &Component) -> anyhow::Result<()> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    for interface in ["handler", "operator"] {
        let wanted = format!("{PACKAGE}/{interface}@{VERSION}");
        if exports.contains(&wanted) {
            continue;
        }
        let prefix = format!("{PACKAGE}/{interface}@");
        if let Some(found) = exports.iter().find(|name| name.starts_with(&prefix)) {
            let version = &found[prefix.len()..];
            anyhow::bail!(
                "the component speaks {PACKAGE}@{version}, this scimlet host speaks \
                 {PACKAGE}@{VERSION}: build the component against the wit/ of this scimlet release"
            );
        }
        let names: Vec<&str> = exports.iter().map(String::as_str).collect();
        anyhow::bail!(
            "the component does not export {wanted}, so it is not a scimlet SCIM component \
             (it exports: {})",
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    Ok(())
}

pub(super) fn classify(err: &wasmtime::Error, memory_hit: bool) -> GuestFault {
    if memory_hit {
        return GuestFault::OutOfMemory;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) | Some(Trap::OutOfFuel) => GuestFault::Timeout,
        _ => GuestFault::Trap(format!("{err:#}")),
    }
}

/// wasmtime's own error type into anyhow's (wasmtime is built without its `anyhow` feature).
pub(super) fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// A pooling engine when the machine can reserve the address space, else on-demand.
pub(super) fn new_engine(limits: &Limits) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(limits.max_instances)
        .total_core_instances(limits.max_instances * 4)
        .total_memories(limits.max_instances * 2)
        .total_tables(limits.max_instances * 2)
        .total_stacks(limits.max_instances)
        .max_memory_size(limits.memory_bytes.max(limits.large_memory_bytes))
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
pub(super) fn load_component(
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
pub(super) fn thread_cpu_time() -> Duration {
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
pub(super) fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Advances the engine's epoch so that the deadline callback checks every running call's CPU
/// time once per tick; stops with the engine.
pub(super) fn spawn_epoch_ticker(engine: &Engine) {
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
