//! Resource documents: validating client input against the schema (RFC 7643 §2) and shaping
//! output (`returned`, `attributes`, `excludedAttributes`: RFC 7644 §3.4.2.5, §3.9).
//!
//! The stored form of a resource is its SCIM JSON with canonical attribute names, extension
//! attributes under their schema URN, `id`, `meta` (without `location`) and `schemas`; never
//! `password` or other `returned: never` attributes.

use serde_json::{Map, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{
    AttrPath, AttrType, Attribute, Mutability, ResourceSchema, Returned, Schema,
};

/// How lenient input validation is.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputRules {
    /// Accept `"True"` / `"false"` for boolean attributes.
    pub coerce_boolean_strings: bool,
}

/// Validates a POST or PUT body and returns the client-writable part of the resource, with
/// canonical names. Read-only attributes (`id`, `meta`, `groups`) and unknown attributes are
/// ignored (IdPs send them); `password` and other write-only attributes are dropped, never kept.
pub fn normalize_input(
    body: &Value,
    rs: &ResourceSchema,
    rules: InputRules,
) -> ScimResult<Map<String, Value>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    check_schemas(obj, rs)?;
    let mut out = Map::new();
    for (key, value) in obj {
        if value.is_null() || key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rs.extension(key) {
            let attrs = normalize_extension(ext, value, rules)?;
            if !attrs.is_empty() {
                out.insert(ext.id.clone(), Value::Object(attrs));
            }
            continue;
        }
        if key.eq_ignore_ascii_case("externalId") {
            let v = value
                .as_str()
                .ok_or_else(|| ScimError::invalid_value("'externalId' must be a string"))?;
            out.insert("externalId".into(), v.into());
            continue;
        }
        let Some(attr) = rs.core.attribute(key) else {
            continue;
        };
        if let Some(v) = writable_value(attr, value, rules)? {
            out.insert(attr.name.clone(), v);
        }
    }
    check_required(&rs.core, &out)?;
    Ok(out)
}

fn check_schemas(obj: &Map<String, Value>, rs: &ResourceSchema) -> ScimResult<()> {
    let Some(schemas) = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
    else {
        return Ok(());
    };
    let list = schemas
        .as_array()
        .filter(|a| a.iter().all(Value::is_string))
        .ok_or_else(|| ScimError::invalid_syntax("'schemas' must be an array of URN strings"))?;
    if !list
        .iter()
        .filter_map(Value::as_str)
        .any(|s| s.eq_ignore_ascii_case(&rs.core.id))
    {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {} for a {} resource",
            rs.core.id, rs.name
        )));
    }
    Ok(())
}

fn normalize_extension(
    ext: &Schema,
    value: &Value,
    rules: InputRules,
) -> ScimResult<Map<String, Value>> {
    let obj = value.as_object().ok_or_else(|| {
        ScimError::invalid_value(format!(
            "'{}' must be an object of extension attributes",
            ext.id
        ))
    })?;
    let mut out = Map::new();
    for (key, v) in obj {
        let Some(attr) = ext.attribute(key) else {
            continue;
        };
        if let Some(v) = writable_value(attr, v, rules)? {
            out.insert(attr.name.clone(), v);
        }
    }
    check_required(ext, &out)?;
    Ok(out)
}

/// The value to keep for a client-supplied attribute, or `None` when the client may not set it.
fn writable_value(attr: &Attribute, value: &Value, rules: InputRules) -> ScimResult<Option<Value>> {
    if attr.mutability == Mutability::ReadOnly {
        return Ok(None);
    }
    let v = check_value(attr, value, rules)?;
    // Write-only values (password) are checked like any other, then never kept.
    if attr.mutability == Mutability::WriteOnly || attr.returned == Returned::Never {
        return Ok(None);
    }
    Ok((!is_empty(&v)).then_some(v))
}

