//! `add` (RFC 7644 §3.5.2.1) and `replace` (RFC 7644 §3.5.2.3) on one resolved target: a simple
//! or complex attribute, a sub-attribute, a multi-valued attribute, or the elements a value
//! filter selects (with the upserting `add` of [`seed`]). Immutability (RFC 7643 §2.2) is
//! enforced on every write.

use serde_json::{Map, Value};

use super::engine::{check_immutable, no_match, Target};
use super::json::{get_ci, is_absent, put, remove_all, slot, take_array, take_object};
use super::path::element_attribute;
use super::values::{check_simple, complex_value, items, same_element};
use super::{Obj, OpKind};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrType, Attribute, Mutability};
use crate::rules::filter::{self, CompareOp, Filter};

/// RFC 7644 §3.5.2.1. Returns the indices of the multi-valued elements it wrote.
pub(super) fn add(cont: &mut Obj, t: &Target<'_, '_>, v: &Value) -> ScimResult<Vec<usize>> {
    let attr = t.attr;
    match (t.filter, t.sub) {
        (Some(f), _) => set_filtered(cont, t, f, v, OpKind::Add),
        (None, Some(sub)) if attr.multi_valued => {
            // A new element holding just this sub-attribute, unless an equal one exists.
            check_simple(&t.label(), sub, v)?;
            let mut item = Map::new();
            item.insert(sub.name.clone(), v.clone());
            append(cont, attr, vec![Value::Object(item)])
        }
        (None, Some(sub)) => {
            set_sub_single(cont, t, sub, v)?;
            Ok(Vec::new())
        }
        (None, None) if attr.multi_valued => {
            let items = items(attr, v)?;
            append(cont, attr, items)
        }
        (None, None) if attr.ty == AttrType::Complex => {
            let m = complex_value(attr, v, false)?;
            merge_complex(cont, attr, m)?;
            Ok(Vec::new())
        }
        (None, None) => {
            set_simple(cont, attr, v)?;
            Ok(Vec::new())
        }
    }
}

/// RFC 7644 §3.5.2.3. Returns the indices of the multi-valued elements it wrote.
pub(super) fn replace(cont: &mut Obj, t: &Target<'_, '_>, v: &Value) -> ScimResult<Vec<usize>> {
    let attr = t.attr;
    match (t.filter, t.sub) {
        (Some(f), _) => set_filtered(cont, t, f, v, OpKind::Replace),
        (None, Some(sub)) if attr.multi_valued => {
            // Every element's sub-attribute; with no element yet, "treated as add".
            check_simple(&t.label(), sub, v)?;
            let mut arr = take_array(cont, &attr.name);
            if arr.is_empty() {
                let mut item = Map::new();
                item.insert(sub.name.clone(), v.clone());
                arr.push(Value::Object(item));
            } else {
                for e in arr.iter_mut() {
                    if let Value::Object(o) = e {
                        set_in(o, &t.label(), sub, v)?;
                    }
                }
            }
            let written = (0..arr.len()).collect();
            put(cont, &attr.name, Value::Array(arr));
            Ok(written)
        }
        (None, Some(sub)) => {
            set_sub_single(cont, t, sub, v)?;
            Ok(Vec::new())
        }
        (None, None) if attr.multi_valued => {
            let mut new: Vec<Value> = Vec::new();
            for item in items(attr, v)? {
                if !new.iter().any(|e| same_element(attr, e, &item)) {
                    new.push(item);
                }
            }
            if new.is_empty() && attr.required {
                return Err(ScimError::mutability(format!(
                    "'{}' is required and cannot be emptied",
                    attr.name
                )));
            }
            if attr.mutability == Mutability::Immutable {
                check_immutable(
                    &attr.name,
                    attr,
                    get_ci(cont, &attr.name),
                    Some(&Value::Array(new.clone())),
                )?;
            }
            let written = (0..new.len()).collect();
            put(cont, &attr.name, Value::Array(new));
            Ok(written)
        }
        (None, None) if attr.ty == AttrType::Complex => {
            let m = complex_value(attr, v, true)?;
            merge_complex(cont, attr, m)?;
            Ok(Vec::new())
        }
        (None, None) => {
            set_simple(cont, attr, v)?;
            Ok(Vec::new())
        }
    }
}

/// Appends the values not already present; returns the indices of those appended.
fn append(cont: &mut Obj, attr: &Attribute, items: Vec<Value>) -> ScimResult<Vec<usize>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut arr = take_array(cont, &attr.name);
    let mut written = Vec::new();
    for item in items {
        if !arr.iter().any(|e| same_element(attr, e, &item)) {
            arr.push(item);
            written.push(arr.len() - 1);
        }
    }
    put(cont, &attr.name, Value::Array(arr));
    Ok(written)
}

