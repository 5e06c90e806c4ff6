//! The SCIM HTTP protocol: routing, status codes, headers and bodies (RFC 7644 §3).

use serde_json::Value;

use crate::model::error::{ScimError, ScimResult};
use crate::model::resource_type::Kind;
use crate::model::schema::urn;
use crate::ops::service::{ListParams, Service};
use crate::persist::repo::{etag_list_matches, etag_of};
use crate::persist::store::Store;
use crate::protocol::body::{self, Body, Limits};
use crate::protocol::discovery;
use crate::rules::group_input::GroupInput;
use crate::rules::resource::Projection;

/// The SCIM media type (RFC 7644 §3.1), of every response body.
pub const SCIM_JSON: &str = "application/scim+json";

/// An HTTP request below the SCIM base URL.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The HTTP method, upper case.
    pub method: String,
    /// The path below the SCIM base URL (`/Users/{id}`), percent-encoded.
    pub path: String,
    /// The query string without `?`, percent-encoded.
    pub query: String,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
    /// The tenant's SCIM base URL, for `meta.location` and `Location`.
    pub base_url: String,
    /// The tenant's policy JSON ([`crate::Policy`]).
    pub policy: String,
}

impl Request {
    /// A header's value, its name matched ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, by case-insensitive name, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| percent_decode(k).eq_ignore_ascii_case(name))
            .map(|(_, v)| percent_decode(v))
    }
}

/// The HTTP response to send; `'s` is the lifetime of the store a streamed body reads from.
#[derive(Debug)]
pub struct Response<'s> {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: Vec<(String, String)>,
    /// The body, complete or streamed.
    pub body: Body<'s>,
    /// The provisioning record of a write to `/Users` or `/Groups` ([`crate::protocol::audit`]), as JSON
    /// text for the host's audit log; never sent to the client.
    pub audit: Option<String>,
}

impl<'s> Response<'s> {
    fn new(status: u16, body: Body<'s>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), SCIM_JSON.into())],
            body,
            audit: None,
        }
    }

    fn json(status: u16, body: &Value) -> Self {
        Response::new(
            status,
            Body::Bytes(serde_json::to_vec(body).unwrap_or_default()),
        )
    }

    /// The SCIM `Error` response of an error (RFC 7644 §3.12).
    pub fn error(e: &ScimError) -> Self {
        Response::json(e.status, &e.to_json())
    }

    fn empty(status: u16) -> Self {
        Response {
            headers: Vec::new(),
            ..Response::new(status, Body::Bytes(Vec::new()))
        }
    }

    fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The response with its body read to the end (tests, hosts that cannot stream).
    pub fn collect(self) -> Result<Response<'static>, String> {
        Ok(Response {
            status: self.status,
            headers: self.headers,
            body: Body::Bytes(self.body.collect()?),
            audit: self.audit,
        })
    }

    /// The complete body's bytes; empty for a streamed body, which must be collected first.
    pub fn bytes(&self) -> &[u8] {
        match &self.body {
            Body::Bytes(b) => b,
            Body::Stream { .. } => &[],
        }
    }

    /// The complete body as JSON (for tests); `Null` for a streamed body.
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(self.bytes()).unwrap_or(Value::Null)
    }
}

/// A route whose requests may carry a body larger than the host's ordinary limit (WIT
/// `handler.large-body-route`): the method, and the first of exactly two path segments,
/// matched ignoring ASCII case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeBodyRoute {
    /// The HTTP method.
    pub method: &'static str,
    /// The first path segment (`Groups`).
    pub endpoint: &'static str,
}

/// The routes that take large bodies: a group replacement carries every member, and Okta
/// sends one on every membership change ([`crate::rules::group_input`]).
pub fn large_body_routes() -> &'static [LargeBodyRoute] {
    &[LargeBodyRoute {
        method: "PUT",
        endpoint: "Groups",
    }]
}

/// Serves one request. Never panics on client input; every failure is a SCIM error response.
pub fn handle<'s>(store: &'s dyn Store, req: &Request) -> Response<'s> {
    handle_with(store, req, Limits::DEFAULT)
}

/// [`handle`] with other streaming limits (tests render the same data streamed and whole).
pub fn handle_with<'s>(store: &'s dyn Store, req: &Request, limits: Limits) -> Response<'s> {
    #[cfg(feature = "fault-injection")]
    crate::fault::maybe_inject(store, req.header("x-scimlet-fault"));
    let svc = match Service::new(store, &req.base_url, &req.policy) {
        Ok(svc) => svc,
        Err(e) => return Response::error(&e),
    };
    let mut trail = Trail {
        limits,
        body: None,
        created: None,
    };
    let result = route(&svc, req, &mut trail);
    let audit = audit_record(req, &trail, result.as_ref().err());
    let mut resp = result.unwrap_or_else(|e| Response::error(&e));
    resp.audit = audit.map(|r| r.to_string());
    resp
}

