//! HTTP around the component: the embeddable SCIM handle ([`ScimService`]), its response
//! bodies (complete, or streamed chunk by chunk from the component), and the listener's
//! connection limits.

mod body;
pub mod connections;
mod service;

pub use body::{BodyError, ScimBody};
pub use service::{ScimService, ServiceConfig, REQUEST_ID};