/// add/replace through a value filter. Replace needs a match (else noTarget); add with no match
/// creates the element from the filter's `eq` terms when it has only those (upsert).
fn set_filtered(
    cont: &mut Obj,
    t: &Target<'_, '_>,
    f: &Filter,
    v: &Value,
    kind: OpKind,
) -> ScimResult<Vec<usize>> {
    let attr = t.attr;
    let label = t.label();
    // What to do to each matching element.
    let patch: Option<Obj> = match t.sub {
        Some(sub) => {
            check_simple(&label, sub, v)?;
            None
        }
        None if attr.ty == AttrType::Complex => {
            Some(complex_value(attr, v, kind == OpKind::Replace)?)
        }
        None => {
            check_simple(&label, attr, v)?;
            None
        }
    };
    let update = |element: &mut Value| -> ScimResult<()> {
        match (element, t.sub, &patch) {
            (Value::Object(o), Some(sub), _) => set_in(o, &label, sub, v),
            (Value::Object(o), None, Some(p)) => merge_into(o, attr, p.clone()),
            (e, None, None) => {
                check_immutable(&label, attr, Some(e), Some(v))?;
                *e = v.clone();
                Ok(())
            }
            _ => Ok(()),
        }
    };
    let matches = |e: &Value| {
        (attr.ty != AttrType::Complex || e.is_object()) && filter::matches_element(f, e, attr)
    };

    if !attr.multi_valued {
        // A single-valued complex attribute filtered like a one-element list (`manager[value eq "x"]`).
        let mut current = Value::Object(take_object(cont, &attr.name));
        if !is_absent(&current) && matches(&current) {
            update(&mut current)?;
        } else if kind == OpKind::Add && is_absent(&current) {
            current = seed(f, attr).ok_or_else(|| no_match(t))?;
            update(&mut current)?;
            if !matches(&current) {
                return Err(no_match(t));
            }
        } else {
            return Err(no_match(t));
        }
        put(cont, &attr.name, current);
        return Ok(Vec::new());
    }

    let mut arr = take_array(cont, &attr.name);
    let hits: Vec<usize> = arr
        .iter()
        .enumerate()
        .filter(|(_, e)| matches(e))
        .map(|(i, _)| i)
        .collect();
    if hits.is_empty() {
        if kind == OpKind::Replace {
            return Err(no_match(t));
        }
        let mut element = seed(f, attr).ok_or_else(|| no_match(t))?;
        update(&mut element)?;
        if !matches(&element) {
            return Err(no_match(t));
        }
        arr.push(element);
        let written = vec![arr.len() - 1];
        put(cont, &attr.name, Value::Array(arr));
        return Ok(written);
    }
    for &i in &hits {
        if let Some(e) = arr.get_mut(i) {
            update(e)?;
        }
    }
    put(cont, &attr.name, Value::Array(arr));
    Ok(hits)
}

/// The element a filter made only of `eq` terms (joined by `and`) describes, for an upserting add.
fn seed(f: &Filter, attr: &Attribute) -> Option<Value> {
    let mut out = Map::new();
    let mut scalar = None;
    let mut pending = vec![f];
    while let Some(f) = pending.pop() {
        match f {
            Filter::And(a, b) => {
                pending.push(a);
                pending.push(b);
            }
            Filter::Compare(p, CompareOp::Eq, lit) if !lit.is_null() => {
                let sub = element_attribute(p, attr)?;
                if attr.ty == AttrType::Complex {
                    out.insert(sub.name.clone(), lit.clone());
                } else {
                    scalar = Some(lit.clone());
                }
            }
            _ => return None,
        }
    }
    match scalar {
        Some(s) => Some(s),
        None => Some(Value::Object(out)),
    }
}

/// Sets a sub-attribute of a single-valued complex attribute (`name.familyName`).
fn set_sub_single(
    cont: &mut Obj,
    t: &Target<'_, '_>,
    sub: &Attribute,
    v: &Value,
) -> ScimResult<()> {
    let label = t.label();
    check_simple(&label, sub, v)?;
    let mut obj = take_object(cont, &t.attr.name);
    set_in(&mut obj, &label, sub, v)?;
    put(cont, &t.attr.name, Value::Object(obj));
    Ok(())
}

/// Sets `sub` inside one complex value, honouring immutability.
pub(super) fn set_in(o: &mut Obj, label: &str, sub: &Attribute, v: &Value) -> ScimResult<()> {
    check_immutable(label, sub, get_ci(o, &sub.name), Some(v))?;
    *slot(o, &sub.name) = v.clone();
    Ok(())
}

/// Removes `sub` from one complex value, honouring `required` and immutability.
pub(super) fn unset_in(o: &mut Obj, label: &str, sub: &Attribute) -> ScimResult<()> {
    let current = get_ci(o, &sub.name).filter(|c| !is_absent(c));
    if current.is_some() && sub.required {
        return Err(ScimError::mutability(format!(
            "'{label}' is required and cannot be removed"
        )));
    }
    check_immutable(label, sub, current, None)?;
    remove_all(o, &sub.name);
    Ok(())
}

fn set_simple(cont: &mut Obj, attr: &Attribute, v: &Value) -> ScimResult<()> {
    check_simple(&attr.name, attr, v)?;
    check_immutable(&attr.name, attr, get_ci(cont, &attr.name), Some(v))?;
    *slot(cont, &attr.name) = v.clone();
    Ok(())
}

/// Merges sub-attributes into a single-valued complex attribute (RFC 7644 §3.5.2.1/3: given
/// sub-attributes replace, others stay). A null member unassigns that sub-attribute.
fn merge_complex(cont: &mut Obj, attr: &Attribute, m: Obj) -> ScimResult<()> {
    let mut obj = take_object(cont, &attr.name);
    merge_into(&mut obj, attr, m)?;
    put(cont, &attr.name, Value::Object(obj));
    Ok(())
}

pub(super) fn merge_into(obj: &mut Obj, attr: &Attribute, m: Obj) -> ScimResult<()> {
    for (k, x) in m {
        let Some(sub) = attr.sub(&k) else { continue };
        let label = format!("{}.{}", attr.name, sub.name);
        if x.is_null() {
            unset_in(obj, &label, sub)?;
        } else {
            set_in(obj, &label, sub, &x)?;
        }
    }
    Ok(())
}
