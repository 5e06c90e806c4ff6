//! Validating a parsed filter against a resource type's schemas (RFC 7644 §3.4.2.2, RFC 7643
//! §2.3, §7): every path must name an attribute (unknown ones are `invalidFilter`) and every
//! operator must suit its attribute's type (no ordering on booleans, binaries or complexes).

use std::sync::OnceLock;

use serde_json::Value;

use super::print::chain_operands;
use super::{CompareOp, Filter};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrPath, AttrType, Attribute, Container, Resolved, ResourceSchema};

/// `schemas` is in no schema but RFC 7644 filters on it (`schemas eq "urn:...:enterprise..."`):
/// treat it as a top-level multi-valued, case-insensitive string.
fn schemas_attribute() -> &'static Attribute {
    static ATTR: OnceLock<Attribute> = OnceLock::new();
    ATTR.get_or_init(|| Attribute::string("schemas").multi())
}

/// Resolves a filter path; unknown attributes are invalidFilter here, not invalidPath.
pub(super) fn resolve<'s>(schema: &'s ResourceSchema, path: &AttrPath) -> ScimResult<Resolved<'s>> {
    match schema.resolve(path) {
        Ok(resolved) => Ok(resolved),
        Err(_)
            if path.uri.is_none()
                && path.sub.is_none()
                && path.name.eq_ignore_ascii_case("schemas") =>
        {
            Ok(Resolved {
                container: Container::Core,
                attr: schemas_attribute(),
                sub: None,
            })
        }
        Err(e) => Err(ScimError::invalid_filter(e.detail)),
    }
}

/// Checks every path against `schema` and every operator against its attribute's type.
pub fn validate(filter: &Filter, schema: &ResourceSchema) -> ScimResult<()> {
    match filter {
        Filter::Present(path) => resolve(schema, path).map(|_| ()),
        Filter::Compare(path, op, value) => {
            check_comparison(path, resolve(schema, path)?.target(), *op, value)
        }
        Filter::And(..) | Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .try_for_each(|f| validate(f, schema)),
        Filter::Not(inner) => validate(inner, schema),
        Filter::ValuePath(path, inner) => {
            let parent = resolve(schema, path)?.target();
            if parent.ty != AttrType::Complex && !parent.multi_valued {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}' is neither complex nor multi-valued and cannot take a value filter"
                )));
            }
            validate_element_filter(inner, parent, path)
        }
    }
}

/// Validates the filter inside `outer[...]`, whose paths name sub-attributes of `parent`.
fn validate_element_filter(
    filter: &Filter,
    parent: &Attribute,
    outer: &AttrPath,
) -> ScimResult<()> {
    let attribute = |path: &AttrPath| {
        element_attribute(parent, path).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "unknown attribute '{path}' in the value filter of '{outer}'"
            ))
        })
    };
    match filter {
        Filter::Present(path) => attribute(path).map(|_| ()),
        Filter::Compare(path, op, value) => check_comparison(path, attribute(path)?, *op, value),
        Filter::And(..) | Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .try_for_each(|f| validate_element_filter(f, parent, outer)),
        Filter::Not(inner) => validate_element_filter(inner, parent, outer),
        Filter::ValuePath(..) => Err(ScimError::invalid_filter(
            "nested value paths are not allowed",
        )),
    }
}

/// What a path inside `parent[...]` designates: a sub-attribute of a complex parent, or, for a
/// simple multi-valued parent, `value` meaning the element itself (RFC 7643 §2.4).
pub(super) fn element_attribute<'p>(
    parent: &'p Attribute,
    path: &AttrPath,
) -> Option<&'p Attribute> {
    if path.uri.is_some() || path.sub.is_some() {
        return None;
    }
    if parent.ty == AttrType::Complex {
        parent.sub(&path.name)
    } else if path.name.eq_ignore_ascii_case("value") {
        Some(parent)
    } else {
        None
    }
}

/// Complex attributes compare through their `value` sub-attribute (`emails co "example.com"`).
fn comparison_attribute(target: &Attribute) -> &Attribute {
    if target.ty == AttrType::Complex {
        target.sub("value").unwrap_or(target)
    } else {
        target
    }
}

fn check_comparison(
    path: &AttrPath,
    target: &Attribute,
    op: CompareOp,
    literal: &Value,
) -> ScimResult<()> {
    let reject = |why: String| Err(ScimError::invalid_filter(why));
    if target.ty == AttrType::Complex && op.is_ordering() {
        return reject(format!(
            "operator '{op}' cannot order the complex attribute '{path}'"
        ));
    }
    let attr = comparison_attribute(target);
    if op.is_ordering() && !attr.ty.is_ordered() {
        return reject(format!(
            "operator '{op}' is not supported for the {} attribute '{path}'",
            attr.ty.as_str()
        ));
    }
    if attr.ty == AttrType::Boolean {
        // `null` is allowed: `eq null` / `ne null` test absence / presence.
        if !matches!(literal, Value::Bool(_) | Value::Null) {
            return reject(format!(
                "boolean attribute '{path}' can only be compared with true or false"
            ));
        }
        if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return reject(format!(
                "operator '{op}' is not supported for boolean attribute '{path}'; use eq or ne"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::filter::parse;
    use crate::rules::filter::tests::*;

    #[test]
    fn validate_rejects_unknown_attributes_and_bad_operators() {
        let schema = users();
        let v = |text: &str| validate(&parse(text).unwrap(), &schema);
        assert_invalid(v(r#"nope eq "a""#), "unknown attribute");
        assert_invalid(v(r#"name.nope pr"#), "unknown attribute");
        assert_invalid(v(r#"urn:x:y:userName pr"#), "unknown attribute");
        assert_invalid(v(r#"userName pr and not (bogus pr)"#), "unknown attribute");
        assert_invalid(v("active gt true"), "not supported for the boolean");
        assert_invalid(
            v(r#"active eq "true""#),
            "only be compared with true or false",
        );
        assert_invalid(v("active co true"), "use eq or ne");
        assert_invalid(v(r#"x509Certificates.value ge "AAAA""#), "binary");
        assert_invalid(v(r#"emails gt "a""#), "complex");
        assert_invalid(v(r#"name lt "a""#), "complex");
        assert_invalid(
            v(r#"emails[nope eq "a"]"#),
            "unknown attribute 'nope' in the value filter of 'emails'",
        );
        assert_invalid(
            v(r#"userName[value eq "a"]"#),
            "neither complex nor multi-valued",
        );
        assert!(v("active eq false").is_ok());
        assert!(v("active pr and emails[primary eq true]").is_ok());
        assert!(v(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#).is_ok());
        assert!(v(r#"emails[type eq "work"].value eq "x""#).is_ok());
        assert!(v(r#"schemas eq "urn:x""#).is_ok());
        assert!(v(r#"USERNAME eq "x" and Emails.VALUE co "y""#).is_ok());
        assert!(validate(
            &parse(r#"members[value eq "1"] and displayName sw "a""#).unwrap(),
            &groups()
        )
        .is_ok());
        assert_invalid(
            validate(&parse(r#"userName eq "x""#).unwrap(), &groups()),
            "unknown attribute",
        );
    }
}
