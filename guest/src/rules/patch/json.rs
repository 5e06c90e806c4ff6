//! JSON object helpers for resource documents: attribute names are case-insensitive (RFC 7643
//! §2.1) and written under their canonical spelling; null, `[]` and `{}` all mean "unassigned"
//! (RFC 7643 §2.5), which [`semantic_eq`] honours when deciding whether a PATCH changed anything.

use serde_json::{Map, Value};

use super::Obj;

pub(super) fn get_ci<'a>(m: &'a Obj, name: &str) -> Option<&'a Value> {
    m.get(name).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub(super) fn get_ci_mut<'a>(m: &'a mut Obj, name: &str) -> Option<&'a mut Value> {
    let key = if m.contains_key(name) {
        name.to_string()
    } else {
        m.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone()
    };
    m.get_mut(&key)
}

/// The slot of `name`, under its canonical spelling: a member spelled otherwise is moved there
/// (other stray spellings are dropped); an absent one is created as null.
pub(super) fn slot<'a>(m: &'a mut Obj, name: &str) -> &'a mut Value {
    let strays: Vec<String> = m
        .keys()
        .filter(|k| k.as_str() != name && k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    for k in strays {
        if let Some(v) = m.shift_remove(&k) {
            if !m.contains_key(name) {
                m.insert(name.to_string(), v);
            }
        }
    }
    m.entry(name.to_string()).or_insert(Value::Null)
}

/// Removes `name` in every spelling.
pub(super) fn remove_all(m: &mut Obj, name: &str) {
    let keys: Vec<String> = m
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    for k in keys {
        m.shift_remove(&k);
    }
}

/// Takes a multi-valued attribute's elements out of its slot (a lone value counts as one);
/// callers give them back with [`put`].
pub(super) fn take_array(m: &mut Obj, name: &str) -> Vec<Value> {
    match std::mem::take(slot(m, name)) {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Takes a complex attribute's object out of its slot (anything else counts as absent).
pub(super) fn take_object(m: &mut Obj, name: &str) -> Obj {
    match std::mem::take(slot(m, name)) {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// Stores a value under the canonical `name`, or removes the attribute when the value is
/// unassigned (null, `[]`, `{}`).
pub(super) fn put(m: &mut Obj, name: &str, v: Value) {
    if is_absent(&v) {
        remove_all(m, name);
    } else {
        *slot(m, name) = v;
    }
}

/// RFC 7643 §2.5: null, an empty array and an empty object all mean "unassigned".
pub(super) fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Deepest level [`semantic_eq`] descends to; below it values compare exactly. Documents are
/// at most five levels deep (extension, attribute, element, sub-attribute).
const MAX_COMPARE_DEPTH: usize = 16;

/// JSON equality with object keys compared case-insensitively and unassigned members ignored.
pub(super) fn semantic_eq(a: &Value, b: &Value) -> bool {
    eq_at(a, b, 0)
}

fn eq_at(a: &Value, b: &Value, depth: usize) -> bool {
    if is_absent(a) && is_absent(b) {
        return true;
    }
    if depth >= MAX_COMPARE_DEPTH {
        return a == b;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let present = |m: &Obj| m.values().filter(|v| !is_absent(v)).count();
            present(x) == present(y)
                && x.iter()
                    .filter(|(_, v)| !is_absent(v))
                    .all(|(k, v)| get_ci(y, k).is_some_and(|w| eq_at(v, w, depth + 1)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| eq_at(v, w, depth + 1))
        }
        _ => a == b,
    }
}
