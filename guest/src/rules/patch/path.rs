//! PATCH paths (RFC 7644 §3.5.2, Figure 7): `attr[valFilter].subAttr`, URN-qualified or not,
//! or a whole extension container, resolved against a resource type's schemas (RFC 7643 §3.3)
//! into a canonical [`PatchPath`]. Every error is 400 `invalidPath` (RFC 7644 §3.12).

use super::PatchPath;
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrPath, AttrType, Attribute, Container, ResourceSchema};
use crate::rules::filter::{self, Filter};

/// Parses a PATCH path against `schema`. A path equal (case-insensitively) to an extension URN is
/// [`PatchPath::Extension`]; otherwise `attr[filter].sub`, where `attr` is an attribute path
/// (URN-qualified or not; the URN ends at the last `:`, so the `.` of `2.0` never splits it) and
/// the bracket part a filter relative to `attr`'s sub-attributes. Every error is 400 invalidPath.
pub fn parse_path(text: &str, schema: &ResourceSchema) -> ScimResult<PatchPath> {
    let text = text.trim();
    if let Some(ext) = schema.extension(text) {
        return Ok(PatchPath::Extension(ext.id.clone()));
    }
    let bad = |why: &str| ScimError::invalid_path(format!("invalid path '{text}': {why}"));
    let (attr_text, filter_text, sub_text) =
        split_path(text).ok_or_else(|| bad("expected attribute[filter].subAttribute"))?;
    let path = AttrPath::parse(attr_text).ok_or_else(|| bad("not an attribute path"))?;
    if filter_text.is_some() && path.sub.is_some() {
        return Err(bad(
            "a value filter must follow the attribute, not a sub-attribute",
        ));
    }
    let resolved = schema.resolve(&path)?;
    let attr = resolved.attr;
    let filter = match filter_text {
        None => None,
        Some(ft) => {
            if !attr.multi_valued && attr.ty != AttrType::Complex {
                return Err(bad(&format!(
                    "'{}' is a single simple value and takes no filter",
                    attr.name
                )));
            }
            let f = filter::parse(ft).map_err(|e| bad(&e.detail))?;
            check_filter(&f, attr).map_err(|why| bad(&why))?;
            Some(f)
        }
    };
    let sub = match sub_text {
        Some(s) => Some(
            attr.sub(s)
                .ok_or_else(|| bad(&format!("'{}' has no sub-attribute '{s}'", attr.name)))?,
        ),
        None => resolved.sub,
    };
    let uri = match resolved.container {
        Container::Core => None,
        Container::Extension(u) => Some(u.to_string()),
    };
    Ok(PatchPath::Attr {
        attr: AttrPath {
            uri,
            name: attr.name.clone(),
            sub: None,
        },
        filter,
        sub: sub.map(|s| s.name.clone()),
    })
}

/// Splits `attr[filter].sub` into its three parts; `None` when the brackets are malformed.
fn split_path(text: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let Some(open) = text.find('[') else {
        return (!text.contains(']')).then_some((text, None, None));
    };
    let rest = &text[open + 1..];
    let (mut in_string, mut escaped, mut close) = (false, false, None);
    for (i, c) in rest.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            ']' => {
                close = Some(i);
                break;
            }
            '[' => return None,
            _ => {}
        }
    }
    let close = close?;
    let inner = &rest[..close];
    let after = &rest[close + 1..];
    if inner.trim().is_empty() {
        return None;
    }
    let sub = if after.is_empty() {
        None
    } else {
        Some(after.strip_prefix('.')?)
    };
    Some((&text[..open], Some(inner), sub))
}

/// Checks that every attribute a value filter names is an element attribute of `parent` (the
/// form [`filter::matches_element`] evaluates), so a typo is `invalidPath`, not a silent no-op.
pub(super) fn check_filter(f: &Filter, parent: &Attribute) -> Result<(), String> {
    let mut pending = vec![f];
    while let Some(f) = pending.pop() {
        match f {
            Filter::Present(p) | Filter::Compare(p, _, _) => {
                if element_attribute(p, parent).is_none() {
                    return Err(format!("'{p}' is not a sub-attribute of '{}'", parent.name));
                }
            }
            Filter::And(a, b) | Filter::Or(a, b) => {
                pending.push(a);
                pending.push(b);
            }
            Filter::Not(a) => pending.push(a),
            Filter::ValuePath(..) => return Err("value filters cannot nest".into()),
        }
    }
    Ok(())
}

/// The element attribute a value-filter path names: a sub-attribute of a complex `parent`, or
/// `value` for the elements of a simple multi-valued one.
pub(super) fn element_attribute<'a>(p: &AttrPath, parent: &'a Attribute) -> Option<&'a Attribute> {
    if p.uri.is_some() || p.sub.is_some() {
        return None;
    }
    if parent.ty == AttrType::Complex {
        parent.sub(&p.name)
    } else {
        p.name.eq_ignore_ascii_case("value").then_some(parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use crate::model::schema::urn;
    use crate::rules::patch::parse_request;
    use crate::rules::patch::tests::{body, groups, kind, users};
    use serde_json::json;

    #[test]
    fn bad_paths_are_invalid_path() {
        let rs = users();
        for path in [
            "nope",
            "emails[type eq \"work\"",
            "emails[type eq]",
            "emails[]",
            "emails[type eq \"work\"]value",
            "emails[type eq \"work\"].nope",
            "emails[nope eq \"work\"]",
            "emails.value[type eq \"work\"]",
            "userName[value eq \"x\"]",
            "name.nope",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope",
            "urn:x:y:employeeNumber",
            "a b",
            "emails[type eq \"a\"][value eq \"b\"]",
        ] {
            let e = parse_request(&body(json!([{"op": "remove", "path": path}])), &rs).unwrap_err();
            assert_eq!(kind(&e), Some(ScimType::InvalidPath), "{path}: {e}");
        }
        let e = parse_request(&body(json!([{"op": "remove", "path": 7}])), &rs).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    }

    #[test]
    fn paths_parse_to_canonical_form() {
        let rs = users();
        let p = parse_path("Emails[Type eq \"work\" and value co \"]\"].VALUE", &rs).unwrap();
        let PatchPath::Attr { attr, filter, sub } = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            attr,
            AttrPath {
                uri: None,
                name: "emails".into(),
                sub: None
            }
        );
        assert!(filter.is_some());
        assert_eq!(sub.as_deref(), Some("value"));
        let p = parse_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            &rs,
        )
        .unwrap();
        assert_eq!(
            p,
            PatchPath::Attr {
                attr: AttrPath {
                    uri: Some(urn::ENTERPRISE_USER.into()),
                    name: "manager".into(),
                    sub: None
                },
                filter: None,
                sub: Some("value".into()),
            }
        );
        assert_eq!(
            parse_path(
                " URN:ietf:params:scim:schemas:extension:enterprise:2.0:User ",
                &rs
            )
            .unwrap(),
            PatchPath::Extension(urn::ENTERPRISE_USER.into())
        );
        let p = parse_path(
            "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
            &rs,
        )
        .unwrap();
        assert!(
            matches!(p, PatchPath::Attr { ref attr, sub: Some(ref s), .. } if attr.uri.is_none() && attr.name == "name" && s == "familyName")
        );
        let p = parse_path(
            "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
            &groups(),
        )
        .unwrap();
        assert!(
            matches!(p, PatchPath::Attr { ref attr, filter: Some(_), sub: None } if attr.name == "members")
        );
    }
}
