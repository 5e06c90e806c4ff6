//! Fixtures shared by the filter tests (the RFC 7644 §3.4.2.2 example users and filters), and
//! the tests that cross every layer: parse, validate, print and evaluate.

use std::fmt;

use serde_json::{json, Value};

use super::*;
use crate::model::error::{ScimResult, ScimType};
use crate::model::schema::{core_group, core_user, enterprise_user, urn, ResourceSchema};

pub(crate) fn users() -> ResourceSchema {
    ResourceSchema::new(
        "User",
        "/Users",
        "User Account",
        core_user(),
        vec![enterprise_user()],
    )
}

pub(crate) fn groups() -> ResourceSchema {
    ResourceSchema::new("Group", "/Groups", "Group", core_group(), vec![])
}

pub(crate) fn path(text: &str) -> AttrPath {
    AttrPath::parse(text).unwrap()
}

pub(crate) fn cmp(p: &str, op: CompareOp, v: Value) -> Filter {
    Filter::Compare(path(p), op, v)
}

pub(crate) fn pr(p: &str) -> Filter {
    Filter::Present(path(p))
}

pub(crate) fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

pub(crate) fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

pub(crate) fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}

pub(crate) fn assert_invalid(result: ScimResult<impl fmt::Debug>, needle: &str) {
    let err = result.expect_err("expected invalidFilter");
    assert_eq!(
        (err.status, err.scim_type),
        (400, Some(ScimType::InvalidFilter)),
        "{err}"
    );
    assert!(
        err.detail.contains(needle),
        "detail {:?} lacks {needle:?}",
        err.detail
    );
}

pub(crate) fn bjensen() -> Value {
    json!({
        "schemas": [urn::USER, urn::ENTERPRISE_USER],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen-ext",
        "userName": "bjensen",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "bjensen@foo.com", "type": "xmpp"}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z"
        },
        urn::ENTERPRISE_USER: {
            "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

pub(crate) fn intern() -> Value {
    json!({
        "schemas": [urn::USER],
        "id": "c3a26dd3-27a0-4dec-a2ac-ce211e105f97",
        "userName": "jdoe",
        "name": {"familyName": "Doe"},
        "userType": "Intern",
        "active": false,
        "emails": [{"value": "jdoe@interns.net", "type": "home"}],
        "meta": {"lastModified": "2012-01-01T00:00:00+01:00"}
    })
}

pub(crate) const LAST_MODIFIED: &str = "2011-05-13T04:42:34Z";

/// RFC 7644 §3.4.2.2 examples with their outcome for (bjensen, intern).
pub(crate) fn rfc_examples() -> Vec<(String, bool, bool)> {
    let ent = urn::ENTERPRISE_USER;
    vec![
        (r#"userName eq "bjensen""#.into(), true, false),
        (r#"name.familyName co "O'Malley""#.into(), true, false),
        (r#"userName sw "J""#.into(), false, true),
        (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#.into(), false, true),
        ("title pr".into(), true, false),
        (format!(r#"meta.lastModified gt "{LAST_MODIFIED}""#), false, true),
        (format!(r#"meta.lastModified ge "{LAST_MODIFIED}""#), true, true),
        (format!(r#"meta.lastModified lt "{LAST_MODIFIED}""#), false, false),
        (format!(r#"meta.lastModified le "{LAST_MODIFIED}""#), true, false),
        (r#"title pr and userType eq "Employee""#.into(), true, false),
        (r#"title pr or userType eq "Intern""#.into(), true, true),
        (format!(r#"schemas eq "{ent}""#), true, false),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#.into(),
            true,
            false,
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#.into(),
            false,
            true,
        ),
        (r#"userType eq "Employee" and (emails.type eq "work")"#.into(), true, false),
        (r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#.into(), true, false),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
                .into(),
            true,
            false,
        ),
    ]
}

#[test]
fn rfc_examples_parse_validate_round_trip_and_evaluate() {
    let schema = users();
    for (text, bjensen_matches, intern_matches) in rfc_examples() {
        let filter = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        validate(&filter, &schema).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parse(&filter.to_string()), Ok(filter.clone()), "{text}");
        assert_eq!(
            matches(&filter, &bjensen(), &schema),
            bjensen_matches,
            "{text} on bjensen"
        );
        assert_eq!(
            matches(&filter, &intern(), &schema),
            intern_matches,
            "{text} on intern"
        );
    }
}

#[test]
fn worst_case_filters_fit_a_wasm_sized_stack() {
    // wasm32 guests get a 1 MiB stack by default; the deepest and the longest filters the
    // bounds allow must parse, validate, evaluate, print and drop within it (debug build).
    let worst = move || {
        let deepest = format!(
            "{}userName pr{}",
            "not (".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        let longest = vec!["userName pr"; (MAX_FILTER_LEN + 5) / 16].join(" and ");
        for text in [deepest, longest] {
            let f = parse(&text).unwrap();
            validate(&f, &users()).unwrap();
            let _ = matches(&f, &bjensen(), &users());
            assert_eq!(parse(&f.to_string()), Ok(f));
        }
    };
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(worst)
        .unwrap();
    handle
        .join()
        .expect("worst-case filters overflowed a 1 MiB stack");
}
