//! Evaluating a filter against resource documents (RFC 7644 §3.4.2.2): "any value matches" for
//! multi-valued attributes, comparison by the attribute's type and `caseExact` (RFC 7643 §2.2,
//! §2.3), date-times as instants, and value paths against one element at a time.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::print::chain_operands;
use super::validate::{element_attribute, resolve};
use super::{CompareOp, Filter};
use crate::model::schema::{AttrPath, AttrType, Attribute, Container, Resolved, ResourceSchema};

/// Whether `resource` satisfies `filter`. Unknown attributes never match (run [`validate`](fn@super::validate) first
/// to report them); malformed data never panics, it just does not match.
pub fn matches(filter: &Filter, resource: &Value, schema: &ResourceSchema) -> bool {
    match filter {
        Filter::Present(path) => {
            resolve(schema, path).is_ok_and(|r| values_at(resource, &r).into_iter().any(is_present))
        }
        Filter::Compare(path, op, literal) => resolve(schema, path).is_ok_and(|r| {
            let (values, attr) = comparable(values_at(resource, &r), r.target());
            compare_values(&values, *op, literal, attr)
        }),
        Filter::And(..) => chain_operands(filter)
            .into_iter()
            .all(|f| matches(f, resource, schema)),
        Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .any(|f| matches(f, resource, schema)),
        Filter::Not(inner) => !matches(inner, resource, schema),
        Filter::ValuePath(path, inner) => resolve(schema, path).is_ok_and(|r| {
            values_at(resource, &r)
                .into_iter()
                .any(|element| matches_element(inner, element, r.target()))
        }),
    }
}

/// Evaluates a value-path inner filter against ONE element of the multi-valued (or complex)
/// attribute `parent`, e.g. for PATCH paths like `members[value eq "x"]`.
pub fn matches_element(filter: &Filter, element: &Value, parent: &Attribute) -> bool {
    match filter {
        Filter::Present(path) => element_values(element, parent, path)
            .is_some_and(|(values, _)| values.into_iter().any(is_present)),
        Filter::Compare(path, op, literal) => {
            element_values(element, parent, path).is_some_and(|(values, attr)| {
                let (values, attr) = comparable(values, attr);
                compare_values(&values, *op, literal, attr)
            })
        }
        Filter::And(..) => chain_operands(filter)
            .into_iter()
            .all(|f| matches_element(f, element, parent)),
        Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .any(|f| matches_element(f, element, parent)),
        Filter::Not(inner) => !matches_element(inner, element, parent),
        Filter::ValuePath(..) => false,
    }
}

/// Object member lookup, exact first, then ASCII case-insensitively (attribute names and URNs
/// are case-insensitive; resources normally store the canonical spelling).
fn get_ci<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A multi-valued attribute's elements, or the single value itself.
fn elements(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Every value the resolved path designates ("any value matches" flattens multi-valued ones).
fn values_at<'v>(resource: &'v Value, r: &Resolved<'_>) -> Vec<&'v Value> {
    let base = match r.container {
        Container::Core => Some(resource),
        Container::Extension(urn) => get_ci(resource, urn),
    };
    let items = base
        .and_then(|b| get_ci(b, &r.attr.name))
        .map(elements)
        .unwrap_or_default();
    match r.sub {
        None => items,
        Some(sub) => items
            .into_iter()
            .filter_map(|item| get_ci(item, &sub.name))
            .flat_map(elements)
            .collect(),
    }
}

/// The values of `path` inside one element of `parent`.
fn element_values<'v, 'p>(
    element: &'v Value,
    parent: &'p Attribute,
    path: &AttrPath,
) -> Option<(Vec<&'v Value>, &'p Attribute)> {
    let attr = element_attribute(parent, path)?;
    let values = if parent.ty == AttrType::Complex {
        get_ci(element, &attr.name)
            .map(elements)
            .unwrap_or_default()
    } else {
        vec![element]
    };
    Some((values, attr))
}

/// Maps complex values to their `value` sub-attribute, the way [`comparison_attribute`] does for
/// the schema.
fn comparable<'v, 'a>(
    values: Vec<&'v Value>,
    target: &'a Attribute,
) -> (Vec<&'v Value>, &'a Attribute) {
    if target.ty != AttrType::Complex {
        return (values, target);
    }
    match target.sub("value") {
        Some(value_attr) => {
            let values = values
                .into_iter()
                .filter_map(|v| get_ci(v, &value_attr.name))
                .flat_map(elements)
                .collect();
            (values, value_attr)
        }
        None => (Vec::new(), target),
    }
}

/// RFC 7644 `pr`: not null, not an empty string, array or object.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// "Any value matches", with `ne` true for a missing attribute and `eq null` meaning absent.
fn compare_values(values: &[&Value], op: CompareOp, literal: &Value, attr: &Attribute) -> bool {
    if literal.is_null() {
        let present = values.iter().any(|v| is_present(v));
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }
    let mut actual = values.iter().filter(|v| !v.is_null()).peekable();
    if actual.peek().is_none() {
        return op == CompareOp::Ne;
    }
    actual.any(|v| compare_one(v, op, literal, attr))
}

/// One stored value against the literal, by the attribute's type; type mismatches are false.
fn compare_one(actual: &Value, op: CompareOp, literal: &Value, attr: &Attribute) -> bool {
    match attr.ty {
        AttrType::Boolean => compare_booleans(actual, op, literal),
        AttrType::Integer | AttrType::Decimal => compare_numbers(actual, op, literal),
        AttrType::DateTime => compare_date_times(actual, op, literal),
        AttrType::Complex => false,
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            compare_strings(actual, op, literal, attr.case_exact)
        }
    }
}

