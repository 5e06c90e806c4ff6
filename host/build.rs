//! Builds the guest crate for `wasm32-wasip2` so that `cargo build` / `cargo run` of the host
//! needs no separate step, and embeds the component in the binary.
//!
//! Only the shipped component (profile `guest`: LTO, optimised) is built here. The test-only
//! fault-injection component is built by the tests on first use (`guest_build::fault_component`),
//! from the guest target dir this script exports as `SCIMLET_GUEST_TARGET_DIR`.

use std::env;
use std::path::PathBuf;

#[allow(dead_code)] // the tests' part of the shared file
mod guest_build {
    include!("guest_build.rs");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for watched in [
        "guest/src",
        "guest/Cargo.toml",
        "store/src",
        "store/Cargo.toml",
        "wit",
        "Cargo.lock",
        "host/guest_build.rs",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=SCIMLET_GUEST_WASM");
    let target_dir = guest_build::guest_target_dir(&workspace, &out);
    println!(
        "cargo:rustc-env=SCIMLET_GUEST_TARGET_DIR={}",
        target_dir.display()
    );

    // Escape hatch for packagers who build the guest separately.
    if let Some(prebuilt) = env::var_os("SCIMLET_GUEST_WASM") {
        if let Err(e) = std::fs::copy(&prebuilt, out.join("scimlet.wasm")) {
            fail(&format!(
                "cannot copy SCIMLET_GUEST_WASM ({}): {e}",
                PathBuf::from(prebuilt).display()
            ));
        }
        return;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Rerun when the target is removed or added, so that its check runs again.
    if let Ok(std_dir) = guest_build::guest_std_dir(&rustc) {
        println!("cargo:rerun-if-changed={}", std_dir.display());
    }
    let built = guest_build::ensure_guest_target(&rustc).and_then(|added| {
        if let Some(command) = added {
            println!("cargo:warning=the wasm32-wasip2 target was missing: ran `{command}`");
        }
        guest_build::build_guest(
            &cargo,
            &workspace,
            &target_dir.join("release"),
            "guest",
            &[],
        )
    });
    match built {
        Ok(wasm) => {
            if let Err(e) = std::fs::copy(&wasm, out.join("scimlet.wasm")) {
                fail(&format!("cannot copy {}: {e}", wasm.display()));
            }
        }
        Err(why) => fail(&why),
    }
}

/// Stops the build with one readable sentence instead of a panic's backtrace: cargo fails the
/// build on `cargo::error` and shows only the sentence.
fn fail(why: &str) -> ! {
    println!("cargo::error={why}");
    std::process::exit(0)
}
