//! SCIM error responses (RFC 7644 §3.12) for failures the host detects before or instead of
//! serving a request: every text a SCIM client can read comes from the guest, so a host holds
//! no SCIM wording of its own and loading another component changes all of it.

use crate::model::error::{ScimError, ScimType};
use crate::protocol::http::SCIM_JSON;

/// A complete error response, always small: status, headers and the SCIM `Error` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The response headers (content type, `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(String, String)>,
    /// The SCIM `Error` document (RFC 7644 §3.12).
    pub body: Vec<u8>,
}

/// A failure the host detected (mirrors the WIT `operator.host-failure` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFailure {
    /// The path is not a SCIM endpoint of any tenant (404).
    NotAnEndpoint,
    /// No bearer token was sent (401, RFC 6750 §3).
    MissingToken,
    /// The bearer token is unknown or revoked (401).
    InvalidToken,
    /// The route's body limit, in bytes.
    PayloadTooLarge(u64),
    /// The client did not send its body in time (408).
    BodyTimeout,
    /// The body could not be read (400).
    UnreadableBody,
    /// The tenant exceeded its request rate (429).
    RateLimited,
    /// The host serves as many requests as it can (503).
    AtCapacity,
    /// The request took longer than the host allows (503).
    TimedOut,
    /// The store could not be reached (503).
    StorageUnavailable,
    /// The component ran out of time (503).
    ComponentTimeout,
    /// The component ran out of memory (500).
    ComponentOutOfMemory,
    /// The component trapped (500).
    ComponentFailed,
}

/// RFC 6750 §3: a 401 names the scheme the client must use.
const BEARER_CHALLENGE: &str = r#"Bearer realm="scimlet""#;

impl HostFailure {
    /// The SCIM error this failure is reported as.
    pub fn error(self) -> ScimError {
        use HostFailure::*;
        match self {
            NotAnEndpoint => ScimError::not_found("not a SCIM endpoint"),
            MissingToken => ScimError::new(
                401,
                None,
                "a bearer token is required (Authorization: Bearer <token>)",
            ),
            InvalidToken => ScimError::new(401, None, "the bearer token is not valid"),
            PayloadTooLarge(limit) => {
                ScimError::new(413, None, format!("the request body exceeds {limit} bytes"))
            }
            BodyTimeout => ScimError::new(408, None, "the request body did not arrive in time"),
            UnreadableBody => ScimError::new(
                400,
                Some(ScimType::InvalidSyntax),
                "the request body could not be read",
            ),
            RateLimited => ScimError::new(
                429,
                None,
                "too many requests for this tenant; retry after the time in Retry-After",
            ),
            AtCapacity => ScimError::unavailable("the server is at capacity; retry shortly"),
            TimedOut => ScimError::unavailable("the request timed out; retry shortly"),
            StorageUnavailable => ScimError::unavailable("storage unavailable"),
            ComponentTimeout => ScimError::unavailable("the request exceeded its CPU time budget"),
            ComponentOutOfMemory => {
                ScimError::unavailable("the request exceeded its memory budget")
            }
            ComponentFailed => ScimError::internal("the SCIM component failed"),
        }
    }

    /// The complete response. `Retry-After` is the host's to add: only it knows the wait.
    pub fn response(self) -> Response {
        let error = self.error();
        let mut headers = vec![("content-type".to_string(), SCIM_JSON.to_string())];
        if error.status == 401 {
            headers.push(("www-authenticate".into(), BEARER_CHALLENGE.into()));
        }
        Response {
            status: error.status,
            headers,
            body: error.to_json().to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const ALL: [HostFailure; 13] = [
        HostFailure::NotAnEndpoint,
        HostFailure::MissingToken,
        HostFailure::InvalidToken,
        HostFailure::PayloadTooLarge(1_048_576),
        HostFailure::BodyTimeout,
        HostFailure::UnreadableBody,
        HostFailure::RateLimited,
        HostFailure::AtCapacity,
        HostFailure::TimedOut,
        HostFailure::StorageUnavailable,
        HostFailure::ComponentTimeout,
        HostFailure::ComponentOutOfMemory,
        HostFailure::ComponentFailed,
    ];

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn header<'r>(r: &'r Response, name: &str) -> Option<&'r str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_failure_is_an_rfc_7644_error_message() {
        for f in ALL {
            let r = f.response();
            let b = body(&r);
            assert_eq!(
                b["schemas"],
                serde_json::json!([crate::model::error::SCHEMA])
            );
            assert_eq!(
                b["schemas"][0],
                "urn:ietf:params:scim:api:messages:2.0:Error"
            );
            assert_eq!(
                b["status"],
                r.status.to_string(),
                "{f:?}: status is a string"
            );
            assert!(!b["detail"].as_str().unwrap().is_empty());
            assert_eq!(header(&r, "content-type"), Some("application/scim+json"));
            assert_eq!(header(&r, "retry-after"), None);
        }
    }

    #[test]
    fn statuses_and_texts_are_the_ones_clients_know() {
        let expect = [
            (HostFailure::NotAnEndpoint, 404, "not a SCIM endpoint"),
            (
                HostFailure::MissingToken,
                401,
                "a bearer token is required (Authorization: Bearer <token>)",
            ),
            (
                HostFailure::InvalidToken,
                401,
                "the bearer token is not valid",
            ),
            (
                HostFailure::PayloadTooLarge(1_048_576),
                413,
                "the request body exceeds 1048576 bytes",
            ),
            (
                HostFailure::BodyTimeout,
                408,
                "the request body did not arrive in time",
            ),
            (
                HostFailure::UnreadableBody,
                400,
                "the request body could not be read",
            ),
            (
                HostFailure::RateLimited,
                429,
                "too many requests for this tenant; retry after the time in Retry-After",
            ),
            (
                HostFailure::AtCapacity,
                503,
                "the server is at capacity; retry shortly",
            ),
            (
                HostFailure::TimedOut,
                503,
                "the request timed out; retry shortly",
            ),
            (HostFailure::StorageUnavailable, 503, "storage unavailable"),
            (
                HostFailure::ComponentTimeout,
                503,
                "the request exceeded its CPU time budget",
            ),
            (
                HostFailure::ComponentOutOfMemory,
                503,
                "the request exceeded its memory budget",
            ),
            (
                HostFailure::ComponentFailed,
                500,
                "the SCIM component failed",
            ),
        ];
        assert_eq!(expect.len(), ALL.len());
        for (f, status, detail) in expect {
            let r = f.response();
            assert_eq!(
                (r.status, body(&r)["detail"].as_str()),
                (status, Some(detail))
            );
        }
    }

    #[test]
    fn only_unreadable_bodies_carry_a_scim_type() {
        for f in ALL {
            let b = body(&f.response());
            let expected = (f == HostFailure::UnreadableBody).then_some("invalidSyntax");
            assert_eq!(b.get("scimType").and_then(Value::as_str), expected, "{f:?}");
        }
    }

    #[test]
    fn unauthorized_answers_challenge_for_a_bearer_token() {
        for f in ALL {
            let r = f.response();
            let challenge = header(&r, "www-authenticate");
            if r.status == 401 {
                assert_eq!(challenge, Some(r#"Bearer realm="scimlet""#));
            } else {
                assert_eq!(challenge, None, "{f:?}");
            }
        }
    }
}
