//! scimlet host: runs the SCIM component with wasmtime, supplies its tenant-scoped storage, and
//! serves it over HTTP — as the `scimlet` binary or embedded in a gateway via [`ScimService`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use scimlet::{runtime::{Limits, Runtime, EMBEDDED_COMPONENT}, store::memory::MemoryBackend, ScimService, ServiceConfig};
//! let runtime = Runtime::new(EMBEDDED_COMPONENT, None, Limits::default())?;
//! let scim = ScimService::new(runtime, Arc::new(MemoryBackend::new()), ServiceConfig::default());
//! let resp = scim.handle(http::Request::get("/scim/v2/ServiceProviderConfig").body(http_body_util::Empty::<bytes::Bytes>::new())?).await;
//! assert_eq!(resp.status(), 401); // no token
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod audit;
pub mod config;
pub mod console;
pub mod events;
pub mod http;
pub mod import;
pub mod metrics;
pub mod private_files;
pub mod runtime;
pub mod store;
pub mod tenancy;
pub mod usage;
pub mod webhooks;

pub use http::{ScimBody, ScimService, ServiceConfig};
/// Tenant administration, at its path from before the [`tenancy`] module.
pub use tenancy as tenants;
/// The admin API, at its path from before the [`tenancy`] module.
pub use tenancy::admin;
