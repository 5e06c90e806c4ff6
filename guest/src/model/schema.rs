//! Schemas as data (RFC 7643 §2, §7): attribute characteristics drive validation, comparison,
//! filtering, PATCH and output, and `/Schemas` publishes exactly these definitions.

use serde_json::{json, Map, Value};

use crate::model::error::{ScimError, ScimResult};

/// Well-known URNs.
pub mod urn {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const WRITER_USER: &str = "urn:custom:params:scim:schemas:extension:writer:2.0:User";
    pub const ROLE: &str = "urn:scimlet:params:scim:schemas:core:2.0:Role";
    pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
    pub const SERVICE_PROVIDER_CONFIG: &str =
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
    pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
    pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
}

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
    /// Whether values of this type have an order (`gt`, `lt`, ... and sorting).
    pub fn is_ordered(self) -> bool {
        !matches!(
            self,
            AttrType::Boolean | AttrType::Binary | AttrType::Complex
        )
    }
}

/// RFC 7643 §2.2 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// RFC 7643 §2.2 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// RFC 7643 §2.2 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition with its characteristics.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: String,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: Vec<String>,
    /// Whether only `canonical_values` are accepted (a tenant's role values), rather than
    /// suggested as RFC 7643 §7 makes them by default.
    pub enforce_canonical: bool,
    pub reference_types: Vec<String>,
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// An attribute with the RFC 7643 §2.2 defaults.
    pub fn new(name: &str, ty: AttrType) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            enforce_canonical: false,
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, AttrType::String)
    }
    pub fn boolean(name: &str) -> Self {
        Self::new(name, AttrType::Boolean)
    }
    pub fn date_time(name: &str) -> Self {
        Self::new(name, AttrType::DateTime)
    }
    pub fn reference(name: &str, types: &[&str]) -> Self {
        let mut a = Self::new(name, AttrType::Reference);
        a.reference_types = types.iter().map(|s| s.to_string()).collect();
        a
    }
    pub fn complex(name: &str, subs: Vec<Attribute>) -> Self {
        let mut a = Self::new(name, AttrType::Complex);
        a.sub_attributes = subs;
        a
    }
    pub fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    pub fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    pub fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    pub fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    pub fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn only_canonical(mut self) -> Self {
        self.enforce_canonical = true;
        self
    }
    pub fn describe(mut self, d: &str) -> Self {
        self.description = d.to_string();
        self
    }

    /// The sub-attribute `name`, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// RFC 7643 §7 representation.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("type".into(), self.ty.as_str().into());
        m.insert("multiValued".into(), self.multi_valued.into());
        m.insert("description".into(), self.description.clone().into());
        m.insert("required".into(), self.required.into());
        if !self.canonical_values.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if matches!(
            self.ty,
            AttrType::String | AttrType::Reference | AttrType::Binary
        ) {
            m.insert("caseExact".into(), self.case_exact.into());
        }
        m.insert("mutability".into(), self.mutability.as_str().into());
        m.insert("returned".into(), self.returned.as_str().into());
        if self.ty != AttrType::Complex {
            m.insert("uniqueness".into(), self.uniqueness.as_str().into());
        }
        if self.ty == AttrType::Reference {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if self.ty == AttrType::Complex {
            m.insert(
                "subAttributes".into(),
                self.sub_attributes.iter().map(Attribute::to_json).collect(),
            );
        }
        Value::Object(m)
    }
}

/// A schema: an id (URN) and its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub id: String,
    pub name: String,
    pub description: String,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// RFC 7643 §7 representation, with `meta` for the `/Schemas/{id}` endpoint.
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urn::SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base_url}/Schemas/{}", self.id),
            },
        })
    }
}

/// The multi-valued sub-attributes of RFC 7643 §2.4 (`type`, `primary`, `display`, `value`, `$ref`).
fn multi_value(value_ty: AttrType, types: &[&str], extra: Vec<Attribute>) -> Vec<Attribute> {
    let mut subs = vec![
        Attribute::new("value", value_ty),
        Attribute::string("display"),
    ];
    subs.push(Attribute::string("type").canonical(types));
    subs.push(Attribute::boolean("primary"));
    subs.extend(extra);
    subs
}