/// Whether `ordering` (actual vs literal) satisfies `op`; the substring operators never do.
fn order_holds(ordering: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn fold(text: &str, case_exact: bool) -> Cow<'_, str> {
    if case_exact {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

fn compare_strings(actual: &Value, op: CompareOp, literal: &Value, case_exact: bool) -> bool {
    let (Some(a), Some(b)) = (actual.as_str(), literal.as_str()) else {
        return false;
    };
    let (a, b) = (fold(a, case_exact), fold(b, case_exact));
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        _ => order_holds(a.cmp(&b), op),
    }
}

fn compare_numbers(actual: &Value, op: CompareOp, literal: &Value) -> bool {
    let (Value::Number(a), Value::Number(b)) = (actual, literal) else {
        return false;
    };
    number_cmp(a, b).is_some_and(|ordering| order_holds(ordering, op))
}

/// Exact for integers, `f64` otherwise.
fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Instants compare across time zones; unparseable text still supports exact (in)equality.
fn compare_date_times(actual: &Value, op: CompareOp, literal: &Value) -> bool {
    let (Some(a), Some(b)) = (actual.as_str(), literal.as_str()) else {
        return false;
    };
    if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
        return compare_strings(actual, op, literal, true);
    }
    match (
        crate::model::clock::parse_rfc3339(a),
        crate::model::clock::parse_rfc3339(b),
    ) {
        (Some(x), Some(y)) => order_holds(x.cmp(&y), op),
        _ => matches!(op, CompareOp::Eq | CompareOp::Ne) && order_holds(a.cmp(b), op),
    }
}

