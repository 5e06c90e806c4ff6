//! `remove` (RFC 7644 §3.5.2.2) on one resolved target: a whole attribute, a sub-attribute, or
//! the elements a value filter selects, honouring `required` and `immutable` (RFC 7643 §2.2).
//! Also Entra's `remove` with a `value` list, which removes exactly the listed values.

use serde_json::Value;

use super::engine::{check_immutable, no_match, Target};
use super::json::{get_ci, is_absent, put, remove_all, semantic_eq, take_array, take_object};
use super::values::{identity_by_value, items, same_element};
use super::write::unset_in;
use super::Obj;
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrType, Attribute};
use crate::rules::filter;

/// RFC 7644 §3.5.2.2. `strict`: a filter matching nothing is noTarget (replace with null);
/// otherwise it is a successful no-op, so that removing an absent member is idempotent the way
/// IdP retries need.
pub(super) fn remove(
    cont: &mut Obj,
    t: &Target<'_, '_>,
    value: Option<&Value>,
    strict: bool,
) -> ScimResult<()> {
    let attr = t.attr;
    let label = t.label();
    match (t.filter, t.sub) {
        (None, None) => {
            if attr.multi_valued {
                if let Some(v) = value.filter(|v| !v.is_null()) {
                    return remove_listed(cont, attr, v);
                }
            }
            check_immutable(&label, attr, get_ci(cont, &attr.name), None)?;
            remove_all(cont, &attr.name);
            Ok(())
        }
        (None, Some(sub)) => {
            if attr.multi_valued {
                let mut arr = take_array(cont, &attr.name);
                for e in arr.iter_mut() {
                    if let Value::Object(o) = e {
                        unset_in(o, &label, sub)?;
                    }
                }
                arr.retain(|e| !is_absent(e));
                put(cont, &attr.name, Value::Array(arr));
            } else {
                let mut obj = take_object(cont, &attr.name);
                unset_in(&mut obj, &label, sub)?;
                put(cont, &attr.name, Value::Object(obj));
            }
            Ok(())
        }
        (Some(f), sub) => {
            let matches = |e: &Value| {
                (attr.ty != AttrType::Complex || e.is_object())
                    && filter::matches_element(f, e, attr)
            };
            if !attr.multi_valued {
                let mut current = Value::Object(take_object(cont, &attr.name));
                let hit = !is_absent(&current) && matches(&current);
                if hit {
                    match (sub, &mut current) {
                        (Some(s), Value::Object(o)) => unset_in(o, &label, s)?,
                        _ => {
                            if attr.required {
                                return Err(ScimError::mutability(format!(
                                    "'{}' is required and cannot be removed",
                                    attr.name
                                )));
                            }
                            current = Value::Null;
                        }
                    }
                }
                put(cont, &attr.name, current);
                return if hit || !strict {
                    Ok(())
                } else {
                    Err(no_match(t))
                };
            }
            let mut arr = take_array(cont, &attr.name);
            let hits: Vec<bool> = arr.iter().map(matches).collect();
            let any = hits.iter().any(|h| *h);
            match sub {
                None => {
                    let mut flags = hits.iter();
                    arr.retain(|_| !flags.next().copied().unwrap_or(false));
                    if arr.is_empty() && any && attr.required {
                        return Err(ScimError::mutability(format!(
                            "'{}' is required and cannot be emptied",
                            attr.name
                        )));
                    }
                }
                Some(s) => {
                    for (e, hit) in arr.iter_mut().zip(&hits) {
                        if let (true, Value::Object(o)) = (*hit, e) {
                            unset_in(o, &label, s)?;
                        }
                    }
                    arr.retain(|e| !is_absent(e));
                }
            }
            put(cont, &attr.name, Value::Array(arr));
            if any || !strict {
                Ok(())
            } else {
                Err(no_match(t))
            }
        }
    }
}

/// Entra's default member removal, `{"op":"Remove","path":"members","value":[{"value":"id"}]}`:
/// removes the listed values only (members by `value`; other elements when every given
/// sub-attribute matches). An empty list removes nothing.
fn remove_listed(cont: &mut Obj, attr: &Attribute, v: &Value) -> ScimResult<()> {
    let wanted = items(attr, v)?;
    if wanted.is_empty() {
        return Ok(());
    }
    let mut arr = take_array(cont, &attr.name);
    arr.retain(|e| !wanted.iter().any(|w| selects(attr, e, w)));
    if arr.is_empty() && attr.required {
        return Err(ScimError::mutability(format!(
            "'{}' is required and cannot be emptied",
            attr.name
        )));
    }
    put(cont, &attr.name, Value::Array(arr));
    Ok(())
}

fn selects(attr: &Attribute, stored: &Value, given: &Value) -> bool {
    if identity_by_value(attr) {
        return same_element(attr, stored, given);
    }
    match (stored, given) {
        (Value::Object(s), Value::Object(g)) => g
            .iter()
            .all(|(k, gv)| get_ci(s, k).is_some_and(|sv| semantic_eq(sv, gv))),
        _ => semantic_eq(stored, given),
    }
}