fn check_required(schema: &Schema, out: &Map<String, Value>) -> ScimResult<()> {
    for attr in schema.attributes.iter().filter(|a| a.required) {
        if !out.contains_key(&attr.name) {
            return Err(ScimError::invalid_value(format!(
                "required attribute '{}' is missing",
                attr.name
            )));
        }
    }
    Ok(())
}

/// Whether a value counts as unassigned (RFC 7643 §2.5).
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Checks a value against an attribute definition and returns it in canonical form.
pub fn check_value(attr: &Attribute, value: &Value, rules: InputRules) -> ScimResult<Value> {
    if attr.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            Value::Null => Vec::new(),
            // A single value where an array belongs: clients do this; it is unambiguous.
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.into_iter().filter(|v| !v.is_null()) {
            out.push(check_single(attr, item, rules)?);
        }
        check_primary(attr, &out)?;
        return Ok(Value::Array(out));
    }
    check_single(attr, value, rules)
}

fn check_primary(attr: &Attribute, items: &[Value]) -> ScimResult<()> {
    let primaries = items
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one '{}' value may be primary",
            attr.name
        )));
    }
    Ok(())
}

fn check_single(attr: &Attribute, value: &Value, rules: InputRules) -> ScimResult<Value> {
    let wrong =
        |what: &str| ScimError::invalid_value(format!("attribute '{}' must be {what}", attr.name));
    match attr.ty {
        AttrType::Complex => {
            let obj = value.as_object().ok_or_else(|| wrong("an object"))?;
            let mut out = Map::new();
            for (k, v) in obj {
                if v.is_null() {
                    continue;
                }
                let Some(sub) = attr.sub(k) else { continue };
                let v = check_single(sub, v, rules)?;
                if !is_empty(&v) {
                    out.insert(sub.name.clone(), v);
                }
            }
            Ok(Value::Object(out))
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let s = value.as_str().ok_or_else(|| wrong("a string"))?;
            check_canonical(attr, s)?;
            Ok(Value::String(s.to_string()))
        }
        AttrType::DateTime => {
            let s = value.as_str().ok_or_else(|| wrong("a dateTime string"))?;
            if !looks_like_datetime(s) {
                return Err(wrong("an xsd:dateTime such as 2026-01-01T00:00:00Z"));
            }
            Ok(Value::String(s.to_string()))
        }
        AttrType::Boolean => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if rules.coerce_boolean_strings && s.eq_ignore_ascii_case("true") => {
                Ok(Value::Bool(true))
            }
            Value::String(s) if rules.coerce_boolean_strings && s.eq_ignore_ascii_case("false") => {
                Ok(Value::Bool(false))
            }
            _ => Err(wrong("a boolean")),
        },
        AttrType::Integer => match value.as_i64() {
            Some(i) => Ok(Value::from(i)),
            None => Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong("a number")),
        },
    }
}

fn check_canonical(attr: &Attribute, s: &str) -> ScimResult<()> {
    if attr.enforce_canonical && !attr.canonical_values.iter().any(|c| c == s) {
        return Err(ScimError::invalid_value(format!(
            "'{s}' is not a valid value of '{}'; expected one of: {}",
            attr.name,
            attr.canonical_values.join(", ")
        )));
    }
    Ok(())
}

fn looks_like_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .iter()
            .all(|r| b[r.clone()].iter().all(u8::is_ascii_digit))
}

/// Which attributes a response carries (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// `attributes`: return only these (plus `returned: always`).
    pub attributes: Vec<AttrPath>,
    /// `excludedAttributes`: return all but these.
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// Parses the comma-separated `attributes` / `excludedAttributes` parameters.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Projection> {
        Ok(Projection {
            attributes: parse_list(attributes)?,
            excluded: parse_list(excluded)?,
        })
    }

    /// Whether `attributes` names this (top-level) attribute explicitly.
    pub fn requests(&self, name: &str) -> bool {
        self.attributes
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Whether the response must carry this (top-level) attribute's values; lets callers skip
    /// reading data nobody asked for (group members).
    pub fn wants(&self, rs: &ResourceSchema, name: &str) -> bool {
        let attr = rs.core.attribute(name);
        let requested = self
            .attributes
            .iter()
            .any(|p| p.uri_matches(rs) && p.name.eq_ignore_ascii_case(name));
        if attr.is_some_and(|a| a.returned == Returned::Request) {
            return requested;
        }
        if !self.attributes.is_empty() {
            return requested;
        }
        !self
            .excluded
            .iter()
            .any(|p| p.sub.is_none() && p.uri_matches(rs) && p.name.eq_ignore_ascii_case(name))
    }
}

