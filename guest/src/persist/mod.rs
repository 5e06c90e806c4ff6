//! Persistence through the tenant's [`store::Store`]: the key layout ([`keys`]), resources and
//! their indexes, membership edges. Imports [`crate::rules`] (what a response reads) and [`crate::model`].

pub mod keys;
pub mod members;
pub mod repo;
pub mod store;
