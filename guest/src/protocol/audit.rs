//! The provisioning record of one write request: what the IdP asked for, after dialect
//! normalisation, with secrets removed. The handler returns it beside the response (WIT
//! `handler.response.audit`, never sent to the client); the host appends it to the tenant's
//! audit log with the time, the caller and the result.

use serde_json::{json, Map, Value};

use crate::model::error::ScimError;
use crate::model::resource_type::Kind;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Replace,
    Patch,
    Delete,
}

impl Action {
    /// The action of an HTTP method (RFC 7644 §3.2), `None` for reads.
    pub fn of(method: &str) -> Option<Action> {
        match method {
            "POST" => Some(Action::Create),
            "PUT" => Some(Action::Replace),
            "PATCH" => Some(Action::Patch),
            "DELETE" => Some(Action::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Patch => "patch",
            Action::Delete => "delete",
        }
    }
}

/// One write to `/Users` or `/Groups`, as the handler saw it.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub action: Action,
    pub kind: Kind,
    /// The resource's id: from the URL, or the one a creation assigned.
    pub id: Option<&'a str>,
    /// The request body as the operation applied it (after dialect normalisation), when it got
    /// that far.
    pub body: Option<&'a Value>,
    /// Why the request failed.
    pub error: Option<&'a ScimError>,
}

/// The record of a write.
pub fn record(w: &Write<'_>) -> Value {
    let mut rec = Map::new();
    rec.insert("action".into(), w.action.name().into());
    rec.insert("resource".into(), w.kind.name().into());
    if let Some(id) = w.id {
        rec.insert("id".into(), id.into());
    }
    if let Some(body) = w.body {
        match w.action {
            Action::Patch => {
                let ops = body.get("Operations").cloned().unwrap_or(Value::Null);
                rec.insert("operations".into(), redact(ops));
            }
            Action::Create | Action::Replace => {
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
            Action::Delete => {}
        }
    }
    if let Some(e) = w.error {
        rec.insert(
            "error".into(),
            json!({"scimType": e.scim_type.map(|t| t.as_str()), "detail": e.detail}),
        );
    }
    Value::Object(rec)
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
