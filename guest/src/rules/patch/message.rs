//! The `PatchOp` message (RFC 7644 §3.5.2): its `schemas`, its `Operations` array and each
//! operation's `op`, `path` and `value`, parsed into [`PatchOperation`]s. Paths are parsed by
//! [`super::path`]; nothing here touches a resource document.

use serde_json::Value;

use super::json::get_ci;
use super::path::parse_path;
use super::{OpKind, PatchOperation};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{urn, ResourceSchema};

/// Parses a PatchOp message body. `schemas` must contain urn:ietf:params:scim:api:messages:2.0:PatchOp
/// (else 400 invalidSyntax), `Operations` (key case-insensitive) a non-empty array (else 400
/// invalidSyntax); `op` exactly `add`, `remove` or `replace` (Entra's "Replace" is lowered by
/// the dialect normaliser first), any other op → 400 invalidSyntax; remove without path → 400 noTarget; add/replace without value → 400
/// invalidSyntax; bad path syntax or an unknown attribute → 400 invalidPath (see [`parse_path`]).
/// A missing, `null` or blank `path` counts as no path.
pub fn parse_request(body: &Value, schema: &ResourceSchema) -> ScimResult<Vec<PatchOperation>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
    let is_patch_op = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(urn::PATCH_OP))
    };
    let declared = match get_ci(obj, "schemas") {
        Some(Value::Array(list)) => list.iter().any(is_patch_op),
        Some(other) => is_patch_op(other),
        None => false,
    };
    if !declared {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {}",
            urn::PATCH_OP
        )));
    }
    let ops = match get_ci(obj, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => {
            return Err(ScimError::invalid_syntax(
                "'Operations' must hold at least one operation",
            ))
        }
        _ => {
            return Err(ScimError::invalid_syntax(
                "'Operations' must be an array of operations",
            ))
        }
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op, schema).map_err(|e| at(i, e)))
        .collect()
}

fn parse_operation(op: &Value, schema: &ResourceSchema) -> ScimResult<PatchOperation> {
    let obj = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("an operation must be a JSON object"))?;
    let kind = match get_ci(obj, "op") {
        // Exactly as RFC 7644 §3.5.2 spells them: Entra's "Replace" is the dialect's to lower.
        Some(Value::String(s)) if s == "add" => OpKind::Add,
        Some(Value::String(s)) if s == "remove" => OpKind::Remove,
        Some(Value::String(s)) if s == "replace" => OpKind::Replace,
        Some(Value::String(s)) => {
            return Err(ScimError::invalid_syntax(format!(
                "unknown op '{s}': expected add, remove or replace"
            )))
        }
        Some(_) => return Err(ScimError::invalid_syntax("'op' must be a string")),
        None => return Err(ScimError::invalid_syntax("an operation needs an 'op'")),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(s, schema)?),
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    let value = get_ci(obj, "value").cloned();
    match kind {
        OpKind::Remove if path.is_none() => {
            Err(ScimError::no_target("a remove operation needs a 'path'"))
        }
        OpKind::Add | OpKind::Replace if value.is_none() => Err(ScimError::invalid_syntax(
            format!("an {} operation needs a 'value'", kind.as_str()),
        )),
        _ => Ok(PatchOperation {
            op: kind,
            path,
            value,
        }),
    }
}

/// Prefixes an error's detail with the index of the operation that caused it.
pub(super) fn at(i: usize, mut e: ScimError) -> ScimError {
    e.detail = format!("Operations[{i}]: {}", e.detail);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use crate::rules::patch::apply;
    use crate::rules::patch::tests::{body, kind, user_doc, users};
    use serde_json::json;

    #[test]
    fn remove_without_path_is_no_target() {
        let e = parse_request(&body(json!([{"op": "remove"}])), &users()).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::NoTarget));
        let mut doc = user_doc();
        let ops = [PatchOperation {
            op: OpKind::Remove,
            path: None,
            value: None,
        }];
        assert_eq!(
            kind(&apply(&mut doc, &ops, &users()).unwrap_err()),
            Some(ScimType::NoTarget)
        );
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn malformed_messages_are_invalid_syntax() {
        let rs = users();
        let syntax = |b: Value| kind(&parse_request(&b, &rs).unwrap_err());
        let op = json!([{"op": "replace", "value": {"active": false}}]);
        assert_eq!(
            syntax(json!({"Operations": op})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::USER], "Operations": op})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::PATCH_OP], "Operations": []})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::PATCH_OP]})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::PATCH_OP], "Operations": {"op": "add"}})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(syntax(json!([1])), Some(ScimType::InvalidSyntax));
        assert_eq!(
            syntax(body(json!([{"op": "merge", "value": {}}]))),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(body(json!([{"value": {}}]))),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(body(json!([{"op": "add", "path": "nickName"}]))),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(syntax(body(json!(["add"]))), Some(ScimType::InvalidSyntax));
        // Key and URN case do not matter.
        let ok =
            json!({"SCHEMAS": ["URN:ietf:params:scim:api:messages:2.0:patchop"], "operations": op});
        assert_eq!(parse_request(&ok, &rs).unwrap().len(), 1);
    }
}
