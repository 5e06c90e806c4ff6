//! The `operator` export: what the CLI and the admin API need from SCIM semantics.

use super::bindings::exports::scimlet::scim::operator;
use super::Component;
