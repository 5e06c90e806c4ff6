//! Per-tenant policy: which schemas a tenant has and how SCIM maps onto its org model.
//!
//! The host stores one JSON object per tenant. A `profile` picks the defaults (`standard`: RFC
//! behaviour; `writer`: the seed product's rules); every key present in the object overrides them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::identifiers;
use crate::model::resource_type::Kind;
use crate::model::schema::{self, urn, ResourceSchema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    #[default]
    Standard,
    Writer,
}

impl Profile {
    /// Every profile, in the order operators see them listed.
    pub const ALL: [Profile; 2] = [Profile::Standard, Profile::Writer];

    /// The name a policy object uses (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Standard => "standard",
            Profile::Writer => "writer",
        }
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Why a stored policy object is refused. The texts are shown to operators as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown profile '{given}' (expected one of: {})", profile_names().join(", "))]
    /// `profile` names no profile.
    UnknownProfile {
        /// The name given.
        given: String,
    },
    /// The text is not a JSON object, or a key has the wrong type or is unknown.
    #[error("{0}")]
    Malformed(String),
    /// The keys parse but contradict each other or an identifier rule.
    #[error("{0}")]
    Inconsistent(String),
}

/// The profile names, for listings and error messages.
pub fn profile_names() -> Vec<&'static str> {
    Profile::ALL.iter().map(|p| p.name()).collect()
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
    /// The profile the defaults came from.
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
    /// How a `POST /Groups` maps onto the product's teams.
    pub team_creation: TeamCreation,
    /// What a `DELETE /Groups/{id}` does to the team.
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
    /// A PATCH of a group with more members than this answers 204 No Content unless the request
    /// names `attributes` (RFC 7644 §3.5.2 allows either): IdPs send one PATCH per membership
    /// change and must not receive the whole member list each time.
    pub group_patch_body_max_members: u64,
    /// Which identity-provider dialect rules rewrite request bodies ([`crate::rules::dialect`]).
    #[serde(default)]
    pub dialect: Dialect,
    /// Test-only ([`crate::fault`]): `operator-panic` makes every tenant-bound operator call
    /// trap, so a test can tell which component ran a CLI command.
    #[cfg(feature = "fault-injection")]
    #[serde(default)]
    pub fault: Option<String>,
}

