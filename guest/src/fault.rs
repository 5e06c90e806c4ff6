//! Test-only faults, compiled in only with the `fault-injection` feature (never in the
//! component the host embeds for production): they prove that a broken guest fails one request,
//! and `wait` holds a request in flight for as long as a test needs it there.

use crate::persist::store::Store;

/// The key the `wait` fault polls for; a test writes it into the tenant's store (straight into
/// the SQLite file) to let the held request go on.
pub use crate::persist::keys::FAULT_RELEASE as RELEASE_KEY;

/// Traps an operator call when the tenant's policy asks for it (`"fault": "operator-panic"`, a
/// key only this build accepts): the e2e tests use it to show that `--component` decides which
/// component runs each CLI command.
pub fn maybe_fail_operator(policy_json: &str) {
    if let Ok(policy) = crate::model::policy::Policy::from_json(policy_json) {
        if policy.fault.as_deref() == Some("operator-panic") {
            panic!("fault injection: operator call refused by the tenant's policy");
        }
    }
}

/// Panics, spins or exhausts memory when the request carries `x-scimlet-fault`; `wait` holds
/// the request until [`RELEASE_KEY`] exists in the store, then serves it normally.
pub fn maybe_inject(store: &dyn Store, kind: Option<&str>) {
    match kind {
        Some("panic") => panic!("fault injection: panic requested"),
        Some("loop") => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Some("oom") => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hog);
            }
        }
        Some("wait") => {
            // Sleeps between polls: the held request uses next to no CPU time.
            while !matches!(store.get(RELEASE_KEY), Ok(Some(_))) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        _ => {}
    }
}
