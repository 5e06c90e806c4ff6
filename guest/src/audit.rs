//! The provisioning record of one write request: what the IdP asked for, after dialect
//! normalisation, with secrets removed. The handler attaches it to the response as the
//! [`HEADER`] header; the host strips that header and appends the record to the tenant's audit
//! log with the time, the caller and the result.

use serde_json::{json, Map, Value};

use crate::http::{Request, Response};
use crate::repo::Kind;
use crate::service::Service;

/// Response header carrying the record from guest to host (never sent to clients).
pub const HEADER: &str = "x-scimlet-audit";

/// The record for a write to `/Users` or `/Groups`, or `None` for reads and other endpoints.
pub fn record(svc: &Service<'_>, req: &Request, resp: &Response) -> Option<Value> {
    let action = match req.method.as_str() {
        "POST" => "create",
        "PUT" => "replace",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => return None,
    };
    let (kind, id) = match crate::http::segments(&req.path).as_slice() {
        ["Users"] => (Kind::User, None),
        ["Groups"] => (Kind::Group, None),
        ["Users", id] if *id != ".search" => (Kind::User, Some(crate::http::percent_decode(id))),
        ["Groups", id] if *id != ".search" => (Kind::Group, Some(crate::http::percent_decode(id))),
        _ => return None,
    };
    let response_body = resp.json_body();
    let id = id.or_else(|| {
        response_body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let mut rec = Map::new();
    rec.insert("action".into(), action.into());
    rec.insert("resource".into(), kind.name().into());
    if let Some(id) = id {
        rec.insert("id".into(), id.into());
    }
    // The normalised request, as the guest applied it (re-derived: writes are rare enough).
    if let Ok(body) = crate::http::normalized_body(svc, req, kind) {
        match action {
            "patch" => {
                let ops = body.get("Operations").cloned().unwrap_or(Value::Null);
                rec.insert("operations".into(), redact(ops));
            }
            "create" | "replace" => {
                let attrs: Vec<Value> = body
                    .as_object()
                    .map(|o| {
                        o.keys()
                            .filter(|k| !is_secret(k))
                            .map(|k| Value::from(k.as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                rec.insert("attributes".into(), Value::Array(attrs));
                for name in ["userName", "displayName", "externalId"] {
                    if let Some(v) = body.get(name) {
                        rec.insert(name.into(), redact(v.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    if resp.status >= 400 {
        rec.insert("error".into(), json!({"scimType": response_body.get("scimType"), "detail": response_body.get("detail")}));
    }
    Some(Value::Object(rec))
}

fn is_secret(key: &str) -> bool {
    key.eq_ignore_ascii_case("password")
}

/// Removes passwords anywhere in a value (PATCH values may carry them).
fn redact(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let path_is_secret = m
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| p.rsplit(':').next().is_some_and(is_secret));
            Value::Object(
                m.into_iter()
                    .filter(|(k, _)| !is_secret(k))
                    .map(|(k, v)| {
                        if path_is_secret && k == "value" {
                            (k, Value::from("[redacted]"))
                        } else {
                            (k, redact(v))
                        }
                    })
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(redact).collect()),
        Value::String(text) if text.len() > MAX_TEXT => {
            let cut = (0..=MAX_TEXT)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            Value::String(format!("{}… ({} bytes)", &text[..cut], text.len()))
        }
        other => other,
    }
}

/// Longest text kept in a record: the log is for reading, and hostile values can be huge.
const MAX_TEXT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_record() {
        let ops = json!([
            {"op": "replace", "value": {"password": "hunter2", "active": false}},
            {"op": "replace", "path": "password", "value": "hunter3"},
        ]);
        let text = redact(ops).to_string();
        assert!(!text.contains("hunter"), "{text}");
        assert!(text.contains("active"));
        let long = redact(json!({"userName": "x".repeat(5000)})).to_string();
        assert!(long.len() < 400, "{long}");
    }
}
