//! The domain model every other layer builds on: SCIM errors, schemas, resource types,
//! per-tenant policy, identifier limits, time and ids, diagnostics. Imports nothing above it.

pub mod clock;
pub mod diag;
pub mod error;
pub mod identifiers;
pub mod policy;
pub mod resource_type;
pub mod schema;
