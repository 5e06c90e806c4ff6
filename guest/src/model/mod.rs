//! The domain model every other layer builds on: SCIM errors, schemas, resource types,
//! per-tenant policy, identifier limits, time and ids, diagnostics. Imports nothing above it.

pub(crate) mod clock;
pub(crate) mod diag;
pub(crate) mod error;
pub(crate) mod identifiers;
pub(crate) mod policy;
pub(crate) mod resource_type;
pub(crate) mod schema;
