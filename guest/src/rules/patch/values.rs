//! Incoming PATCH values and the elements of multi-valued attributes (RFC 7643 §2.4): element
//! identity, `primary` uniqueness, the normalised element list of a value, one complex value's
//! sub-attributes, and the structural check that a simple attribute gets a simple value.

use serde_json::{Map, Value};

use super::json::{get_ci, is_absent, semantic_eq, slot};
use super::Obj;
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrType, Attribute, Mutability};

/// Whether elements of `attr` are identified by their `value` alone: group `members` (a member
/// is a user or group id; `display`, `$ref` and `type` only describe it).
pub(super) fn identity_by_value(attr: &Attribute) -> bool {
    attr.name == "members"
}

/// Whether two elements of a multi-valued attribute are the same value (RFC 7644 §3.5.2.1:
/// adding a value already present changes nothing).
pub(super) fn same_element(attr: &Attribute, a: &Value, b: &Value) -> bool {
    if identity_by_value(attr) {
        let value_of = |e: &Value| {
            e.as_object()
                .and_then(|o| get_ci(o, "value"))
                .filter(|v| !is_absent(v))
                .cloned()
        };
        if let (Some(x), Some(y)) = (value_of(a), value_of(b)) {
            return semantic_eq(&x, &y);
        }
    }
    semantic_eq(a, b)
}

/// After an add/replace wrote elements of a multi-valued attribute: if one of them is primary,
/// no other element stays primary (RFC 7643 §2.4; the last written primary wins).
pub(super) fn fix_primary(cont: &mut Obj, attr: &Attribute, written: &[usize]) {
    if written.is_empty() || !attr.multi_valued || attr.sub("primary").is_none() {
        return;
    }
    let Some(Value::Array(arr)) = cont.get_mut(&attr.name) else {
        return;
    };
    let Some(keep) = written
        .iter()
        .rev()
        .copied()
        .find(|&i| arr.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, e) in arr.iter_mut().enumerate() {
        if i == keep || !is_primary(e) {
            continue;
        }
        if let Value::Object(o) = e {
            *slot(o, "primary") = Value::Bool(false);
        }
    }
}

/// Whether an element is marked primary: the JSON boolean `true` only (RFC 7643 §2.3.2). Entra's
/// `"primary": "True"` is the dialect normaliser's to turn into `true` first
/// ([`crate::rules::dialect::Rule::BooleanStrings`]).
fn is_primary(e: &Value) -> bool {
    matches!(
        e.as_object().and_then(|o| get_ci(o, "primary")),
        Some(Value::Bool(true))
    )
}

/// The values of a multi-valued attribute given as an array or a single value, normalised;
/// nulls and empty elements are dropped.
pub(super) fn items(attr: &Attribute, v: &Value) -> ScimResult<Vec<Value>> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(list.len());
    for x in list {
        if x.is_null() {
            continue;
        }
        if attr.ty == AttrType::Complex {
            let m = complex_value(attr, x, false)?;
            if !m.is_empty() {
                out.push(Value::Object(m));
            }
        } else {
            if x.is_object() || x.is_array() {
                return Err(ScimError::invalid_value(format!(
                    "the values of '{}' must be simple values",
                    attr.name
                )));
            }
            out.push(x.clone());
        }
    }
    Ok(out)
}

/// One incoming value of a complex attribute: sub-attributes under their canonical names;
/// read-only ones (`members.display`, `manager.displayName`) and unknown ones dropped, as the
/// resource validator drops them on POST/PUT; nulls kept only when `keep_nulls` (replace, where
/// null unassigns). A bare scalar stands for `{"value": scalar}` when the attribute has a `value`
/// sub-attribute (Entra's `manager: "271"`).
pub(super) fn complex_value(attr: &Attribute, v: &Value, keep_nulls: bool) -> ScimResult<Obj> {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let Some(sub) = attr.sub(k) else { continue };
                if sub.mutability == Mutability::ReadOnly || (x.is_null() && !keep_nulls) {
                    continue;
                }
                check_simple(&format!("{}.{}", attr.name, sub.name), sub, x)?;
                out.insert(sub.name.clone(), x.clone());
            }
            Ok(out)
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => match attr.sub("value") {
            Some(value_attr) => {
                let mut out = Map::new();
                out.insert(value_attr.name.clone(), v.clone());
                Ok(out)
            }
            None => Err(ScimError::invalid_value(format!(
                "'{}' takes an object of sub-attributes",
                attr.name
            ))),
        },
        _ => Err(ScimError::invalid_value(format!(
            "'{}' takes an object of sub-attributes",
            attr.name
        ))),
    }
}

/// An object or array where a single simple value belongs is structurally impossible.
pub(super) fn check_simple(label: &str, a: &Attribute, v: &Value) -> ScimResult<()> {
    if a.ty == AttrType::Complex || a.multi_valued || !(v.is_object() || v.is_array()) {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "'{label}' takes a single {} value",
        a.ty.as_str()
    )))
}
