//! SCIM rules over documents, independent of storage: filters, PATCH, identity-provider
//! dialects, input normalisation and output projection, strict JSON, group input.
//! Imports only [`crate::model`].

pub mod dialect;
pub mod filter;
pub mod group_input;
pub mod json;
pub mod patch;
pub mod resource;