/// What a request left for its audit record, and how it renders.
struct Trail {
    limits: Limits,
    /// The request body as the operation applied it (after dialect normalisation).
    body: Option<Value>,
    /// The id a creation assigned.
    created: Option<String>,
}

/// The provisioning record of a write to `/Users` or `/Groups`, `None` for anything else.
fn audit_record(req: &Request, trail: &Trail, error: Option<&ScimError>) -> Option<Value> {
    let action = crate::protocol::audit::Action::of(&req.method)?;
    let (kind, id) = match segments(&req.path).as_slice() {
        ["Users"] => (Kind::User, None),
        ["Groups"] => (Kind::Group, None),
        ["Users", id] if *id != ".search" => (Kind::User, Some(percent_decode(id))),
        ["Groups", id] if *id != ".search" => (Kind::Group, Some(percent_decode(id))),
        _ => return None,
    };
    Some(crate::protocol::audit::record(
        &crate::protocol::audit::Write {
            action,
            kind,
            id: id.as_deref().or(trail.created.as_deref()),
            body: trail.body.as_ref(),
            error,
        },
    ))
}

/// The endpoint names served, as RFC 7644 §3.2 and §4 spell them.
const ENDPOINTS: [&str; 9] = [
    "Users",
    "Groups",
    "Roles",
    "Schemas",
    "ResourceTypes",
    "ServiceProviderConfig",
    "Me",
    "Bulk",
    ".search",
];

/// An endpoint name in its RFC spelling, whatever the case it came in (`/users` → `Users`).
///
/// RFC 7644 §3.2 names the endpoints but does not say whether they match case-insensitively,
/// and RFC 3986 §6.2.2.1 leaves path case to the server. Microsoft's own SCIM validator and
/// reference Postman collection send `/users`; no two endpoints differ only in case, and
/// resource ids (RFC 7643 §3.1: `caseExact`) are never folded — only the endpoint segment is
/// (and `.search` after it).
fn endpoint(segment: &str) -> &str {
    ENDPOINTS
        .iter()
        .find(|e| e.eq_ignore_ascii_case(segment))
        .copied()
        .unwrap_or(segment)
}

/// The segments of a path below the SCIM base, the endpoint name (and a `.search` after it)
/// in its RFC spelling.
pub(crate) fn segments(path: &str) -> Vec<&str> {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(first) = segments.first_mut() {
        *first = endpoint(first);
    }
    if let [_, second] = segments.as_mut_slice() {
        if second.eq_ignore_ascii_case(".search") {
            *second = ".search";
        }
    }
    segments
}

fn route<'s>(svc: &Service<'s>, req: &Request, t: &mut Trail) -> ScimResult<Response<'s>> {
    let path = req.path.trim_end_matches('/');
    let segments = segments(path);
    let method = req.method.as_str();
    match segments.as_slice() {
        ["ServiceProviderConfig"] => {
            discovery_get(req, || Ok(discovery::service_provider_config(svc)))
        }
        ["Schemas"] => discovery_get(req, || Ok(discovery::schema_list(svc))),
        ["Schemas", id] => discovery_get(req, || discovery::schema_by_id(svc, &percent_decode(id))),
        ["ResourceTypes"] => discovery_get(req, || Ok(discovery::resource_type_list(svc))),
        ["ResourceTypes", id] => discovery_get(req, || {
            discovery::resource_type_by_id(svc, &percent_decode(id))
        }),
        [".search"] => match method {
            "POST" => search(svc, req, &[Kind::User, Kind::Group], t),
            _ => Err(not_allowed(method, path)),
        },
        [] => match method {
            "GET" => list(svc, req, &[Kind::User, Kind::Group], t),
            _ => Err(not_allowed(method, path)),
        },
        ["Roles"] => match method {
            "GET" => Ok(Response::json(
                200,
                &crate::ops::roles::list_resources(svc, &list_params(req))?,
            )),
            _ => Err(ScimError::method_not_allowed(
                "roles are defined by the organization's policy and are read-only",
            )),
        },
        ["Roles", id] => match method {
            "GET" => Ok(Response::json(
                200,
                &crate::ops::roles::get_resource(svc, &percent_decode(id))?,
            )),
            _ => Err(ScimError::method_not_allowed(
                "roles are defined by the organization's policy and are read-only",
            )),
        },
        ["Me", ..] => Err(ScimError::not_implemented(
            "/Me is not supported: tokens identify a tenant, not a user",
        )),
        ["Bulk"] => Err(ScimError::not_implemented(
            "bulk operations are not supported (see /ServiceProviderConfig)",
        )),
        [collection, rest @ ..] => {
            let kind = match *collection {
                "Users" => Kind::User,
                "Groups" => Kind::Group,
                _ => return Err(ScimError::not_found(format!("no SCIM endpoint at {path}"))),
            };
            resource_route(svc, req, kind, rest, t)
        }
    }
}

