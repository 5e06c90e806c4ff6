//! Fixtures shared by the dialect tests, and the tests that hold across rules: RFC shapes pass
//! untouched, search bodies are not rewritten, firing rules are logged. The rules end to end,
//! through the HTTP handler, and the shapes RFC 7643/7644 already allow (which need no rule) are
//! tested in `tests/dialect.rs`.

use serde_json::{json, Value};

use super::*;
use crate::model::error::ScimType;
use crate::model::schema::urn;

pub(crate) const ENTERPRISE: &str = urn::ENTERPRISE_USER;

pub(crate) fn policy(overrides: &str) -> Policy {
    Policy::from_json(overrides).unwrap()
}

pub(crate) fn users(p: &Policy) -> ResourceSchema {
    p.user_schema()
}

pub(crate) fn patch(ops: Value) -> Value {
    json!({"schemas": [urn::PATCH_OP], "Operations": ops})
}

/// Rewrites a PATCH for users under `overrides`; the operations and the rules that fired.
pub(crate) fn user_patch(overrides: &str, ops: Value) -> ScimResult<(Value, Vec<Rule>)> {
    let p = policy(overrides);
    let (body, fired) = rewrite(patch(ops), "PATCH", Some(&users(&p)), &p)?;
    Ok((body["Operations"].clone(), rules(&fired)))
}

pub(crate) fn group_patch(overrides: &str, ops: Value) -> ScimResult<(Value, Vec<Rule>)> {
    let p = policy(overrides);
    let (body, fired) = rewrite(patch(ops), "PATCH", Some(&p.group_schema()), &p)?;
    Ok((body["Operations"].clone(), rules(&fired)))
}

pub(crate) fn user_body(
    overrides: &str,
    method: &str,
    body: Value,
) -> ScimResult<(Value, Vec<Rule>)> {
    let p = policy(overrides);
    let (body, fired) = rewrite(body, method, Some(&users(&p)), &p)?;
    Ok((body, rules(&fired)))
}

pub(crate) fn rules(fired: &[Fired]) -> Vec<Rule> {
    let mut r: Vec<Rule> = fired.iter().map(|f| f.rule).collect();
    r.dedup();
    r
}

pub(crate) fn kind(e: &ScimError) -> Option<ScimType> {
    e.scim_type
}

/// The error a switched-off rule gives, checked to name the rule and its policy key.
pub(crate) fn refused(r: ScimResult<(Value, Vec<Rule>)>, rule: Rule) -> ScimError {
    let e = r.expect_err("the rule is off, so the shape is refused");
    assert_eq!(e.status, 400);
    assert!(e.detail.contains(rule.name()), "{}", e.detail);
    assert!(e.detail.contains(rule.policy_key()), "{}", e.detail);
    e
}

// ---- RFC shapes, search bodies, logging ----

#[test]
fn rfc_bodies_pass_untouched() {
    let body = json!({
        "schemas": [urn::USER, ENTERPRISE], "userName": "a", "active": true,
        "emails": [{"value": "a@x", "primary": true}], ENTERPRISE: {"manager": {"value": "b"}},
        "roles": [{"value": "member"}]
    });
    assert_eq!(user_body("", "POST", body.clone()).unwrap(), (body, vec![]));
    let ops = json!([
        {"op": "replace", "value": {"active": false}},
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": "members[value eq \"u2\"]"},
        {"op": "replace", "value": {"id": "g1", "displayName": "Eng"}}
    ]);
    assert_eq!(group_patch("", ops.clone()).unwrap(), (ops, vec![]));
    // Malformed messages are the engine's to report.
    let p = policy("");
    for bad in [
        json!([1]),
        json!({"Operations": "x"}),
        json!({"Operations": [{"op": 5}, "x"]}),
    ] {
        let (out, fired) = rewrite(bad.clone(), "PATCH", Some(&users(&p)), &p).unwrap();
        assert_eq!((out, fired), (bad, vec![]));
    }
}

#[test]
fn search_bodies_are_not_rewritten() {
    let p = policy("");
    let body = json!({"schemas": [urn::SEARCH_REQUEST], "filter": "active eq \"True\""});
    let (out, fired) = rewrite(body.clone(), "POST", None, &p).unwrap();
    assert_eq!((out, fired), (body, vec![]));
}

#[test]
fn every_firing_rule_is_logged_by_name_without_values() {
    let p = policy("");
    let ops = patch(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "displayName", "value": "Secret Name"},
        {"op": "add", "path": "emails[value eq \"secret@x\"].primary", "value": "True"}
    ]));
    let log = diag::capture(|| {
        normalize(ops, "PATCH", Some(&users(&p)), &p).unwrap();
    });
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[0].contains("'capitalised-ops'") && log[0].contains("Operations[0].op"));
    assert!(log[0].contains("Operations[1].op"), "{log:?}");
    assert!(log[1].contains("'boolean-strings'") && log[1].contains("active"));
    assert!(log[1].contains("Operations[2] (emails)"), "{log:?}");
    assert!(log[2].contains("'add-filter-upsert'"), "{log:?}");
    let secret = |l: &String| l.contains("Secret") || l.contains("secret@x");
    assert!(!log.iter().any(secret), "{log:?}");
}
