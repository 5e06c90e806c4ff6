//! SCIM and operator operations on a tenant ([`service::Service`]): users, groups and teams,
//! roles, import, export, the store checker. Imports the layers below, never
//! [`crate::protocol`].

pub mod check;
pub mod export;
pub mod groups;
pub mod import;
pub mod roles;
pub mod service;
pub mod teams;
pub mod users;