fn not_allowed(method: &str, path: &str) -> ScimError {
    ScimError::method_not_allowed(format!("{method} is not allowed on {path}"))
}

/// Discovery resources are read-only; query parameters are ignored, but a filter is refused
/// (RFC 7644 §4).
fn discovery_get(
    req: &Request,
    body: impl FnOnce() -> ScimResult<Value>,
) -> ScimResult<Response<'static>> {
    if req.method != "GET" {
        return Err(ScimError::method_not_allowed(format!(
            "{} is read-only",
            req.path
        )));
    }
    if req.param("filter").is_some() {
        return Err(ScimError::forbidden(
            "discovery endpoints do not support filtering",
        ));
    }
    Ok(Response::json(200, &body()?))
}

fn resource_route<'s>(
    svc: &Service<'s>,
    req: &Request,
    kind: Kind,
    rest: &[&str],
    t: &mut Trail,
) -> ScimResult<Response<'s>> {
    let method = req.method.as_str();
    match (rest, method) {
        ([], "GET") => list(svc, req, &[kind], t),
        ([], "POST") => {
            let (doc, proj) = match kind {
                Kind::Group => {
                    let input = group_body(svc, req, t)?;
                    let proj = projection(svc, req)?;
                    (svc.create_group(input)?, proj)
                }
                Kind::User => {
                    let body = kept_body(t, scim_body(svc, req, Some(kind))?);
                    let proj = projection(svc, req)?;
                    (svc.create(kind, body, &proj)?, proj)
                }
            };
            let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
            t.created = Some(id.to_string());
            let location = format!("{}{}/{id}", svc.base_url, svc.schema(kind).endpoint);
            let body = body::resource(svc, kind, &doc, &proj, t.limits)?;
            Ok(Response::new(201, body)
                .with_header("location", &location)
                .with_header("etag", etag_of(&doc)))
        }
        ([".search"], "POST") => search(svc, req, &[kind], t),
        ([id], _) => {
            let id = percent_decode(id);
            one_resource(svc, req, kind, &id, t)
        }
        _ => Err(not_allowed(method, &req.path)),
    }
}

fn one_resource<'s>(
    svc: &Service<'s>,
    req: &Request,
    kind: Kind,
    id: &str,
    t: &mut Trail,
) -> ScimResult<Response<'s>> {
    let if_match = req.header("if-match");
    let proj = projection(svc, req)?;
    let doc = match req.method.as_str() {
        "GET" => {
            let doc = svc.get(kind, id, &proj)?;
            if req
                .header("if-none-match")
                .is_some_and(|h| etag_list_matches(h, etag_of(&doc)))
            {
                return Ok(Response::empty(304).with_header("etag", etag_of(&doc)));
            }
            doc
        }
        "PUT" if kind == Kind::Group => {
            let input = group_body(svc, req, t)?;
            svc.replace_group(id, input, if_match)?
        }
        "PUT" => {
            let body = kept_body(t, scim_body(svc, req, Some(kind))?);
            svc.replace(kind, id, body, if_match, &proj)?
        }
        "PATCH" => {
            let body = kept_body(t, scim_body(svc, req, Some(kind))?);
            let doc = svc.patch(kind, id, body, if_match, &proj)?;
            if kind == Kind::Group
                && req.param("attributes").is_none()
                && svc.group_too_large_for_body(id, &proj)?
            {
                return Ok(Response::empty(204).with_header("etag", etag_of(&doc)));
            }
            doc
        }
        "DELETE" => {
            svc.delete(kind, id, if_match)?;
            return Ok(Response::empty(204));
        }
        other => return Err(not_allowed(other, &req.path)),
    };
    let body = body::resource(svc, kind, &doc, &proj, t.limits)?;
    Ok(Response::new(200, body).with_header("etag", etag_of(&doc)))
}

/// Keeps the normalised body for the audit record.
fn kept_body(t: &mut Trail, body: Value) -> &Value {
    t.body.insert(body)
}

fn projection(svc: &Service<'_>, req: &Request) -> ScimResult<Projection> {
    svc.projection(
        req.param("attributes").as_deref(),
        req.param("excludedAttributes").as_deref(),
    )
}

fn list<'s>(
    svc: &Service<'s>,
    req: &Request,
    kinds: &[Kind],
    t: &Trail,
) -> ScimResult<Response<'s>> {
    list_with(svc, kinds, &list_params(req), t)
}

