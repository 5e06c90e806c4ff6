//! Dialect rules on value filters in PATCH paths (RFC 7644 §3.5.2, Figure 7 `valuePath`).
//! [`Rule::RemoveWithValue`] turns Entra's `remove` of `members` with a `value` list into one
//! filtered removal per listed value (RFC 7644 §3.5.2.2), never "remove all";
//! [`Rule::AddFilterUpsert`] permits `add` through a value filter, which RFC 7644 §3.5.2.1 does
//! not define and the engine treats as an upsert.

use serde_json::Value;

use super::operation::Target;
use super::{make_op, Normaliser, Rule};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrType, Attribute};

impl<'a> Normaliser<'a> {
    /// [`Rule::RemoveWithValue`]: a `remove` without a filter on a multi-valued attribute, with
    /// a value, becomes one filtered removal per listed value. Never "remove all": with the rule
    /// off it is refused. `None` when the operation is not of that shape.
    pub(super) fn remove_with_value(
        &mut self,
        kind: &str,
        path: &str,
        t: &Target<'a>,
        value: Option<&Value>,
        at: &str,
    ) -> ScimResult<Option<Vec<Value>>> {
        let Target::Attr {
            attr,
            filtered: false,
            sub: None,
        } = *t
        else {
            return Ok(None);
        };
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        if kind != "remove" || !attr.multi_valued {
            return Ok(None);
        }
        self.allow(Rule::RemoveWithValue, at, || {
            ScimError::invalid_syntax(format!(
                "{at}: a 'remove' of '{path}' carries a 'value'; name what to remove with a filter path such as {path}[value eq \"…\"] (a remove without one would remove every value)"
            ))
        })?;
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().filter(|x| !x.is_null()).collect(),
            other => vec![other],
        };
        if items.is_empty() {
            // Nothing listed: the engine removes nothing; there is no RFC op for "nothing".
            return Ok(Some(vec![make_op(
                kind,
                Some(path.to_string()),
                Some(value.clone()),
            )]));
        }
        let mut ops = Vec::with_capacity(items.len());
        for item in items {
            let filter = element_filter(attr, item).ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "{at}: each value to remove needs a 'value' (for members: the user's id)"
                ))
            })?;
            ops.push(make_op(kind, Some(format!("{path}[{filter}]")), None));
        }
        Ok(Some(ops))
    }

    /// [`Rule::AddFilterUpsert`]: the engine updates the matching value or creates it from the
    /// filter's `eq` terms; with the rule off, RFC 7644 §3.5.2.1 add takes no filter.
    pub(super) fn add_filter(
        &mut self,
        kind: &str,
        path: &str,
        t: &Target<'a>,
        at: &str,
    ) -> ScimResult<()> {
        let Target::Attr {
            attr,
            filtered: true,
            ..
        } = *t
        else {
            return Ok(());
        };
        if kind != "add" {
            return Ok(());
        }
        let name = attr.name.clone();
        self.allow(Rule::AddFilterUpsert, at, || {
            ScimError::invalid_path(format!(
                "{at}: 'add' with a value filter ('{path}') is not an RFC 7644 operation; use 'replace' for an existing value or 'add' to '{name}'"
            ))
        })
    }
}

/// The filter that selects one listed value: `value eq "id"` for members (a member is its id),
/// else every simple sub-attribute given, joined by `and`.
fn element_filter(attr: &Attribute, item: &Value) -> Option<String> {
    let literal = |v: &Value| serde_json::to_string(v).ok();
    match item {
        Value::Object(m) => {
            let mut terms = Vec::new();
            for (k, x) in m {
                let Some(sub) = attr.sub(k) else { continue };
                let identity_only = attr.name == "members" && sub.name != "value";
                if identity_only || !(x.is_string() || x.is_number() || x.is_boolean()) {
                    continue;
                }
                terms.push(format!("{} eq {}", sub.name, literal(x)?));
            }
            (!terms.is_empty()).then(|| terms.join(" and "))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            if attr.ty == AttrType::Complex && attr.sub("value").is_none() {
                return None;
            }
            Some(format!("value eq {}", literal(item)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use crate::rules::dialect::tests::*;
    use crate::rules::patch;
    use serde_json::json;

    // ---- remove with value ----

    #[test]
    fn remove_with_value_becomes_one_filtered_removal_per_member() {
        let (ops, fired) = group_patch(
            "",
            json!([{"op": "Remove", "path": "members", "value": [
                {"$ref": null, "value": "f648f8d5ea4e4cd38e9c"},
                {"value": "say \"hi\"", "display": "x"},
                "bare-id"
            ]}]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "remove", "path": "members[value eq \"f648f8d5ea4e4cd38e9c\"]"},
                {"op": "remove", "path": "members[value eq \"say \\\"hi\\\"\"]"},
                {"op": "remove", "path": "members[value eq \"bare-id\"]"}
            ])
        );
        assert_eq!(fired, [Rule::CapitalisedOps, Rule::RemoveWithValue]);
        // Each rewritten path is a valid RFC path that selects exactly that member.
        let rs = policy("").group_schema();
        for op in ops.as_array().unwrap() {
            patch::parse_path(op["path"].as_str().unwrap(), &rs).unwrap();
        }
        // Other multi-valued attributes: every given sub-attribute must match.
        let (ops, _) = user_patch(
            "",
            json!([{"op": "remove", "path": "emails", "value": [{"value": "a@x", "type": "work", "primary": "true"}]}]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([{"op": "remove", "path": "emails[value eq \"a@x\" and type eq \"work\" and primary eq true]"}])
        );
    }

    #[test]
    fn remove_with_value_never_removes_everything() {
        // Off: refused, not read as "remove all".
        let off = r#"{"dialect.remove-with-value":false}"#;
        let ops = json!([{"op": "remove", "path": "members", "value": [{"value": "u1"}]}]);
        let e = refused(group_patch(off, ops), Rule::RemoveWithValue);
        assert_eq!(kind(&e), Some(ScimType::InvalidSyntax));
        // On: an element without an id is refused rather than guessed.
        let bad = json!([{"op": "remove", "path": "members", "value": [{"display": "x"}]}]);
        let e = group_patch("", bad).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        // The RFC forms pass untouched in both settings.
        for p in ["", off] {
            let rfc = json!([{"op": "remove", "path": "members[value eq \"u1\"]"}, {"op": "remove", "path": "members"}]);
            assert_eq!(group_patch(p, rfc.clone()).unwrap(), (rfc, vec![]));
        }
    }

    // ---- add with a value filter ----

    #[test]
    fn add_filter_upsert_is_allowed_when_on_and_invalid_path_when_off() {
        let ops =
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555"}]);
        let (out, fired) = user_patch("", ops.clone()).unwrap();
        assert_eq!(out[0]["op"], "add");
        assert_eq!(out[0]["path"], "phoneNumbers[type eq \"work\"].value");
        assert_eq!(fired, [Rule::CapitalisedOps, Rule::AddFilterUpsert]);
        let e = refused(
            user_patch(r#"{"dialect.add-filter-upsert":false}"#, ops),
            Rule::AddFilterUpsert,
        );
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
        // replace through a filter is RFC 7644.
        let rfc = json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "1"}]);
        let off = r#"{"dialect.add-filter-upsert":false}"#;
        assert_eq!(user_patch(off, rfc.clone()).unwrap(), (rfc, vec![]));
    }
}
