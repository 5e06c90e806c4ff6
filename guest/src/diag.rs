//! Diagnostics from the SCIM core: the component forwards them to the host's `log` import;
//! native builds drop them unless a sink is installed.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

static SINK: OnceLock<fn(Level, &str)> = OnceLock::new();

/// Installs the process-wide sink (first caller wins).
pub fn install(sink: fn(Level, &str)) {
    let _ = SINK.set(sink);
}

pub fn emit(level: Level, message: &str) {
    if let Some(sink) = SINK.get() {
        sink(level, message);
    }
}