/// RFC 7643 §4.1 core User schema.
pub fn core_user() -> Schema {
    let ro = Mutability::ReadOnly;
    Schema {
        id: urn::USER.into(),
        name: "User".into(),
        description: "User Account".into(),
        attributes: vec![
            Attribute::string("userName").required().unique().describe(
                "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.",
            ),
            Attribute::complex(
                "name",
                vec![
                    Attribute::string("formatted"),
                    Attribute::string("familyName"),
                    Attribute::string("givenName"),
                    Attribute::string("middleName"),
                    Attribute::string("honorificPrefix"),
                    Attribute::string("honorificSuffix"),
                ],
            )
            .describe("The components of the user's real name."),
            Attribute::string("displayName").describe("The name of the User, suitable for display to end-users."),
            Attribute::string("nickName").describe("The casual way to address the user in real life."),
            Attribute::reference("profileUrl", &["external"]).describe("A fully qualified URL pointing to a page representing the User's online profile."),
            Attribute::string("title").describe("The user's title, such as \"Vice President\"."),
            Attribute::string("userType").describe("Used to identify the relationship between the organization and the user."),
            Attribute::string("preferredLanguage").describe("Indicates the User's preferred written or spoken language."),
            Attribute::string("locale").describe("Used to indicate the User's default location."),
            Attribute::string("timezone").describe("The User's time zone in the 'Olson' time zone database format."),
            Attribute::boolean("active").describe("A Boolean value indicating the User's administrative status."),
            Attribute::string("password")
                .mutability(Mutability::WriteOnly)
                .returned(Returned::Never)
                .describe("The User's cleartext password. Accepted, never stored or returned."),
            Attribute::complex("emails", multi_value(AttrType::String, &["work", "home", "other"], vec![]))
                .multi()
                .describe("Email addresses for the user."),
            Attribute::complex("phoneNumbers", multi_value(AttrType::String, &["work", "home", "mobile", "fax", "pager", "other"], vec![]))
                .multi()
                .describe("Phone numbers for the User."),
            Attribute::complex("ims", multi_value(AttrType::String, &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"], vec![]))
                .multi()
                .describe("Instant messaging addresses for the User."),
            Attribute::complex("photos", multi_value(AttrType::Reference, &["photo", "thumbnail"], vec![]))
                .multi()
                .describe("URLs of photos of the User."),
            Attribute::complex(
                "addresses",
                vec![
                    Attribute::string("formatted"),
                    Attribute::string("streetAddress"),
                    Attribute::string("locality"),
                    Attribute::string("region"),
                    Attribute::string("postalCode"),
                    Attribute::string("country"),
                    Attribute::string("type").canonical(&["work", "home", "other"]),
                    Attribute::boolean("primary"),
                ],
            )
            .multi()
            .describe("A physical mailing address for this User."),
            Attribute::complex(
                "groups",
                vec![
                    Attribute::string("value").mutability(ro),
                    Attribute::reference("$ref", &["User", "Group"]).mutability(ro),
                    Attribute::string("display").mutability(ro),
                    Attribute::string("type").mutability(ro).canonical(&["direct", "indirect"]),
                ],
            )
            .multi()
            .mutability(ro)
            .describe("A list of groups to which the user belongs, derived from group memberships."),
            Attribute::complex("entitlements", multi_value(AttrType::String, &[], vec![]))
                .multi()
                .describe("A list of entitlements for the User."),
            Attribute::complex("roles", multi_value(AttrType::String, &[], vec![]))
                .multi()
                .describe("A list of roles for the User."),
            Attribute::complex("x509Certificates", multi_value(AttrType::Binary, &[], vec![]))
                .multi()
                .describe("A list of certificates issued to the User."),
        ],
    }
}

/// RFC 7643 §4.3 Enterprise User extension.
pub fn enterprise_user() -> Schema {
    Schema {
        id: urn::ENTERPRISE_USER.into(),
        name: "EnterpriseUser".into(),
        description: "Enterprise User".into(),
        attributes: vec![
            Attribute::string("employeeNumber")
                .describe("Numeric or alphanumeric identifier assigned to a person."),
            Attribute::string("costCenter").describe("Identifies the name of a cost center."),
            Attribute::string("organization").describe("Identifies the name of an organization."),
            Attribute::string("division").describe("Identifies the name of a division."),
            Attribute::string("department").describe("Identifies the name of a department."),
            Attribute::complex(
                "manager",
                vec![
                    Attribute::string("value")
                        .describe("The id of the SCIM resource representing the User's manager."),
                    Attribute::reference("$ref", &["User"]),
                    Attribute::string("displayName").mutability(Mutability::ReadOnly),
                ],
            )
            .describe("The User's manager."),
        ],
    }
}

/// RFC 7643 §4.2 core Group schema.
pub fn core_group() -> Schema {
    Schema {
        id: urn::GROUP.into(),
        name: "Group".into(),
        description: "Group".into(),
        attributes: vec![
            Attribute::string("displayName")
                .required()
                .unique()
                .describe("A human-readable name for the Group."),
            Attribute::complex(
                "members",
                vec![
                    Attribute::string("value").mutability(Mutability::Immutable),
                    Attribute::reference("$ref", &["User", "Group"])
                        .mutability(Mutability::Immutable),
                    Attribute::string("display").mutability(Mutability::ReadOnly),
                    Attribute::string("type")
                        .mutability(Mutability::Immutable)
                        .canonical(&["User", "Group"]),
                ],
            )
            .multi()
            .describe("A list of members of the Group."),
        ],
    }
}

/// A tenant's custom user extension holding the role attribute (the "writer" profile's
/// `urn:custom:params:scim:schemas:extension:writer:2.0:User`).
pub fn role_extension(id: &str, attribute: &str, roles: &[String]) -> Schema {
    let values: Vec<&str> = roles.iter().map(String::as_str).collect();
    Schema {
        id: id.to_string(),
        name: "RoleExtension".into(),
        description: "The user's role in the product".into(),
        attributes: vec![Attribute::string(attribute)
            .canonical(&values)
            .only_canonical()
            .describe("The user's role in the organization.")],
    }
}

/// The read-only `/Roles` resource schema.
pub fn role_schema() -> Schema {
    let ro = Mutability::ReadOnly;
    Schema {
        id: urn::ROLE.into(),
        name: "Role".into(),
        description: "A role that users of this organization can hold".into(),
        attributes: vec![
            Attribute::string("value")
                .mutability(ro)
                .unique()
                .case_exact()
                .describe("The role value sent by identity providers."),
            Attribute::string("display")
                .mutability(ro)
                .describe("A human-readable name for the role."),
            Attribute::boolean("default")
                .mutability(ro)
                .describe("Whether users without an explicit role hold this role."),
        ],
    }
}

/// The common attributes of every resource (RFC 7643 §3.1), which no schema lists.
pub fn common_attributes() -> Vec<Attribute> {
    let ro = Mutability::ReadOnly;
    vec![
        Attribute::string("id")
            .case_exact()
            .mutability(ro)
            .returned(Returned::Always)
            .unique(),
        Attribute::string("externalId").case_exact(),
        Attribute::complex(
            "meta",
            vec![
                Attribute::string("resourceType")
                    .case_exact()
                    .mutability(ro),
                Attribute::date_time("created").mutability(ro),
                Attribute::date_time("lastModified").mutability(ro),
                Attribute::reference("location", &["uri"])
                    .case_exact()
                    .mutability(ro),
                Attribute::string("version").case_exact().mutability(ro),
            ],
        )
        .mutability(ro),
    ]
}

/// An attribute path `[URN ":"] attr ["." sub]` (RFC 7644 §3.10), not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub uri: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses the textual form. The URN ends at the last `:` (an attribute name never contains
    /// one), so the `.` of `2.0` inside a URN never splits the path.
    pub fn parse(text: &str) -> Option<AttrPath> {
        let (uri, rest) = match text.rfind(':') {
            Some(i) => (Some(&text[..i]), &text[i + 1..]),
            None => (None, text),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let valid_name = |s: &str| {
            let mut chars = s.chars();
            match chars.next() {
                Some('$') => s == "$ref",
                Some(c) if c.is_ascii_alphabetic() => {
                    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                }
                _ => false,
            }
        };
        if !valid_name(name)
            || sub.is_some_and(|s| !valid_name(s))
            || uri.is_some_and(|u| u.is_empty())
        {
            return None;
        }
        Some(AttrPath {
            uri: uri.map(str::to_string),
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }
}

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.uri {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Where an attribute lives in a resource document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container<'a> {
    /// Top level: a core schema or common attribute.
    Core,
    /// Inside the extension object keyed by this schema URN.
    Extension(&'a str),
}

/// An attribute path resolved against a resource type's schemas.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub container: Container<'a>,
    pub attr: &'a Attribute,
    pub sub: Option<&'a Attribute>,
}

impl<'a> Resolved<'a> {
    /// The attribute the path finally designates (the sub-attribute if any).
    pub fn target(&self) -> &'a Attribute {
        self.sub.unwrap_or(self.attr)
    }
}

/// A resource type (RFC 7643 §6) with its schemas: the complete definition the guest enforces.
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub description: String,
    pub core: Schema,
    pub extensions: Vec<Schema>,
    pub common: Vec<Attribute>,
}

impl ResourceSchema {
    pub fn new(
        id: &str,
        endpoint: &str,
        description: &str,
        core: Schema,
        extensions: Vec<Schema>,
    ) -> Self {
        ResourceSchema {
            id: id.into(),
            name: id.into(),
            endpoint: endpoint.into(),
            description: description.into(),
            core,
            extensions,
            common: common_attributes(),
        }
    }

    /// The extension schema with this URN, case-insensitively.
    pub fn extension(&self, uri: &str) -> Option<&Schema> {
        self.extensions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(uri))
    }

    /// Whether `uri` names this resource type's core schema or one of its extensions.
    pub fn knows_schema(&self, uri: &str) -> bool {
        self.core.id.eq_ignore_ascii_case(uri) || self.extension(uri).is_some()
    }

    /// Resolves a path; unknown attributes are `invalidPath` (callers re-map for filters).
    pub fn resolve<'s>(&'s self, path: &AttrPath) -> ScimResult<Resolved<'s>> {
        let unknown =
            || ScimError::invalid_path(format!("unknown attribute '{path}' for {}", self.name));
        let (container, attr) = match &path.uri {
            Some(uri) if self.core.id.eq_ignore_ascii_case(uri) => {
                (Container::Core, self.core.attribute(&path.name))
            }
            Some(uri) => {
                let ext = self.extension(uri).ok_or_else(unknown)?;
                (
                    Container::Extension(ext.id.as_str()),
                    ext.attribute(&path.name),
                )
            }
            None => {
                let attr = self
                    .common
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&path.name))
                    .or_else(|| self.core.attribute(&path.name));
                match attr {
                    Some(a) => (Container::Core, Some(a)),
                    None => {
                        let found = self
                            .extensions
                            .iter()
                            .find_map(|s| s.attribute(&path.name).map(|a| (s, a)));
                        match found {
                            Some((s, a)) => (Container::Extension(s.id.as_str()), Some(a)),
                            None => (Container::Core, None),
                        }
                    }
                }
            }
        };
        let attr = attr.ok_or_else(unknown)?;
        let sub = match &path.sub {
            Some(s) => Some(attr.sub(s).ok_or_else(unknown)?),
            None => None,
        };
        Ok(Resolved {
            container,
            attr,
            sub,
        })
    }

    /// All schema URNs, core first.
    pub fn schema_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.core.id.as_str()).chain(self.extensions.iter().map(|s| s.id.as_str()))
    }

    /// RFC 7643 §6 representation.
    pub fn resource_type_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urn::RESOURCE_TYPE],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
            "schemaExtensions": self.extensions.iter().map(|s| json!({"schema": s.id, "required": false})).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base_url}/ResourceTypes/{}", self.id),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_paths_never_split_on_the_version_dot() {
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(p.uri.as_deref(), Some(urn::ENTERPRISE_USER));
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = AttrPath::parse("name.givenName").unwrap();
        assert_eq!(
            (p.uri, p.name.as_str(), p.sub.as_deref()),
            (None, "name", Some("givenName"))
        );
        assert!(AttrPath::parse("1abc").is_none());
        assert!(AttrPath::parse("a b").is_none());
        assert!(AttrPath::parse("members.$ref").is_some());
    }

    #[test]
    fn resolution_is_case_insensitive_and_finds_extensions() {
        let rs = ResourceSchema::new(
            "User",
            "/Users",
            "User Account",
            core_user(),
            vec![enterprise_user()],
        );
        let r = rs.resolve(&AttrPath::parse("USERNAME").unwrap()).unwrap();
        assert_eq!(r.attr.name, "userName");
        let r = rs
            .resolve(&AttrPath::parse("emails.Value").unwrap())
            .unwrap();
        assert_eq!(r.target().name, "value");
        let r = rs
            .resolve(&AttrPath::parse("employeeNumber").unwrap())
            .unwrap();
        assert_eq!(r.container, Container::Extension(urn::ENTERPRISE_USER));
        let r = rs
            .resolve(&AttrPath::parse("meta.lastModified").unwrap())
            .unwrap();
        assert_eq!(r.target().ty, AttrType::DateTime);
        assert!(rs.resolve(&AttrPath::parse("nope").unwrap()).is_err());
        assert!(rs
            .resolve(&AttrPath::parse("urn:x:y:nope").unwrap())
            .is_err());
    }
}
