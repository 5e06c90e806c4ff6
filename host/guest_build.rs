// Builds the guest crate for `wasm32-wasip2`. Shared, through `include!`, by `build.rs` (the
// shipped component) and by the tests (the fault-injection component, built only when a test
// asks for it), so that both build it the same way. `include!` forbids inner doc comments,
// hence plain comments here.

/// The target the component is compiled for.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Makes sure the Rust toolchain that runs `rustc` has the standard library for
/// [`GUEST_TARGET`], adding it with rustup when it is missing. Returns the rustup command it
/// ran, if it had to.
///
/// rustup installs the targets listed in `rust-toolchain.toml` only when it installs the
/// toolchain itself: on a machine where the pinned toolchain is already there (or where
/// `RUSTUP_AUTO_INSTALL=0`), the target is missing and the guest build would fail late with
/// "can't find crate for `core`". This check costs one `rustc --print sysroot`.
pub fn ensure_guest_target(rustc: &std::ffi::OsStr) -> Result<Option<String>, String> {
    let sysroot = sysroot(rustc)?;
    if has_guest_std(&sysroot) {
        return Ok(None);
    }
    // rustup names the toolchain it runs in RUSTUP_TOOLCHAIN (whatever picked it:
    // rust-toolchain.toml, `+1.95.0`, an override). Without it (rustc run directly), the sysroot
    // of a rustup toolchain is `$RUSTUP_HOME/toolchains/NAME`.
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN")
        .ok()
        .filter(|t| !t.is_empty() && !t.contains(std::path::MAIN_SEPARATOR))
        .or_else(|| sysroot.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let add = std::process::Command::new("rustup")
        .args(["target", "add", GUEST_TARGET, "--toolchain", &toolchain])
        .status();
    match add {
        Ok(status) if status.success() && has_guest_std(&sysroot) => Ok(Some(format!(
            "rustup target add {GUEST_TARGET} --toolchain {toolchain}"
        ))),
        Ok(status) if status.success() => Err(format!(
            "`rustup target add {GUEST_TARGET} --toolchain {toolchain}` succeeded, but the \
             toolchain at {} (the one building scimlet) still lacks {GUEST_TARGET}: install \
             the target for that toolchain, or set SCIMLET_GUEST_WASM to a component built \
             elsewhere",
            sysroot.display()
        )),
        Ok(status) => Err(format!(
            "`rustup target add {GUEST_TARGET} --toolchain {toolchain}` failed ({status}); \
             scimlet's component needs that target: add it, or set SCIMLET_GUEST_WASM to a \
             component built elsewhere"
        )),
        Err(_) => Err(format!(
            "scimlet compiles its SCIM component for {GUEST_TARGET}, which the Rust toolchain at \
             {} lacks, and rustup is not installed to add it: install the {GUEST_TARGET} \
             standard library for this toolchain (or install Rust with rustup), or set \
             SCIMLET_GUEST_WASM to a component built elsewhere",
            sysroot.display()
        )),
    }
}

fn sysroot(rustc: &std::ffi::OsStr) -> Result<std::path::PathBuf, String> {
    let out = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} --print sysroot` failed: {}",
            rustc.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(std::path::PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim(),
    ))
}

/// Where the toolchain of `rustc` keeps the target's standard library (present or not).
pub fn guest_std_dir(rustc: &std::ffi::OsStr) -> Result<std::path::PathBuf, String> {
    Ok(std_dir(&sysroot(rustc)?))
}

fn std_dir(sysroot: &std::path::Path) -> std::path::PathBuf {
    sysroot
        .join("lib")
        .join("rustlib")
        .join(GUEST_TARGET)
        .join("lib")
}

/// Whether the toolchain holds the target's `core` (the part every build needs).
fn has_guest_std(sysroot: &std::path::Path) -> bool {
    std::fs::read_dir(std_dir(sysroot))
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("libcore-") && name.ends_with(".rlib")
            })
        })
        .unwrap_or(false)
}

/// Runs `cargo build` of the guest crate for [`GUEST_TARGET`] and returns the component's
/// path. `target_dir` must not be the outer build's (cargo holds a lock on that one).
pub fn build_guest(
    cargo: &std::ffi::OsStr,
    workspace: &std::path::Path,
    target_dir: &std::path::Path,
    profile: &str,
    extra: &[&str],
) -> Result<std::path::PathBuf, String> {
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--package", "scimlet-guest", "--target", GUEST_TARGET])
        .args(["--profile", profile])
        .args(extra)
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's flags and jobserver belong to the host target, not the guest.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let host_only = key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_CFG_")
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "CARGO_ENCODED_RUSTFLAGS"
                    | "CARGO_BUILD_TARGET"
                    | "CARGO_TARGET_DIR"
                    | "CARGO_MAKEFLAGS"
                    | "MAKEFLAGS"
                    | "MFLAGS"
                    | "RUSTC_WORKSPACE_WRAPPER"
            );
        if host_only {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !status.success() {
        return Err(format!(
            "building the guest component ({profile} profile) failed ({status}); cargo's \
             messages above say why"
        ));
    }
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(target_dir
        .join(GUEST_TARGET)
        .join(dir)
        .join("scimlet_guest.wasm"))
}

/// Where the guest's builds go: a target dir of their own beside the outer build's, found from
/// the build script's `OUT_DIR` (`TARGET/PROFILE/build/PKG-HASH/out`), which cargo gives as an
/// absolute path even when `CARGO_TARGET_DIR` is relative to wherever cargo was started.
pub fn guest_target_dir(
    workspace: &std::path::Path,
    out_dir: &std::path::Path,
) -> std::path::PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(|build| build.parent()?.parent())
        .map(|target| target.join("guest"))
        .unwrap_or_else(|| workspace.join("target").join("guest"))
}

/// The guest built with its `fault-injection` feature (test-only panics, loops and allocations
/// on request), built on first use in this process: only tests need it, so a release build
/// never compiles it. Panics with the reason when it cannot be built.
pub fn fault_component(
    cargo: &str,
    workspace: &std::path::Path,
    guest_target_dir: &std::path::Path,
) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let built = ensure_guest_target("rustc".as_ref()).and_then(|_| {
                build_guest(
                    cargo.as_ref(),
                    workspace,
                    &guest_target_dir.join("fault"),
                    "dev",
                    &["--features", "fault-injection"],
                )
            });
            built.unwrap_or_else(|why| panic!("{why}"))
        })
        .clone()
}
