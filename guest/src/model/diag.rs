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
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // the wasm adapter installs it
pub fn install(sink: fn(Level, &str)) {
    let _ = SINK.set(sink);
}

pub fn emit(level: Level, message: &str) {
    if let Some(sink) = SINK.get() {
        sink(level, message);
    }
}

/// Runs `f` and returns the debug messages it emitted on this thread. Unit tests share this one
/// sink: the process-wide sink is set once, so a test installing its own would race the others.
#[cfg(test)]
pub fn capture(f: impl FnOnce()) -> Vec<String> {
    use std::cell::RefCell;
    thread_local! {
        static LOG: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }
    fn record(level: Level, message: &str) {
        if level == Level::Debug {
            LOG.with_borrow_mut(|log| {
                if let Some(log) = log {
                    log.push(message.to_string());
                }
            });
        }
    }
    install(record);
    LOG.with_borrow_mut(|log| *log = Some(Vec::new()));
    f();
    LOG.with_borrow_mut(Option::take).unwrap_or_default()
}