fn list_params(req: &Request) -> ListParams {
    ListParams {
        filter: req.param("filter"),
        start_index: req.param("startIndex"),
        count: req.param("count"),
        sort_by: req.param("sortBy"),
        sort_order: req.param("sortOrder"),
        attributes: req.param("attributes"),
        excluded_attributes: req.param("excludedAttributes"),
    }
}

fn list_with<'s>(
    svc: &Service<'s>,
    kinds: &[Kind],
    params: &ListParams,
    t: &Trail,
) -> ScimResult<Response<'s>> {
    let proj = svc.projection(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let page = svc.query(kinds, params)?;
    Ok(Response::new(200, body::list(svc, &page, &proj, t.limits)?))
}

/// `POST .search` with a `SearchRequest` body (RFC 7644 §3.4.3).
fn search<'s>(
    svc: &Service<'s>,
    req: &Request,
    kinds: &[Kind],
    t: &Trail,
) -> ScimResult<Response<'s>> {
    let body = scim_body(svc, req, None)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    let field = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(schemas) = field("schemas") {
        let ok = schemas
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(urn::SEARCH_REQUEST)));
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain {}",
                urn::SEARCH_REQUEST
            )));
        }
    }
    let text = |name: &str| -> ScimResult<Option<String>> {
        match field(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Array(items)) => {
                let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                parts
                    .map(|p| Some(p.join(",")))
                    .ok_or_else(|| ScimError::invalid_syntax(format!("'{name}' must be strings")))
            }
            Some(_) => Err(ScimError::invalid_syntax(format!(
                "'{name}' has the wrong type"
            ))),
        }
    };
    let params = ListParams {
        filter: text("filter")?,
        start_index: text("startIndex")?,
        count: text("count")?,
        sort_by: text("sortBy")?,
        sort_order: text("sortOrder")?,
        attributes: text("attributes")?,
        excluded_attributes: text("excludedAttributes")?,
    };
    list_with(svc, kinds, &params, t)
}

/// The body with identity-provider dialects rewritten to RFC 7644 form ([`crate::rules::dialect`]),
/// for `kind`'s schema (`None`: a search request).
fn scim_body(svc: &Service<'_>, req: &Request, kind: Option<Kind>) -> ScimResult<Value> {
    let rs = kind.map(|k| svc.schema(k));
    crate::rules::dialect::normalize(json_body(req)?, &req.method, rs, &svc.policy)
}

/// A group body for POST and PUT, its members parsed into ids as they stream past
/// ([`crate::rules::group_input`]) and the rest normalised; kept for the audit record.
fn group_body(svc: &Service<'_>, req: &Request, t: &mut Trail) -> ScimResult<GroupInput> {
    check_body(req)?;
    let rules = svc.group_rules(&req.method);
    let mut input = GroupInput::parse(&req.body, rules).map_err(not_json)?;
    input.doc =
        crate::rules::dialect::normalize(input.doc, &req.method, Some(rules.rs), &svc.policy)?;
    t.body = Some(input.doc.clone());
    Ok(input)
}

/// Parses a JSON request body; accepts `application/scim+json`, `application/json` or none.
fn json_body(req: &Request) -> ScimResult<Value> {
    check_body(req)?;
    crate::rules::json::parse(&req.body).map_err(not_json)
}

fn not_json(e: serde_json::Error) -> ScimError {
    ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
}

/// Refuses a body of another media type, or none.
fn check_body(req: &Request) -> ScimResult<()> {
    if let Some(ct) = req.header("content-type") {
        let media = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !media.is_empty() && media != SCIM_JSON && media != "application/json" {
            return Err(ScimError::new(
                415,
                None,
                format!("unsupported content type '{media}': send {SCIM_JSON}"),
            ));
        }
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("the request body is empty"));
    }
    Ok(())
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query component. A `%` not followed by two
/// hex digits stays as it is, and bytes that are not UTF-8 become U+FFFD: malformed input decodes
/// to something, never to an error.
pub fn percent_decode(s: &str) -> String {
    // A `+` never occurs inside an escape, so it can become a space before the escapes are
    // decoded (and an escaped `%2B` still decodes to `+`).
    let spaced;
    let s = if s.contains('+') {
        spaced = s.replace('+', " ");
        &spaced
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_keeps_malformed_input() {
        assert_eq!(percent_decode("a+b%20c%2Bd"), "a b c+d");
        assert_eq!(
            percent_decode("userName%20eq%20%22x%22"),
            "userName eq \"x\""
        );
        assert_eq!(percent_decode("%C3%A9"), "é");
        // Not an escape: the `%` stays (a sign is not a hex digit).
        for kept in ["%", "%4", "%zz", "100%", "%%41", "%+1"] {
            let expected = kept.replace('+', " ").replace("%41", "A");
            assert_eq!(percent_decode(kept), expected, "{kept}");
        }
        assert_eq!(percent_decode("%FF%C3"), "\u{fffd}\u{fffd}");
    }
}
