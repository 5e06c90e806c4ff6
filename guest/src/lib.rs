//! scimlet guest: every SCIM rule, as plain Rust behind a [`store::Store`].
//!
//! Native builds (unit tests, the host's native benchmark mode) use this crate as a library;
//! `wasm32` builds add the thin wit-bindgen adapter in `component.rs`.

pub mod error;
pub mod filter;
pub mod patch;
pub mod schema;
pub mod store;
pub mod clock;
pub mod policy;
pub mod resource;
pub mod repo;
pub mod service;
pub mod discovery;
pub mod http;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(target_arch = "wasm32")]
mod component;
pub mod roles;