/// Per-rule switches of the dialect normaliser ([`crate::rules::dialect`]). Every rule is on by
/// default: each turns a documented non-RFC request shape from Okta or Microsoft Entra ID into
/// the RFC operation it means. A rule switched off gives the strict RFC answer instead (a 400).
/// In a policy object the keys are nested (`{"dialect": {"path-keys": false}}`) or dotted
/// (`{"dialect.path-keys": false}`); absent keys keep their default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Dialect {
    /// `"op": "Replace"` (Entra) is taken as `"replace"`.
    pub capitalised_ops: bool,
    /// A `remove` of a multi-valued attribute with a `value` list (Entra's default member
    /// removal) becomes one value-filter removal per listed value. Off: 400, never "remove all".
    pub remove_with_value: bool,
    /// Keys of a pathless add/replace value that are paths (`name.givenName`,
    /// `urn:…:enterprise:2.0:User:employeeNumber`) or schema containers become one operation
    /// per path (Entra with `aadOptscim062020`).
    pub path_keys: bool,
    /// A bare string for a single-valued complex attribute (`manager: "271"`) means
    /// `{"value": "271"}` (Entra).
    pub bare_manager: bool,
    /// `roles` values sent as JSON inside a string (Entra app-role assignments) are parsed.
    pub json_string_roles: bool,
    /// `add` with a value-filter path (`phoneNumbers[type eq "work"].value`) updates the
    /// matching value or creates it (upsert).
    pub add_filter_upsert: bool,
    /// A pathless PATCH value's container for a schema the resource type does not have
    /// (Okta's `urn:okta:custom:group:1.0`) is ignored, as POST and PUT ignore it.
    pub unknown_extensions: bool,
    /// An `attributes` entry with a value filter (`emails[type eq "work"]`, as Microsoft's
    /// validator sends) names the whole attribute (`emails`).
    pub filtered_attributes: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            capitalised_ops: true,
            remove_with_value: true,
            path_keys: true,
            bare_manager: true,
            json_string_roles: true,
            add_filter_upsert: true,
            unknown_extensions: true,
            filtered_attributes: true,
        }
    }
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
            group_patch_body_max_members: 1000,
            dialect: Dialect::default(),
            #[cfg(feature = "fault-injection")]
            fault: None,
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
    /// Requests under a refused policy fail with 500: the host should never have stored it.
    pub fn from_json(text: &str) -> ScimResult<Policy> {
        Policy::parse(text)
            .map_err(|e| ScimError::internal(format!("tenant policy is invalid: {e}")))
    }

    /// [`Policy::from_json`] with the reason as a value, for operators setting a policy.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let malformed = |e: serde_json::Error| PolicyError::Malformed(e.to_string());
        let mut overrides: Map<String, Value> = if text.trim().is_empty() {
            Map::new()
        } else {
            serde_json::from_str(text).map_err(malformed)?
        };
        let dialect = take_dialect(&mut overrides).map_err(PolicyError::Malformed)?;
        let profile = match overrides.get("profile") {
            Some(Value::String(name)) => {
                Profile::from_name(name).ok_or_else(|| PolicyError::UnknownProfile {
                    given: name.clone(),
                })?
            }
            Some(other) => serde_json::from_value(other.clone()).map_err(malformed)?,
            None => Profile::default(),
        };
        let mut merged = match serde_json::to_value(Policy::for_profile(profile)) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(PolicyError::Malformed(
                    "the profile defaults do not serialize".into(),
                ))
            }
        };
        merged.extend(overrides);
        if let Some(Value::Object(d)) = merged.get_mut("dialect") {
            d.extend(dialect);
        }
        let policy: Policy = serde_json::from_value(Value::Object(merged)).map_err(malformed)?;
        policy.check().map_err(PolicyError::Inconsistent)?;
        Ok(policy)
    }

    /// The effective policy of a stored policy object, as the JSON object operators see: every
    /// key, the profile's defaults filled in.
    pub fn effective_json(text: &str) -> ScimResult<String> {
        let policy = Policy::parse(text).map_err(|e| ScimError::invalid_value(e.to_string()))?;
        serde_json::to_string(&policy)
            .map_err(|e| ScimError::internal(format!("the policy does not serialize: {e}")))
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
        // The default team becomes a group's displayName on first use: refuse now what would
        // otherwise fail every user creation later.
        if let Some(team) = &self.default_team {
            identifiers::check_value(Kind::Group, "displayName", team)
                .map_err(|e| format!("default-team: {}", e.detail))?;
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

/// Takes the dialect keys out of a policy object, nested or dotted, so that they overlay the
/// profile's dialect key by key (hosts set policy keys one at a time, as flat dotted keys).
fn take_dialect(overrides: &mut Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut dialect = match overrides.remove("dialect") {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("'dialect' must be an object of rule switches".into()),
    };
    let dotted: Vec<String> = overrides
        .keys()
        .filter(|k| k.starts_with("dialect."))
        .cloned()
        .collect();
    for key in dotted {
        if let Some(v) = overrides.remove(&key) {
            dialect.insert(key["dialect.".len()..].to_string(), v);
        }
    }
    Ok(dialect)
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
        assert!(Policy::from_json(r#"{"dialect":{"no-such-rule":false}}"#).is_err());
        assert!(Policy::from_json(r#"{"dialect.no-such-rule":false}"#).is_err());
        assert!(Policy::from_json(r#"{"dialect":true}"#).is_err());
        assert!(Policy::from_json(r#"{"dialect.path-keys":"no"}"#).is_err());
        let err = Policy::from_json(r#"{"default-team":"Staff\u0000"}"#).unwrap_err();
        assert!(
            err.detail.contains("default-team: displayName"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn profile_names_are_the_serde_names() {
        assert_eq!(profile_names(), ["standard", "writer"]);
        for p in Profile::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
            assert_eq!(Profile::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn unknown_profile_lists_the_profiles() {
        let err = Policy::parse(r#"{"profile":"nope"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile 'nope' (expected one of: standard, writer)"
        );
        let err = Policy::from_json(r#"{"profile":"nope"}"#).unwrap_err();
        assert_eq!(err.status, 500);
        assert!(err
            .detail
            .starts_with("tenant policy is invalid: unknown profile"));
        assert!(matches!(
            Policy::parse(r#"{"profile":5}"#),
            Err(PolicyError::Malformed(_))
        ));
    }

    #[test]
    fn effective_policy_fills_every_key_and_keeps_the_serde_shape() {
        let text = Policy::effective_json(r#"{"profile":"writer","max-page-size":5000}"#).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut expected = Policy::for_profile(Profile::Writer);
        expected.max_page_size = 5000;
        assert_eq!(v, serde_json::to_value(&expected).unwrap());
        assert_eq!(v["profile"], "writer");
        assert_eq!(v["team-creation"], "link-only");
        assert_eq!(v["dialect"]["path-keys"], true);
        // The answer is itself a valid policy object that means the same.
        assert_eq!(Policy::parse(&text).unwrap(), expected);
        assert_eq!(
            Policy::effective_json("").unwrap(),
            serde_json::to_string(&Policy::default()).unwrap()
        );
    }

    #[test]
    fn effective_policy_refusals_are_invalid_value_without_prefix() {
        let cases = [
            (r#"{"roles":[]}"#, "roles must not be empty"),
            (
                r#"{"default-role":"owner"}"#,
                "default-role 'owner' is not one of the roles",
            ),
            (r#"{"profile":"nope"}"#, "unknown profile 'nope'"),
            (r#"{"no-such-key":1}"#, "no-such-key"),
            ("[1]", "invalid type"),
        ];
        for (policy, detail) in cases {
            let err = Policy::effective_json(policy).unwrap_err();
            assert_eq!(
                (err.status, err.scim_type),
                (400, Some(crate::model::error::ScimType::InvalidValue))
            );
            assert!(err.detail.contains(detail), "{policy}: {}", err.detail);
            assert!(
                !err.detail.contains("tenant policy is invalid"),
                "{}",
                err.detail
            );
        }
    }

    #[test]
    fn dialect_rules_default_on_and_switch_off_one_by_one() {
        for profile in ["standard", "writer"] {
            let p = Policy::from_json(&format!(r#"{{"profile":"{profile}"}}"#)).unwrap();
            assert_eq!(p.dialect, Dialect::default());
            assert!(p.dialect.capitalised_ops && p.dialect.remove_with_value);
        }
        let nested = Policy::from_json(r#"{"dialect":{"capitalised-ops":false}}"#).unwrap();
        let dotted = Policy::from_json(r#"{"dialect.capitalised-ops":false}"#).unwrap();
        assert_eq!(nested, dotted);
        assert!(!nested.dialect.capitalised_ops);
        assert!(nested.dialect.path_keys, "other rules keep their default");
        // Nested and dotted keys combine.
        let both = Policy::from_json(
            r#"{"dialect":{"path-keys":false},"dialect.bare-manager":false,"coerce-boolean-strings":false}"#,
        )
        .unwrap();
        assert!(!both.dialect.path_keys && !both.dialect.bare_manager);
        assert!(both.dialect.json_string_roles && !both.coerce_boolean_strings);
    }
}
