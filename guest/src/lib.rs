//! scimlet guest: every SCIM rule, as plain Rust behind a [`store::Store`].
//!
//! Native builds (unit tests, the host's native benchmark mode) use this crate as a library;
//! `wasm32` builds add the thin wit-bindgen adapter in `component.rs`.

pub mod error;
pub mod schema;
pub mod store;
