//! Fixtures shared by the PATCH tests, and the tests of the engine as a whole: parse a message,
//! apply it, check the document (and that a failure left it untouched).

use serde_json::{json, Value};

use super::{apply, parse_request, OpKind, PatchOperation, PatchPath};
use crate::model::error::{ScimError, ScimResult, ScimType};
use crate::model::schema::{
    core_group, core_user, enterprise_user, role_extension, urn, AttrPath, ResourceSchema,
};

mod engine;
mod fuzz;
mod idp;

pub(crate) fn users() -> ResourceSchema {
    let roles = role_extension(urn::WRITER_USER, "role", &["member".into(), "admin".into()]);
    ResourceSchema::new(
        "User",
        "/Users",
        "User Account",
        core_user(),
        vec![enterprise_user(), roles],
    )
}

pub(crate) fn groups() -> ResourceSchema {
    ResourceSchema::new("Group", "/Groups", "Group", core_group(), vec![])
}

pub(crate) fn user_doc() -> Value {
    json!({
        "schemas": [urn::USER],
        "id": "2819c223",
        "externalId": "00ujl29u",
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "active": true,
        "emails": [
            {"value": "ada@example.com", "type": "work", "primary": true},
            {"value": "ada@home.example", "type": "home"}
        ],
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
    })
}

pub(crate) fn group_doc() -> Value {
    json!({
        "schemas": [urn::GROUP],
        "id": "abf4dd94",
        "displayName": "Test SCIMv2",
        "members": [{"value": "u1", "display": "one"}, {"value": "u2"}],
        "meta": {"resourceType": "Group", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
    })
}

pub(crate) fn body(ops: Value) -> Value {
    json!({"schemas": [urn::PATCH_OP], "Operations": ops})
}

/// Parses and applies; the document is untouched on error.
pub(crate) fn run(doc: &mut Value, rs: &ResourceSchema, ops: Value) -> ScimResult<bool> {
    let before = doc.clone();
    let parsed = parse_request(&body(ops), rs)?;
    let out = apply(doc, &parsed, rs);
    if out.is_err() {
        assert_eq!(
            *doc, before,
            "a failed PATCH must leave the document as it was"
        );
    }
    out
}

pub(crate) fn kind(e: &ScimError) -> Option<ScimType> {
    assert_eq!(e.status, 400, "{e}");
    e.scim_type
}