impl AttrPath {
    fn uri_matches(&self, rs: &ResourceSchema) -> bool {
        self.uri
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(&rs.core.id))
    }
}

fn parse_list(text: Option<&str>) -> ScimResult<Vec<AttrPath>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            AttrPath::parse(s)
                .ok_or_else(|| ScimError::invalid_value(format!("'{s}' is not an attribute path")))
        })
        .collect()
}

/// Shapes a stored resource for a response: adds `meta.location`, drops what is never returned,
/// and applies the projection.
pub fn render(stored: &Value, rs: &ResourceSchema, proj: &Projection, base_url: &str) -> Value {
    let mut doc = stored.clone();
    if let (Some(id), Some(meta)) = (
        stored.get("id").and_then(Value::as_str),
        doc.get_mut("meta").and_then(Value::as_object_mut),
    ) {
        meta.insert(
            "location".into(),
            format!("{base_url}{}/{id}", rs.endpoint).into(),
        );
    }
    let Value::Object(map) = &mut doc else {
        return doc;
    };
    map.retain(|key, value| keep_top(rs, proj, key, value));
    doc
}

fn keep_top(rs: &ResourceSchema, proj: &Projection, key: &str, value: &mut Value) -> bool {
    if key == "schemas" || key == "id" {
        return true;
    }
    if let Some(ext) = rs.extension(key) {
        let Value::Object(inner) = value else {
            return false;
        };
        inner.retain(|k, v| match ext.attribute(k) {
            Some(attr) => keep_attr(proj, Some(&ext.id), attr, v),
            None => false,
        });
        return !inner.is_empty() || proj_names_container(proj, &ext.id);
    }
    let attr = rs
        .common
        .iter()
        .chain(rs.core.attributes.iter())
        .find(|a| a.name == key);
    match attr {
        Some(attr) => keep_attr(proj, None, attr, value),
        None => false,
    }
}

fn proj_names_container(proj: &Projection, urn: &str) -> bool {
    proj.attributes
        .iter()
        .any(|p| p.to_string().eq_ignore_ascii_case(urn))
}

/// Applies `returned` and the projection to one attribute (and its sub-attributes).
fn keep_attr(proj: &Projection, ext: Option<&str>, attr: &Attribute, value: &mut Value) -> bool {
    match attr.returned {
        Returned::Never => return false,
        Returned::Always => return true,
        _ => {}
    }
    let same = |p: &AttrPath| {
        let uri_ok = match (&p.uri, ext) {
            (None, _) => true,
            (Some(u), Some(e)) => u.eq_ignore_ascii_case(e),
            (Some(_), None) => true,
        };
        uri_ok && p.name.eq_ignore_ascii_case(&attr.name)
    };
    let whole_ext = |p: &AttrPath| ext.is_some_and(|e| p.to_string().eq_ignore_ascii_case(e));
    if !proj.attributes.is_empty() {
        let picks: Vec<&AttrPath> = proj.attributes.iter().filter(|p| same(p)).collect();
        if picks.is_empty() && !proj.attributes.iter().any(whole_ext) {
            return false;
        }
        if !picks.is_empty() && picks.iter().all(|p| p.sub.is_some()) {
            let subs: Vec<&str> = picks.iter().filter_map(|p| p.sub.as_deref()).collect();
            retain_subs(value, |name| {
                subs.iter().any(|s| s.eq_ignore_ascii_case(name))
            });
        }
    } else if attr.returned == Returned::Request {
        return false;
    }
    for p in proj.excluded.iter().filter(|p| same(p)) {
        match &p.sub {
            None => return false,
            Some(sub) => retain_subs(value, |name| !name.eq_ignore_ascii_case(sub)),
        }
    }
    !is_empty(value)
}

