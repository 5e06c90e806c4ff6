//! Test-only faults, compiled in only with the `fault-injection` feature (never in the
//! component the host embeds for production): they prove that a broken guest fails one request.

/// Panics, spins or exhausts memory when the request carries `x-scimlet-fault`.
pub fn maybe_inject(kind: Option<&str>) {
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
        _ => {}
    }
}
