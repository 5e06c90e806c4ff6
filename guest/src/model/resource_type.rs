//! The resource types the guest stores (RFC 7643 §6: `User`, `Group`), and how an attribute path
//! is read from a stored document (canonical attribute names, see [`crate::rules::resource`]).

use serde_json::Value;

/// A resource type the guest stores (RFC 7643 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `User` (RFC 7643 §4.1), endpoint `/Users`.
    User,
    /// `Group` (RFC 7643 §4.2), endpoint `/Groups`.
    Group,
}

impl Kind {
    /// Every stored type (the store checker walks these).
    pub const ALL: [Kind; 2] = [Kind::User, Kind::Group];

    /// The resource type's name (`User`, `Group`): `meta.resourceType` and key segment.
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
}

/// The string values of an indexable attribute path (`userName`, or `emails.value` for a
/// sub-attribute of a multi-valued attribute) in a stored document (canonical names).
pub fn attr_values<'d>(doc: &'d Value, attr: &str) -> Vec<&'d str> {
    match attr.split_once('.') {
        None => doc.get(attr).and_then(Value::as_str).into_iter().collect(),
        Some((multi, sub)) => doc
            .get(multi)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get(sub).and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
