//! SCIM and operator operations on a tenant ([`service::Service`]): users, groups and teams,
//! roles, import, export, the store checker. Imports the layers below, never
//! [`crate::protocol`].

pub(crate) mod check;
pub(crate) mod export;
pub(crate) mod groups;
pub(crate) mod import;
pub(crate) mod roles;
pub(crate) mod service;
pub(crate) mod teams;
pub(crate) mod users;
