//! PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` message, parsing PATCH paths against a resource
//! type's schemas, and applying the operations to a resource document, all or nothing.
//!
//! The resource document is the stored form (see [`crate::rules::resource`]): core attributes at the top
//! level under their canonical names, extension attributes inside the object keyed by the
//! extension URN, plus `id`, `externalId`, `meta` and `schemas`. [`apply`] works on a clone and
//! swaps it in only when every operation succeeded and the document really changed, so a no-op
//! PATCH (re-adding a member, renaming a group to its own name) reports `Ok(false)` and leaves
//! the document byte-for-byte as it was.
//!
//! Beyond the RFC, the engine accepts the request shapes identity providers really send
//! (`scim-field-guide.md` §2.2, §3.2–3.4), each a strict superset of valid RFC input:
//!
//! * attribute names in any case, in paths and in value objects (`{"Active": false}`), as
//!   RFC 7643 §2.1 has them case-insensitive.
//! * pathless values whose keys are attribute *paths*: dotted (`"name.givenName"`),
//!   URN-qualified (`"urn:…:enterprise:2.0:User:employeeNumber"`) or extension containers
//!   (`"urn:…:enterprise:2.0:User": {…}`) (Entra with `aadOptscim062020`).
//! * read-only attributes inside a pathless value when they carry the current value (Okta sends
//!   the group `id` with every rename); `meta`, `groups` and `schemas` there are ignored.
//! * `remove` of a multi-valued attribute with a `value` list and no filter (Entra's default
//!   member removal) removes exactly the listed values. It never removes everything: that reading
//!   is what wipes whole groups in other servers (MicrosoftDocs/azure-docs#30826).
//! * a bare string for a complex attribute that has a `value` sub-attribute (`manager: "271"`,
//!   `members: "id"`) means `{"value": …}`.
//! * `add` with a value-filter path that matches nothing (`phoneNumbers[type eq "work"].value`)
//!   creates the element from the filter's `eq` terms (upsert), as UnboundID and SCIM-SDK do.
//! * a value filter on a single-valued complex attribute (`manager[value eq "x"]`).
//!
//! `op` values in another case (`"Replace"` from Entra) and string booleans (`"primary":
//! "True"`) are not among them: the dialect normaliser ([`crate::rules::dialect`]) turns them
//! into RFC values before the engine sees them, and refuses them when its rule is off.
//!
//! Shapes are checked here (an object where a simple value belongs is `invalidValue`); value
//! types are checked afterwards by the caller's validator ([`crate::rules::resource::normalize_input`]).
//!
//! Layout, by layer:
//!
//! * `message`: the `PatchOp` message and its operations (RFC 7644 §3.5.2).
//! * `path`: PATCH paths, `attr[filter].sub` (RFC 7644 §3.5.2, Figure 7).
//! * `engine`: applying a parsed message to a document, all or nothing (RFC 7644 §3.5.2).
//! * `write`: `add` and `replace` on one target (RFC 7644 §3.5.2.1, §3.5.2.3).
//! * `remove`: `remove` on one target (RFC 7644 §3.5.2.2).
//! * `values`: incoming values and multi-valued elements (RFC 7643 §2.4, §2.5).
//! * `json`: case-insensitive JSON object access and semantic equality (RFC 7643 §2.1, §2.5).

use serde_json::{Map, Value};

use crate::model::schema::AttrPath;
use crate::rules::filter::Filter;

mod engine;
mod json;
mod message;
mod path;
mod remove;
#[cfg(test)]
mod tests;
mod values;
mod write;

pub use engine::apply;
pub use message::parse_request;
pub use path::parse_path;

type Obj = Map<String, Value>;

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `add` (RFC 7644 §3.5.2.1).
    Add,
    /// `remove` (RFC 7644 §3.5.2.2).
    Remove,
    /// `replace` (RFC 7644 §3.5.2.3).
    Replace,
}

impl OpKind {
    /// The operation's name as RFC 7644 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }
}

/// A parsed PATCH path (RFC 7644 §3.5.2, Figure 7).
// The filter is held inline, as the module contract specifies; paths are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPath {
    /// attr[.sub] possibly URN-qualified, optionally with a value filter: `emails[type eq "work"].value`, `members[value eq "x"]`
    ///
    /// As produced by [`parse_path`], `attr` is canonical: the attribute's schema spelling, `uri`
    /// set only for extension attributes (to that extension's canonical URN), and `attr.sub`
    /// always `None`: the sub-attribute, with or without a filter, is in `sub`
    /// (`name.familyName` is `attr: name, sub: Some("familyName")`). [`apply`] also accepts a
    /// sub-attribute in `attr.sub`.
    Attr {
        /// The attribute, canonical (see above).
        attr: AttrPath,
        /// The value filter in `[ ]`, if any.
        filter: Option<Filter>,
        /// The sub-attribute after the attribute or filter, if any.
        sub: Option<String>,
    },
    /// a whole extension container, e.g. path "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    Extension(String),
}

/// One operation of a PatchOp message.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// The operation.
    pub op: OpKind,
    /// The target; `None` for an operation on the whole resource.
    pub path: Option<PatchPath>,
    /// The value as sent. `Some(Value::Null)` on add is a no-op and on replace unassigns the
    /// target (RFC 7643 §2.5). A `remove` keeps a value only if the client sent one (Entra).
    pub value: Option<Value>,
}