fn compare_booleans(actual: &Value, op: CompareOp, literal: &Value) -> bool {
    match (actual.as_bool(), literal.as_bool(), op) {
        (Some(a), Some(b), CompareOp::Eq) => a == b,
        (Some(a), Some(b), CompareOp::Ne) => a != b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::urn;
    use crate::rules::filter::tests::*;
    use crate::rules::filter::{parse, validate};
    use serde_json::json;

    #[test]
    fn string_matching_follows_case_exact() {
        let schema = users();
        let user = bjensen();
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m(r#"userName eq "BJensen""#));
        assert!(m(r#"emails.value eq "BJENSEN@example.COM""#));
        assert!(m(r#"externalId eq "bjensen-ext""#));
        assert!(!m(r#"externalId eq "BJENSEN-EXT""#));
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(m(r#"name.givenName ew "BARA""#));
        assert!(m(r#"userName gt "A" and userName lt "C""#));
        // Unicode case folding for caseExact=false.
        let u = json!({"userName": "ÅSA"});
        assert!(matches(
            &parse(r#"userName eq "åsa""#).unwrap(),
            &u,
            &schema
        ));
        // Keys are found case-insensitively too.
        let u = json!({"USERNAME": "bob", "Emails": [{"Value": "b@x.com"}]});
        assert!(matches(
            &parse(r#"userName eq "bob" and emails eq "B@X.COM""#).unwrap(),
            &u,
            &schema
        ));
    }

    #[test]
    fn extension_attributes_live_under_their_urn() {
        let schema = users();
        let user = bjensen();
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        let ent = urn::ENTERPRISE_USER;
        assert!(m(&format!(r#"{ent}:employeeNumber eq "701984""#)));
        assert!(m(r#"employeeNumber eq "701984""#));
        assert!(!m(&format!(r#"{ent}:employeeNumber eq "701985""#)));
        assert!(m(&format!(
            r#"{ent}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        )));
        assert!(m(&format!(
            r#"{ent}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        )));
        // A top-level employeeNumber is not the extension's.
        let misplaced = json!({"employeeNumber": "701984"});
        assert!(!matches(
            &parse(r#"employeeNumber eq "701984""#).unwrap(),
            &misplaced,
            &schema
        ));
    }

    #[test]
    fn date_times_compare_as_instants_across_time_zones() {
        let schema = users();
        let user = bjensen(); // lastModified 2011-05-13T04:42:34Z
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
        assert!(m(r#"meta.lastModified eq "2011-05-12T23:42:34.000-05:00""#));
        assert!(m(r#"meta.lastModified gt "2011-05-13T05:00:00+01:00""#));
        assert!(!m(r#"meta.lastModified gt "2011-05-13T05:00:00+00:00""#));
        assert!(m(r#"meta.lastModified lt "2011-05-13T04:42:34.001Z""#));
        assert!(!m(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#));
        assert!(!m(r#"meta.lastModified gt "not a date""#));
        assert!(m(r#"meta.lastModified sw "2011-05""#));
        let instant = |s: &str| crate::model::clock::parse_rfc3339(s).unwrap();
        assert_eq!(instant("1970-01-01T00:00:00Z"), (0, 0));
        assert_eq!(
            instant("2000-03-01T00:00:00Z").0 - instant("2000-02-28T00:00:00Z").0,
            2 * 86_400
        );
        assert_eq!(
            instant("2011-05-13T04:42:34.5Z"),
            (1_305_261_754, 500_000_000)
        );
        assert_eq!(
            instant("1969-12-31T23:59:59.123456789123Z"),
            (-1, 123_456_789)
        );
        for bad in [
            "2011-02-29T00:00:00Z",
            "2011-13-01T00:00:00Z",
            "2011-05-13 04:42:34Z",
            "2011-05-13T04:42:34",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34+0200",
            "2011-05-13T24:00:00Z",
        ] {
            assert_eq!(crate::model::clock::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn missing_null_and_mismatched_values() {
        let schema = users();
        let user =
            json!({"userName": "u", "title": "", "emails": [], "nickName": null, "active": true});
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m(r#"displayName ne "x""#));
        assert!(!m(r#"displayName eq "x""#));
        assert!(!m(r#"displayName co "x""#));
        assert!(!m(r#"displayName gt "a""#));
        assert!(!m("title pr") && !m("emails pr") && !m("nickName pr") && !m("displayName pr"));
        assert!(m("userName pr") && m("active pr"));
        assert!(m("displayName eq null") && m("title eq null") && !m("userName eq null"));
        assert!(m("userName ne null") && !m("nickName ne null"));
        assert!(!m("userName eq 5") && !m("userName gt true") && !m("userName eq false"));
        assert!(!m(r#"active eq "true""#) && m("active eq true") && m("active ne false"));
        assert!(m(r#"not (userName eq "v")"#) && !m(r#"not (userName eq "u")"#));
        // Malformed data never panics.
        let odd =
            json!({"userName": 7, "emails": "a@b.c", "name": [1, {"givenName": 3}], "meta": "x"});
        for text in [
            r#"userName eq "7""#,
            r#"emails.value eq "a@b.c""#,
            "name.givenName gt 1",
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        ] {
            assert!(!matches(&parse(text).unwrap(), &odd, &schema), "{text}");
        }
        assert!(!matches(
            &parse(r#"userName eq "a""#).unwrap(),
            &json!("not an object"),
            &schema
        ));
        // Unknown attributes never match.
        assert!(!m("nope pr") && m("not (nope pr)"));
    }

    #[test]
    fn numbers_compare_numerically() {
        let mut schema = users();
        schema
            .core
            .attributes
            .push(Attribute::new("level", AttrType::Integer));
        schema
            .core
            .attributes
            .push(Attribute::new("score", AttrType::Decimal));
        let user = json!({"level": 10, "score": 2.5});
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m("level gt 9") && !m("level gt 10") && m("level ge 10") && m("level eq 10.0"));
        assert!(m("level lt 1e2") && m("score lt 3") && m("score gt -1") && m("score eq 2.5"));
        assert!(!m(r#"level eq "10""#) && !m("level co 1"));
        assert!(validate(&parse("level gt 1").unwrap(), &schema).is_ok());
    }

    #[test]
    fn value_paths_and_matches_element() {
        let group_schema = groups();
        let group = json!({
            "displayName": "Admins",
            "members": [{"value": "u1", "type": "User"}, {"value": "g1", "type": "Group", "display": "Sub"}]
        });
        let gm = |text: &str| matches(&parse(text).unwrap(), &group, &group_schema);
        assert!(gm(r#"members[value eq "g1" and type eq "Group"]"#));
        assert!(!gm(r#"members[value eq "u1" and type eq "Group"]"#));
        assert!(gm(r#"members[not (display pr)]"#));
        assert!(gm(r#"members.value eq "u1""#));
        assert!(!gm(r#"members[value eq "u2"]"#));

        let members = group_schema.resolve(&path("members")).unwrap().attr;
        let inner = match parse(r#"members[value eq "G1" or display sw "s"]"#).unwrap() {
            Filter::ValuePath(_, inner) => *inner,
            other => panic!("{other:?}"),
        };
        // `value` of members is caseExact=false in this schema.
        assert!(matches_element(&inner, &group["members"][1], members));
        assert!(!matches_element(&inner, &group["members"][0], members));
        assert!(!matches_element(
            &parse("nope pr").unwrap(),
            &group["members"][0],
            members
        ));
        // Simple multi-valued parent: `value` is the element itself.
        let tags = Attribute::string("tags").multi();
        assert!(matches_element(
            &parse(r#"value eq "A""#).unwrap(),
            &json!("a"),
            &tags
        ));
        assert!(!matches_element(
            &parse(r#"value eq "b""#).unwrap(),
            &json!("a"),
            &tags
        ));
        // Complex single-valued attribute as a value path.
        assert!(matches(
            &parse(r#"name[givenName eq "barbara"]"#).unwrap(),
            &bjensen(),
            &users()
        ));
    }
}
