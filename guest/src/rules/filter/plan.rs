//! Index planning: the `attr eq "string"` conjuncts of a filter (RFC 7644 §3.4.2.2), each a
//! necessary condition the caller may answer from an index before re-checking the whole filter.

use serde_json::Value;

use super::validate::element_attribute;
use super::{CompareOp, Filter};
use crate::model::schema::{AttrType, Attribute, Container, Resolved, ResourceSchema};

/// The `attr eq "string"` conjuncts of `filter` (itself, or reachable through `and` only), each
/// as (canonical attribute name, value as written). Each is a necessary condition for a match,
/// so the caller may answer the filter from any one it has an index for and re-check the rest
/// with [`matches`]. Names: `userName`, `externalId`, `id`, `name.familyName`, `emails.value`
/// (for `emails.value eq`, `emails eq` and `emails[value eq ..]`), and `{urn}:{attr}` for
/// extension attributes. Values are not case-folded; case-insensitive attributes need a
/// case-insensitive lookup.
pub fn eq_conjuncts(filter: &Filter, schema: &ResourceSchema) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // An explicit stack: `and` chains can be long.
    let mut pending = vec![filter];
    while let Some(f) = pending.pop() {
        match f {
            Filter::And(left, right) => pending.extend([&**right, &**left]),
            Filter::Compare(path, CompareOp::Eq, Value::String(s)) => {
                if let Some(name) = schema.resolve(path).ok().as_ref().and_then(indexed_name) {
                    out.push((name, s.clone()));
                }
            }
            Filter::ValuePath(path, inner) => {
                if let Ok(r) = schema.resolve(path) {
                    element_conjuncts(&r, inner, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

fn is_string_like(attr: &Attribute) -> bool {
    matches!(attr.ty, AttrType::String | AttrType::Reference)
}

/// Canonical name of a string-valued path (complex attributes through `value`).
fn indexed_name(r: &Resolved<'_>) -> Option<String> {
    let sub = match r.sub {
        Some(sub) => Some(sub),
        None if r.attr.ty == AttrType::Complex => Some(r.attr.sub("value")?),
        None => None,
    };
    is_string_like(sub.unwrap_or(r.attr)).then(|| qualified_name(r.container, r.attr, sub))
}

fn qualified_name(container: Container<'_>, attr: &Attribute, sub: Option<&Attribute>) -> String {
    let mut name = match container {
        Container::Core => attr.name.clone(),
        Container::Extension(urn) => format!("{urn}:{}", attr.name),
    };
    if let Some(sub) = sub {
        name.push('.');
        name.push_str(&sub.name);
    }
    name
}

/// The `sub eq "string"` conjuncts inside `attr[...]`, named `attr.sub`.
fn element_conjuncts(r: &Resolved<'_>, inner: &Filter, out: &mut Vec<(String, String)>) {
    if r.sub.is_some() || r.attr.ty != AttrType::Complex {
        return;
    }
    let mut pending = vec![inner];
    while let Some(f) = pending.pop() {
        match f {
            Filter::And(left, right) => pending.extend([&**right, &**left]),
            Filter::Compare(path, CompareOp::Eq, Value::String(s)) => {
                if let Some(sub) = element_attribute(r.attr, path).filter(|a| is_string_like(a)) {
                    out.push((qualified_name(r.container, r.attr, Some(sub)), s.clone()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::urn;
    use crate::rules::filter::parse;
    use crate::rules::filter::tests::*;

    #[test]
    fn eq_conjuncts_name_indexable_attributes() {
        let schema = users();
        let ec = |text: &str| eq_conjuncts(&parse(text).unwrap(), &schema);
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(ec(r#"USERNAME eq "Bob""#), vec![pair("userName", "Bob")]);
        assert_eq!(
            ec(r#"userName eq "a" and (externalId eq "b" and id eq "c") and title pr"#),
            vec![
                pair("userName", "a"),
                pair("externalId", "b"),
                pair("id", "c")
            ]
        );
        assert_eq!(ec(r#"userName eq "a" or externalId eq "b""#), vec![]);
        assert_eq!(ec(r#"not (userName eq "a")"#), vec![]);
        assert_eq!(ec(r#"userName ne "a""#), vec![]);
        assert_eq!(ec(r#"userName sw "a""#), vec![]);
        assert_eq!(ec("active eq true"), vec![]);
        assert_eq!(ec(r#"meta.lastModified eq "2011-05-13T04:42:34Z""#), vec![]);
        assert_eq!(ec(r#"nope eq "a""#), vec![]);
        assert_eq!(
            ec(r#"emails.value eq "x""#),
            vec![pair("emails.value", "x")]
        );
        assert_eq!(ec(r#"emails eq "x""#), vec![pair("emails.value", "x")]);
        assert_eq!(
            ec(r#"emails[type eq "work"].value eq "x""#),
            vec![pair("emails.type", "work"), pair("emails.value", "x")]
        );
        assert_eq!(ec(r#"emails[type eq "work" or value eq "x"]"#), vec![]);
        let ent = urn::ENTERPRISE_USER;
        assert_eq!(
            ec(r#"employeeNumber eq "701984""#),
            vec![pair(&format!("{ent}:employeeNumber"), "701984")]
        );
        let long = vec![r#"userName eq "a""#; 300].join(" and ");
        assert_eq!(ec(&long).len(), 300);
    }
}
