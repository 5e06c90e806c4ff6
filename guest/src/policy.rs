//! Per-tenant policy: which schemas a tenant has and how SCIM maps onto its org model.
//!
//! The host stores one JSON object per tenant. A `profile` picks the defaults (`standard`: RFC
//! behaviour; `writer`: the seed product's rules); every key present in the object overrides them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::schema::{self, urn, ResourceSchema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    #[default]
    Standard,
    Writer,
}

/// What `POST /Groups` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeamCreation {
    /// Creates a team.
    Create,
    /// Links to an existing team with exactly that name; any other name is refused.
    LinkOnly,
}

/// What `DELETE /Groups/{id}` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupDelete {
    Delete,
    /// Unlinks the team from the IdP; the team and its members stay.
    Unlink,
}

/// A tenant's policy, with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Policy {
    pub profile: Profile,
    /// Whether users carry the RFC 7643 §4.3 enterprise extension.
    pub enterprise_extension: bool,
    /// URN of the custom user extension that holds the role, if the tenant has one.
    pub role_extension: Option<String>,
    /// Name of the role attribute inside `role_extension`.
    pub role_attribute: String,
    /// The role values a user may hold.
    pub roles: Vec<String>,
    /// The role of a user created without one.
    pub default_role: Option<String>,
    /// The team every SCIM-created user joins.
    pub default_team: Option<String>,
    pub team_creation: TeamCreation,
    pub group_delete: GroupDelete,
    /// Page size when a list request gives no `count`.
    pub default_page_size: u32,
    /// Largest page a list request gets (RFC 7644 §3.4.2.4: the SP may lower `count`).
    pub max_page_size: u32,
    /// Accept `"True"`/`"false"` strings for boolean attributes (Microsoft Entra ID sends them).
    pub coerce_boolean_strings: bool,
    /// Accept unquoted filter values (`externalId eq jyoung`, as Entra documents).
    pub lenient_filter_values: bool,
    /// Largest share (percent) by which one request other than an explicit full replace may
    /// shrink a group's membership.
    pub max_group_shrink_percent: u8,
}

impl Policy {
    /// The defaults of a profile.
    pub fn for_profile(profile: Profile) -> Policy {
        let standard = Policy {
            profile,
            enterprise_extension: true,
            role_extension: None,
            role_attribute: "role".into(),
            roles: vec!["member".into(), "admin".into()],
            default_role: None,
            default_team: None,
            team_creation: TeamCreation::Create,
            group_delete: GroupDelete::Delete,
            default_page_size: 100,
            max_page_size: 1000,
            coerce_boolean_strings: true,
            lenient_filter_values: true,
            max_group_shrink_percent: 100,
        };
        match profile {
            Profile::Standard => standard,
            Profile::Writer => Policy {
                role_extension: Some(urn::WRITER_USER.into()),
                default_role: Some("member".into()),
                default_team: Some("Everyone".into()),
                team_creation: TeamCreation::LinkOnly,
                group_delete: GroupDelete::Unlink,
                ..standard
            },
        }
    }

    /// Parses the host's policy object: profile defaults overlaid with the keys present.
    pub fn from_json(text: &str) -> ScimResult<Policy> {
        let invalid = |e: String| ScimError::internal(format!("tenant policy is invalid: {e}"));
        let overrides: Map<String, Value> = if text.trim().is_empty() {
            Map::new()
        } else {
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?
        };
        let profile: Profile = match overrides.get("profile") {
            Some(p) => serde_json::from_value(p.clone()).map_err(|e| invalid(e.to_string()))?,
            None => Profile::default(),
        };
        let mut merged = match serde_json::to_value(Policy::for_profile(profile)) {
            Ok(Value::Object(m)) => m,
            _ => return Err(invalid("defaults do not serialize".into())),
        };
        merged.extend(overrides);
        let policy: Policy =
            serde_json::from_value(Value::Object(merged)).map_err(|e| invalid(e.to_string()))?;
        policy.check().map_err(invalid)?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), String> {
        if self.roles.is_empty() {
            return Err("roles must not be empty".into());
        }
        if let Some(r) = &self.default_role {
            if !self.roles.contains(r) {
                return Err(format!("default-role '{r}' is not one of the roles"));
            }
        }
        if self.max_page_size == 0 || self.default_page_size > self.max_page_size {
            return Err("page sizes must satisfy 0 < default-page-size <= max-page-size".into());
        }
        Ok(())
    }

    /// The User resource type as this tenant defines it.
    pub fn user_schema(&self) -> ResourceSchema {
        let mut extensions = Vec::new();
        if self.enterprise_extension {
            extensions.push(schema::enterprise_user());
        }
        if let Some(ext) = &self.role_extension {
            extensions.push(schema::role_extension(
                ext,
                &self.role_attribute,
                &self.roles,
            ));
        }
        ResourceSchema::new(
            "User",
            "/Users",
            "User Account",
            schema::core_user(),
            extensions,
        )
    }

    /// The Group resource type.
    pub fn group_schema(&self) -> ResourceSchema {
        ResourceSchema::new(
            "Group",
            "/Groups",
            "Group",
            schema::core_group(),
            Vec::new(),
        )
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::for_profile(Profile::Standard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_policy_is_standard() {
        assert_eq!(Policy::from_json("").unwrap(), Policy::default());
        assert_eq!(
            Policy::from_json("{}").unwrap().team_creation,
            TeamCreation::Create
        );
    }

    #[test]
    fn writer_profile_defaults_and_overrides() {
        let p = Policy::from_json(r#"{"profile":"writer","default-team":"Staff"}"#).unwrap();
        assert_eq!(p.team_creation, TeamCreation::LinkOnly);
        assert_eq!(p.group_delete, GroupDelete::Unlink);
        assert_eq!(p.default_team.as_deref(), Some("Staff"));
        assert!(p.user_schema().extension(urn::WRITER_USER).is_some());
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Policy::from_json(r#"{"profile":"nope"}"#).is_err());
        assert!(Policy::from_json(r#"{"roles":[]}"#).is_err());
        assert!(Policy::from_json(r#"{"default-role":"owner"}"#).is_err());
        assert!(Policy::from_json(r#"{"no-such-key":1}"#).is_err());
    }
}
