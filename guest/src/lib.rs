//! scimlet guest: every SCIM rule, as plain Rust behind a [`store::Store`].
//!
//! Native builds (unit tests, the host's native benchmark mode) use this crate as a library;
//! `wasm32` builds add the thin wit-bindgen adapter in `component/`.
//!
//! Layers, each importing only the ones below it:
//! `protocol` → `ops` → `persist` → `rules` → `model`.

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod model;
pub mod ops;
pub mod persist;
pub mod protocol;
pub mod rules;

pub use model::{clock, diag, error, identifiers, policy, resource_type, schema};
pub use ops::{check, export, groups, import, roles, service, teams, users};
pub use persist::keys;
pub use persist::{members, repo, store};
pub use protocol::{audit, body, discovery, host_failure, http};
pub use rules::{dialect, filter, group_input, patch, resource};
