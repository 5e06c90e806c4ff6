//! Builds the guest crate for `wasm32-wasip2` so that `cargo build` / `cargo run` of the host
//! needs no separate step, and embeds the component in the binary.
//!
//! Two components are built: the production one (profile `guest`: LTO, optimised) and a
//! test-only one with the `fault-injection` feature, whose path is exported to the host's tests
//! as `SCIMLET_FAULT_COMPONENT`. The production binary never embeds the faulty one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=SCIMLET_GUEST_WASM");

    // Escape hatch for packagers who build the guest separately.
    if let Ok(prebuilt) = env::var("SCIMLET_GUEST_WASM") {
        std::fs::copy(&prebuilt, out.join("scimlet.wasm")).expect("copy SCIMLET_GUEST_WASM");
    } else {
        let target_dir = guest_target_dir(&workspace);
        let wasm = build_guest(&workspace, &target_dir.join("release"), "guest", &[]);
        std::fs::copy(&wasm, out.join("scimlet.wasm")).expect("copy guest component");
    }
    let target_dir = guest_target_dir(&workspace);
    let faulty = build_guest(
        &workspace,
        &target_dir.join("fault"),
        "dev",
        &["--features", "fault-injection"],
    );
    let faulty_copy = out.join("scimlet-fault.wasm");
    std::fs::copy(&faulty, &faulty_copy).expect("copy fault-injection component");
    println!(
        "cargo:rustc-env=SCIMLET_FAULT_COMPONENT={}",
        faulty_copy.display()
    );
}

/// A target dir of its own: the outer cargo holds a lock on the main one.
fn guest_target_dir(workspace: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("guest"),
        None => workspace.join("target").join("guest"),
    }
}

fn build_guest(workspace: &Path, target_dir: &Path, profile: &str, extra: &[&str]) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--package",
            "scimlet-guest",
            "--target",
            "wasm32-wasip2",
            "--profile",
            profile,
        ])
        .args(extra)
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's flags and jobserver belong to the host target, not the guest.
    for (key, _) in env::vars_os() {
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
    let status = cmd.status().expect("run cargo for the guest");
    assert!(
        status.success(),
        "building the guest component failed; is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
    );
    let dir = if profile == "dev" { "debug" } else { profile };
    target_dir
        .join("wasm32-wasip2")
        .join(dir)
        .join("scimlet_guest.wasm")
}
