//! The SCIM HTTP protocol: routing, status codes, headers and bodies (RFC 7644 §3).

use serde_json::Value;

use crate::discovery;
use crate::error::{ScimError, ScimResult};
use crate::repo::{etag_list_matches, etag_of, Kind};
use crate::resource::Projection;
use crate::schema::urn;
use crate::service::{ListParams, Service};
use crate::store::Store;

pub const SCIM_JSON: &str = "application/scim+json";

/// An HTTP request below the SCIM base URL.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub base_url: String,
    pub policy: String,
}

impl Request {
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

/// The HTTP response to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), SCIM_JSON.into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    fn json_text(status: u16, body: String) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), SCIM_JSON.into())],
            body: body.into_bytes(),
        }
    }

    pub fn error(e: &ScimError) -> Response {
        Response::json(e.status, &e.to_json())
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body as JSON (for tests).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Serves one request. Never panics on client input; every failure is a SCIM error response.
pub fn handle(store: &dyn Store, req: &Request) -> Response {
    #[cfg(feature = "fault-injection")]
    crate::fault::maybe_inject(store, req.header("x-scimlet-fault"));
    let svc = match Service::new(store, &req.base_url, &req.policy) {
        Ok(svc) => svc,
        Err(e) => return Response::error(&e),
    };
    let resp = route(&svc, req).unwrap_or_else(|e| Response::error(&e));
    with_audit_record(&svc, req, resp)
}

/// Attaches the provisioning record of a write (see [`crate::audit`]).
fn with_audit_record(svc: &Service<'_>, req: &Request, resp: Response) -> Response {
    if !matches!(req.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        return resp;
    }
    match crate::audit::record(svc, req, &resp) {
        Some(rec) => resp.with_header(crate::audit::HEADER, &rec.to_string()),
        None => resp,
    }
}

/// The request body after dialect normalisation, as the operation applied it.
pub(crate) fn normalized_body(svc: &Service<'_>, req: &Request, kind: Kind) -> ScimResult<Value> {
    scim_body(svc, req, Some(kind))
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

fn route(svc: &Service<'_>, req: &Request) -> ScimResult<Response> {
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
            "POST" => search(svc, req, &[Kind::User, Kind::Group]),
            _ => Err(not_allowed(method, path)),
        },
        [] => match method {
            "GET" => list(svc, req, &[Kind::User, Kind::Group]),
            _ => Err(not_allowed(method, path)),
        },
        ["Roles"] => match method {
            "GET" => Ok(Response::json(
                200,
                &crate::roles::list_resources(svc, &list_params(req))?,
            )),
            _ => Err(ScimError::method_not_allowed(
                "roles are defined by the organization's policy and are read-only",
            )),
        },
        ["Roles", id] => match method {
            "GET" => Ok(Response::json(
                200,
                &crate::roles::get_resource(svc, &percent_decode(id))?,
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
            resource_route(svc, req, kind, rest)
        }
    }
}

fn not_allowed(method: &str, path: &str) -> ScimError {
    ScimError::method_not_allowed(format!("{method} is not allowed on {path}"))
}

/// Discovery resources are read-only; query parameters are ignored, but a filter is refused
/// (RFC 7644 §4).
fn discovery_get(req: &Request, body: impl FnOnce() -> ScimResult<Value>) -> ScimResult<Response> {
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

fn resource_route(
    svc: &Service<'_>,
    req: &Request,
    kind: Kind,
    rest: &[&str],
) -> ScimResult<Response> {
    let method = req.method.as_str();
    match (rest, method) {
        ([], "GET") => list(svc, req, &[kind]),
        ([], "POST") => {
            let body = scim_body(svc, req, Some(kind))?;
            let proj = projection(svc, req)?;
            let doc = svc.create(kind, &body, &proj)?;
            let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
            let location = format!("{}{}/{id}", svc.base_url, svc.schema(kind).endpoint);
            Ok(
                Response::json_text(201, svc.render_text(kind, &doc, &proj)?)
                    .with_header("location", &location)
                    .with_header("etag", etag_of(&doc)),
            )
        }
        ([".search"], "POST") => search(svc, req, &[kind]),
        ([id], _) => {
            let id = percent_decode(id);
            one_resource(svc, req, kind, &id)
        }
        _ => Err(not_allowed(method, &req.path)),
    }
}

fn one_resource(svc: &Service<'_>, req: &Request, kind: Kind, id: &str) -> ScimResult<Response> {
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
        "PUT" => svc.replace(kind, id, &scim_body(svc, req, Some(kind))?, if_match, &proj)?,
        "PATCH" => {
            let doc = svc.patch(kind, id, &scim_body(svc, req, Some(kind))?, if_match, &proj)?;
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
    let text = svc.render_text(kind, &doc, &proj)?;
    Ok(Response::json_text(200, text).with_header("etag", etag_of(&doc)))
}

fn projection(svc: &Service<'_>, req: &Request) -> ScimResult<Projection> {
    svc.projection(
        req.param("attributes").as_deref(),
        req.param("excludedAttributes").as_deref(),
    )
}

fn list(svc: &Service<'_>, req: &Request, kinds: &[Kind]) -> ScimResult<Response> {
    list_with(svc, kinds, &list_params(req))
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

fn list_with(svc: &Service<'_>, kinds: &[Kind], params: &ListParams) -> ScimResult<Response> {
    let proj = svc.projection(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let page = svc.query(kinds, params)?;
    Ok(Response::json(200, &svc.list_response(&page, &proj)?))
}

/// `POST .search` with a `SearchRequest` body (RFC 7644 §3.4.3).
fn search(svc: &Service<'_>, req: &Request, kinds: &[Kind]) -> ScimResult<Response> {
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
    list_with(svc, kinds, &params)
}

/// The body with identity-provider dialects rewritten to RFC 7644 form ([`crate::dialect`]),
/// for `kind`'s schema (`None`: a search request).
fn scim_body(svc: &Service<'_>, req: &Request, kind: Option<Kind>) -> ScimResult<Value> {
    let rs = kind.map(|k| svc.schema(k));
    crate::dialect::normalize(json_body(req)?, &req.method, rs, &svc.policy)
}

/// Parses a JSON request body; accepts `application/scim+json`, `application/json` or none.
fn json_body(req: &Request) -> ScimResult<Value> {
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
    parse_json(&req.body)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

/// Parses JSON like `serde_json::from_slice` (with its nesting limit), but refuses an object
/// that names a key twice: serde_json silently keeps the last one, so `{"active": true,
/// "active": false}` would mean whatever the parser happened to do. SCIM attribute names are
/// case-insensitive, so `userName` and `USERNAME` are the same key too.
fn parse_json(body: &[u8]) -> serde_json::Result<Value> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = strict_json::NoDuplicateKeys.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

mod strict_json {
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// Builds a [`Value`] as its own `Deserialize` does, failing on a repeated object key.
    pub struct NoDuplicateKeys;

    impl<'de> DeserializeSeed<'de> for NoDuplicateKeys {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for NoDuplicateKeys {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(NoDuplicateKeys)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let (mut object, mut seen) = (Map::new(), HashSet::new());
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.to_lowercase()) {
                    return Err(de::Error::custom(format!("duplicate key {key:?}")));
                }
                let value = map.next_value_seed(NoDuplicateKeys)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
    }
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
