//! Persistence through the tenant's [`store::Store`]: resources and their indexes, membership
//! edges. Imports [`crate::rules`] (what a response reads) and [`crate::model`].

pub mod members;
pub mod repo;
pub mod store;
