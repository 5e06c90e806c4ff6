//! scimlet guest: every SCIM rule, as plain Rust behind a [`store::Store`].
//!
//! Native builds (unit tests, fuzzing, the host's native benchmark mode) use this crate as a
//! library; `wasm32` builds add the thin wit-bindgen adapter in `component/`, which exports
//! [`http`] as the WIT `handler` and [`operator`] as the WIT `operator`.
//!
//! The code is layered, each layer importing only the ones below it:
//! `protocol` (HTTP, bodies, discovery) → `ops` (operations on a tenant) → `persist` (the key
//! layout, resources, membership edges) → `rules` (filters, PATCH, dialects, input and
//! output shaping) → `model` (errors, schemas, resource types, policy). The layers are private;
//! this file re-exports what callers outside the crate use.
#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(feature = "fault-injection")]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // operator faults: wasm adapter only
mod fault;
mod model;
mod ops;
mod persist;
mod protocol;
mod rules;

pub use model::error::{ScimError, ScimResult, ScimType};
pub use model::policy::{Policy, PolicyError};
pub use model::resource_type::Kind;
pub use ops::service::{ListParams, Page, Service};
pub use persist::members::Membership;
pub use persist::store;
pub use rules::resource::Projection;

/// The SCIM HTTP protocol (RFC 7644 §3): one request in, one response out. The component's
/// WIT `handler` export and the host's native benchmarks both call [`handle`].
pub mod http {
    pub use crate::protocol::body::{Body, BodyStream, Limits};
    pub use crate::protocol::http::{
        handle, handle_with, large_body_routes, LargeBodyRoute, Request, Response, SCIM_JSON,
    };
}

/// What the CLI and the admin API ask of a tenant (the WIT `operator` export): teams, roles of
/// the policy, import and export, the store checker, and the SCIM errors of host failures.
pub mod operator {
    pub use crate::model::policy::profile_names;
    pub use crate::ops::check::{report, verify, Problem};
    pub use crate::ops::export::{ExportError, ExportPage, MAX_PAGE};
    pub use crate::ops::import::{Outcome, Row, UserRow};
    pub use crate::ops::teams::{create as create_team, list as list_teams, Team};
    pub use crate::protocol::host_failure::{HostFailure, Response as HostFailureResponse};
}

/// SCIM filters (RFC 7644 §3.4.2.2): parsing, validation against a schema, evaluation.
pub mod filter {
    pub use crate::rules::filter::{
        matches, parse, parse_with, validate, Filter, ParseOptions, MAX_DEPTH, MAX_FILTER_LEN,
    };
}

/// PATCH (RFC 7644 §3.5.2): request and path parsing, and applying operations to a document.
pub mod patch {
    pub use crate::rules::patch::{
        apply, parse_path, parse_request, OpKind, PatchOperation, PatchPath,
    };
}
