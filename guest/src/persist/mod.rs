//! Persistence through the tenant's [`store::Store`]: the key layout ([`keys`]), resources and
//! their indexes, membership edges. Imports [`crate::rules`] (what a response reads) and [`crate::model`].

pub(crate) mod events;
pub(crate) mod keys;
pub(crate) mod members;
pub(crate) mod prefetch;
pub(crate) mod repo;
pub mod store;
