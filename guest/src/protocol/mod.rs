//! The SCIM HTTP protocol (RFC 7644 §3): routing, response bodies and streaming, discovery,
//! the audit record, host failures. The top layer: only the wasm adapter imports it.

pub mod audit;
pub mod body;
pub mod discovery;
pub mod host_failure;
pub mod http;