fn retain_subs(value: &mut Value, keep: impl Fn(&str) -> bool) {
    match value {
        Value::Object(m) => m.retain(|k, _| keep(k)),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(m) = item {
                    m.retain(|k, _| keep(k));
                }
            }
            items.retain(|i| !is_empty(i));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::Policy;
    use serde_json::json;

    fn users() -> ResourceSchema {
        Policy::from_json(r#"{"profile":"writer"}"#)
            .unwrap()
            .user_schema()
    }

    #[test]
    fn input_is_canonicalised_and_read_only_or_secret_parts_dropped() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "UserName": "ada@example.com", "id": "forged", "password": "hunter2", "groups": [],
            "meta": {"resourceType": "User"}, "unknownThing": 1, "nickName": null,
            "Active": "True",
            "emails": [{"Value": "ada@example.com", "primary": true, "type": "work"}],
            "urn:custom:params:scim:schemas:extension:writer:2.0:User": {"Role": "admin"},
        });
        let rules = InputRules {
            coerce_boolean_strings: true,
        };
        let out = normalize_input(&body, &users(), rules).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({
                "userName": "ada@example.com", "active": true,
                "emails": [{"value": "ada@example.com", "primary": true, "type": "work"}],
                "urn:custom:params:scim:schemas:extension:writer:2.0:User": {"role": "admin"},
            })
        );
    }

    #[test]
    fn bad_input_gets_the_right_error() {
        let rs = users();
        let r = InputRules::default();
        let err = |b: Value| normalize_input(&b, &rs, r).unwrap_err();
        assert_eq!(
            err(json!([])).scim_type,
            Some(crate::model::error::ScimType::InvalidSyntax)
        );
        assert_eq!(
            err(json!({"name": {"givenName": "x"}})).detail,
            "required attribute 'userName' is missing"
        );
        assert_eq!(
            err(json!({"userName": 5})).scim_type,
            Some(crate::model::error::ScimType::InvalidValue)
        );
        assert_eq!(
            err(json!({"userName": "a", "active": "yes"})).scim_type,
            Some(crate::model::error::ScimType::InvalidValue)
        );
        assert!(err(json!({"userName": "a", "active": "True"}))
            .detail
            .contains("boolean"));
        let two_primaries = json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]});
        assert!(err(two_primaries).detail.contains("primary"));
        let role = json!({"userName": "a", "urn:custom:params:scim:schemas:extension:writer:2.0:User": {"role": "owner"}});
        assert!(err(role).detail.contains("not a valid value"));
        let wrong_schema =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a"});
        assert_eq!(
            err(wrong_schema).scim_type,
            Some(crate::model::error::ScimType::InvalidSyntax)
        );
    }

    #[test]
    fn render_applies_projection_and_location() {
        let rs = users();
        let stored = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "userName": "ada",
            "name": {"givenName": "Ada", "familyName": "L"}, "emails": [{"value": "a@x", "type": "work"}],
            "meta": {"resourceType": "User", "version": "W/\"1\""},
        });
        let all = render(&stored, &rs, &Projection::default(), "http://h/scim/v2");
        assert_eq!(all["meta"]["location"], "http://h/scim/v2/Users/u1");
        let some = render(
            &stored,
            &rs,
            &Projection::parse(Some("userName,name.givenName"), None).unwrap(),
            "",
        );
        assert_eq!(
            some,
            json!({"schemas": stored["schemas"], "id": "u1", "userName": "ada", "name": {"givenName": "Ada"}})
        );
        let less = render(
            &stored,
            &rs,
            &Projection::parse(None, Some("emails,name.familyName,meta")).unwrap(),
            "",
        );
        assert_eq!(
            less,
            json!({"schemas": stored["schemas"], "id": "u1", "userName": "ada", "name": {"givenName": "Ada"}})
        );
    }
}
