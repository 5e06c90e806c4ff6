//! scimlet guest: every SCIM rule, as plain Rust behind a [`store::Store`].
//!
//! Native builds (unit tests, the host's native benchmark mode) use this crate as a library;
//! `wasm32` builds add the thin wit-bindgen adapter in `component.rs`.

pub mod audit;
pub mod body;
pub mod check;
pub mod clock;
#[cfg(target_arch = "wasm32")]
mod component;
pub mod diag;
pub mod dialect;
pub mod discovery;
pub mod error;
pub mod export;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod filter;
pub mod group_input;
pub mod groups;
pub mod host_failure;
pub mod http;
pub mod identifiers;
pub mod import;
mod json;
pub mod members;
pub mod patch;
pub mod policy;
pub mod repo;
pub mod resource;
pub mod roles;
pub mod schema;
pub mod service;
pub mod store;
pub mod teams;
pub mod users;
