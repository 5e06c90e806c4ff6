//! The SCIM HTTP protocol (RFC 7644 §3): routing, response bodies and streaming, discovery,
//! the audit record, host failures. The top layer: only the wasm adapter imports it.

pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod discovery;
pub(crate) mod host_failure;
pub(crate) mod http;
