//! SCIM errors (RFC 7644 §3.12): every failure the guest reports is one of these.

use std::fmt;

/// The `scimType` values of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax was invalid, or an operator is not supported for the attribute.
    InvalidFilter,
    /// The filter yields more results than the service provider will return.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The modification is incompatible with the attribute's mutability.
    Mutability,
    /// The request body is not valid SCIM JSON or does not match its schema.
    InvalidSyntax,
    /// The PATCH `path` attribute was invalid or malformed.
    InvalidPath,
    /// The PATCH `path` did not yield an attribute or value to operate on.
    NoTarget,
    /// A required value was missing, or a value is not compatible with the attribute.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI.
    Sensitive,
}

impl ScimType {
    /// The `scimType` text (RFC 7644 §3.12, Table 9).
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// A failed SCIM operation: HTTP status, optional `scimType` and a readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScimError {
    /// The HTTP status code (RFC 7644 §3.12 `status`).
    pub status: u16,
    /// The `scimType` detail error keyword, for 400 responses that have one.
    pub scim_type: Option<ScimType>,
    /// A human-readable message (`detail`); never echoes secrets.
    pub detail: String,
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl ScimError {
    /// An error with any status and `scimType`.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }
    /// 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }
    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }
    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }
    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }
    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }
    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }
    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    /// 404: the resource or endpoint does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    /// 412: an `If-Match` ETag no longer matches (RFC 7644 §3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }
    /// 405: the endpoint does not support the method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, None, detail)
    }
    /// 403: the tenant's policy does not allow the operation.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }
    /// 501: a SCIM feature this service provider does not offer.
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }
    /// 503: a transient failure; the client may retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }
    /// 500: a failure that is the service provider's fault.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// The RFC 7644 §3.12 error body; `status` is a string as the RFC's examples show.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = t.as_str().into();
        }
        body
    }
}

/// The schema URN of an error response (RFC 7644 §3.12). Defined here, not in
/// [`crate::model::schema::urn`] (which re-exports it as `ERROR`), so that this module depends on no
/// other: `schema` reports its errors through this one.
pub const SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Result alias for SCIM operations.
pub type ScimResult<T> = Result<T, ScimError>;
