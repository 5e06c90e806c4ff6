//! SCIM rules over documents, independent of storage: filters, PATCH, identity-provider
//! dialects, input normalisation and output projection, strict JSON, group input.
//! Imports only [`crate::model`].

pub(crate) mod dialect;
pub(crate) mod filter;
pub(crate) mod group_input;
pub(crate) mod json;
pub(crate) mod patch;
pub(crate) mod resource;
