//! The key layout of a tenant's store: every key the guest writes starts with one of the
//! prefixes here, and every key is built here, so the writer ([`crate::persist::repo`],
//! [`crate::persist::members`]) and the checker ([`crate::ops::check`]) cannot disagree.
//!
//! Resources and their secondary indexes:
//! - `r/{Type}/{id}`: the stored resource document (ids are time-ordered, so this is creation order);
//! - `u/{Type}/{attr}/{value}`: unique index, value = id (`userName`, group `displayName`);
//! - `n/{Type}/{attr}/{value}\u{1f}{id}`: non-unique index, empty value (`externalId`, `emails.value`).
//!
//! Membership ([`crate::persist::members`]):
//! - `m/{group}/{user}` and `g/{user}/{group}`: the edge and its reverse (empty values);
//! - `s/Group/{group}`: the group's membership stamp (`lastModified`);
//! - `s/User/{user}`: the user's membership stamp.
//!
//! Test builds only (feature `fault-injection`): `fault/release`, see `crate::fault`.
//!
//! The guest keeps no audit keys: the host stores the audit log ([`crate::protocol::audit`]).

use serde_json::Value;

use crate::model::resource_type::{attr_values, Kind};

/// Prefix of every resource document key.
pub const RESOURCES: &str = "r/";
/// Prefix of every unique index key.
pub const UNIQUE: &str = "u/";
/// Prefix of every non-unique index key.
pub const MULTI: &str = "n/";
/// Prefix of every membership edge key (`m/{group}/{user}`).
pub const EDGES: &str = "m/";
/// Prefix of every reverse membership edge key (`g/{user}/{group}`).
pub const REVERSE_EDGES: &str = "g/";
/// Prefix of every membership stamp key.
pub const STAMPS: &str = "s/";
/// The key the `wait` fault polls for (`crate::fault`).
#[cfg(feature = "fault-injection")]
pub const FAULT_RELEASE: &str = "fault/release";

/// Key of the guest's internal, never-rendered state inside a stored document (a team's link
/// to its identity-provider group).
pub const INTERNAL: &str = "urn:scimlet:internal";

/// Separates the value from the id in a non-unique index key.
pub const SEP: char = '\u{1f}';

/// One secondary index.
#[derive(Debug, Clone, Copy)]
pub struct IndexDef {
    /// Attribute path as filters name it (`userName`, `emails.value`).
    pub attr: &'static str,
    pub unique: bool,
    pub case_fold: bool,
}

impl Kind {
    /// The secondary indexes the repository keeps for this type.
    pub fn indexes(self) -> &'static [IndexDef] {
        match self {
            Kind::User => &[
                IndexDef {
                    attr: "userName",
                    unique: true,
                    case_fold: true,
                },
                IndexDef {
                    attr: "externalId",
                    unique: false,
                    case_fold: false,
                },
                IndexDef {
                    attr: "emails.value",
                    unique: false,
                    case_fold: true,
                },
            ],
            Kind::Group => &[
                IndexDef {
                    attr: "displayName",
                    unique: true,
                    case_fold: true,
                },
                IndexDef {
                    attr: "externalId",
                    unique: false,
                    case_fold: false,
                },
            ],
        }
    }

    /// The index of an attribute path (ASCII case-insensitive), if it is indexed.
    pub fn index(self, attr: &str) -> Option<&'static IndexDef> {
        self.indexes()
            .iter()
            .find(|i| i.attr.eq_ignore_ascii_case(attr))
    }

    /// Prefix of every document key of this type (`r/{Type}/`).
    pub fn resource_prefix(self) -> String {
        format!("{RESOURCES}{}/", self.name())
    }

    /// The document key of a resource (`r/{Type}/{id}`).
    pub fn resource_key(self, id: &str) -> String {
        format!("{RESOURCES}{}/{id}", self.name())
    }
}

impl IndexDef {
    pub fn normalize(&self, value: &str) -> String {
        if self.case_fold {
            value.to_lowercase()
        } else {
            value.to_string()
        }
    }
    /// The unique index key of a value.
    pub(crate) fn unique_key(&self, kind: Kind, value: &str) -> String {
        format!(
            "{UNIQUE}{}/{}/{}",
            kind.name(),
            self.attr,
            self.normalize(value)
        )
    }
    /// The prefix of every non-unique index key of a value (then the id).
    pub(crate) fn multi_prefix(&self, kind: Kind, value: &str) -> String {
        format!(
            "{MULTI}{}/{}/{}{SEP}",
            kind.name(),
            self.attr,
            self.normalize(value)
        )
    }

    /// Every key of this index starts with this.
    pub fn key_prefix(&self, kind: Kind) -> String {
        let family = if self.unique { UNIQUE } else { MULTI };
        format!("{family}{}/{}/", kind.name(), self.attr)
    }

    /// The key recording that resource `id` has the (normalized) value.
    pub fn key(&self, kind: Kind, id: &str, normalized: &str) -> String {
        if self.unique {
            format!("{}{normalized}", self.key_prefix(kind))
        } else {
            format!("{}{normalized}{SEP}{id}", self.key_prefix(kind))
        }
    }

    /// The normalized, deduplicated values a document is indexed under.
    pub fn normalized_values(&self, doc: &Value) -> Vec<String> {
        let mut v: Vec<String> = self
            .values(doc)
            .into_iter()
            .map(|s| self.normalize(s))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The values of this attribute in a document.
    fn values<'d>(&self, doc: &'d Value) -> Vec<&'d str> {
        attr_values(doc, self.attr)
    }
}

// ---- membership ----

pub fn edge(group: &str, user: &str) -> String {
    format!("{}{user}", members_prefix(group))
}

/// The prefix of every member edge of a group.
pub fn members_prefix(group: &str) -> String {
    format!("{EDGES}{group}/")
}

/// The group and user of a membership edge key (`m/{group}/{user}`); `None` for other keys.
pub fn split_edge(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix(EDGES)?.split_once('/')
}

pub fn reverse(user: &str, group: &str) -> String {
    format!("{}{group}", groups_prefix(user))
}

pub fn group_stamp(group: &str) -> String {
    format!("{STAMPS}Group/{group}")
}

pub fn user_stamp(user: &str) -> String {
    format!("{STAMPS}User/{user}")
}

/// The prefix of every reverse edge of a user: the groups it belongs to.
pub fn groups_prefix(user: &str) -> String {
    format!("{REVERSE_EDGES}{user}/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::identifiers::{limit, LIMITS};

    #[test]
    fn every_index_has_a_limit_and_every_limit_an_index() {
        for kind in Kind::ALL {
            for index in kind.indexes() {
                assert!(limit(kind, index.attr).is_some(), "{}", index.attr);
            }
        }
        for l in &LIMITS {
            assert!(l.kind.index(l.attr).is_some(), "{}", l.attr);
        }
    }
}
