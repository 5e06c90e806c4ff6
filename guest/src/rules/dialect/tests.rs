//! Fixtures shared by the dialect tests, and the tests that hold across rules: RFC shapes pass
//! untouched, search bodies are not rewritten, firing rules are logged, and the shapes RFC
//! 7643/7644 already allow need no rule.

use serde_json::{json, Value};

use super::*;
use crate::model::error::ScimType;
use crate::model::schema::urn;
use crate::persist::store::MemStore;
use crate::protocol::http::{handle, Request, Response};

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

// ---- shapes that need no rule (RFC 7643/7644 already allow them) ----

#[test]
fn pascal_case_names_work_in_patch_values_paths_and_filters() {
    let t = Tenant::new("");
    let id = t.user("ada");
    let body = json!({"Schemas": [urn::PATCH_OP], "Operations": [
        {"Op": "replace", "Path": "Name.GivenName", "Value": "Augusta"},
        {"op": "replace", "value": {"Active": false, "Name": {"FamilyName": "King"}, "Emails": [{"Value": "a@k", "Type": "work", "Primary": true}]}}
    ]});
    t.ok("PATCH", &format!("/Users/{id}"), body);
    let stored = t.ok_get(&format!("/Users/{id}"));
    assert_eq!(
        stored["name"],
        json!({"givenName": "Augusta", "familyName": "King"})
    );
    assert_eq!(stored["active"], false);
    assert_eq!(
        stored["emails"],
        json!([{"value": "a@k", "type": "work", "primary": true}])
    );
    for filter in [
        "UserName%20eq%20%22ADA%22",
        "Emails%5BType%20eq%20%22work%22%5D.Value%20eq%20%22a@k%22",
        "emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22a@k%22",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName%20eq%20%22ada%22",
    ] {
        let list = t.ok_get(&format!("/Users?filter={filter}"));
        assert_eq!(list["totalResults"], 1, "{filter}");
    }
}

#[test]
fn filters_accept_schema_urns_in_paths() {
    for f in [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\"",
        "urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq \"Eng\"",
        "schemas eq \"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group\"",
        "externalId eq jyoung",
    ] {
        crate::rules::filter::parse_with(
            f,
            crate::rules::filter::ParseOptions {
                lenient_unquoted: true,
            },
        )
        .unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
    let t = Tenant::new("");
    let id = t.user("ada");
    let body =
        patch(json!([{"op": "add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "7"}]));
    t.ok("PATCH", &format!("/Users/{id}"), body);
    let f =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber%20eq%20%227%22";
    assert_eq!(t.ok_get(&format!("/Users?filter={f}"))["totalResults"], 1);
}

#[test]
fn okta_and_microsoft_extras_are_accepted_and_ignored() {
    let t = Tenant::new("");
    // Okta create: `password` and `groups: []` accepted, never stored or returned.
    let created = t.ok("POST", "/Users", json!({
        "schemas": [urn::USER], "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"}, "groups": [], "password": "1mz050nq", "active": true
    }));
    let id = created["id"].as_str().unwrap();
    let stored = t.ok_get(&format!("/Users/{id}"));
    assert!(stored.get("password").is_none() && created.get("password").is_none());
    assert!(
        !t.store_text().contains("1mz050nq"),
        "the password is never stored"
    );
    // Microsoft's extra group schema and Okta's custom group extension.
    let g = t.ok("POST", "/Groups", json!({
        "schemas": [urn::GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0", "displayName": "Eng", "meta": {"resourceType": "Group"},
        "urn:okta:custom:group:1.0": {"description": "d"}
    }));
    let gid = g["id"].as_str().unwrap().to_string();
    let stored = t.ok_get(&format!("/Groups/{gid}"));
    assert_eq!(
        (
            stored["displayName"].as_str(),
            stored["externalId"].as_str()
        ),
        (Some("Eng"), Some("8aa1a0c0"))
    );
    assert!(stored.get("urn:okta:custom:group:1.0").is_none());
    // Okta's rename with every membership change: same id and name, a no-op.
    let before = stored["meta"]["version"].clone();
    let same = patch(json!([{"op": "replace", "value": {"id": gid, "displayName": "Eng"}}]));
    t.ok("PATCH", &format!("/Groups/{gid}"), same);
    assert_eq!(
        t.ok_get(&format!("/Groups/{gid}"))["meta"]["version"],
        before
    );
    // Entra's compatibility flag and other unknown query parameters are ignored.
    let list = t.ok_get(
        "/Users?aadOptscim062020&filter=userName%20eq%20%22test.user@okta.local%22&foo=bar",
    );
    assert_eq!(list["totalResults"], 1);
}

/// A tenant on the in-memory store, served through the HTTP handler.
pub(crate) struct Tenant {
    store: MemStore,
    policy: String,
}

impl Tenant {
    pub(crate) fn new(policy: &str) -> Tenant {
        Tenant {
            store: MemStore::new(),
            policy: policy.to_string(),
        }
    }

    pub(crate) fn call(&self, method: &str, target: &str, body: Option<Value>) -> Response<'_> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        handle(
            &self.store,
            &Request {
                method: method.into(),
                path: path.into(),
                query: query.into(),
                headers: vec![("content-type".into(), "application/scim+json".into())],
                body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
                base_url: "https://scim.example.com/scim/v2".into(),
                policy: self.policy.clone(),
            },
        )
    }

    pub(crate) fn ok(&self, method: &str, target: &str, body: Value) -> Value {
        let resp = self.call(method, target, Some(body));
        assert!(
            resp.status < 300,
            "{method} {target}: {} {}",
            resp.status,
            resp.json_body()
        );
        resp.json_body()
    }

    pub(crate) fn ok_get(&self, target: &str) -> Value {
        let resp = self.call("GET", target, None);
        assert_eq!(resp.status, 200, "GET {target}: {}", resp.json_body());
        resp.json_body()
    }

    pub(crate) fn user(&self, name: &str) -> String {
        let body = json!({"userName": name, "name": {"givenName": "G", "familyName": name},
            "emails": [{"value": format!("{name}@x"), "type": "work", "primary": true}]});
        self.ok("POST", "/Users", body)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every stored value, as text (to prove what is never stored).
    pub(crate) fn store_text(&self) -> String {
        use crate::persist::store::{Scan, Store};
        let all = Scan {
            start: String::new(),
            end: "\u{10ffff}".into(),
            skip: 0,
            limit: u32::MAX,
            descending: false,
            keys_only: false,
        };
        let entries = self.store.scan(&all).unwrap();
        assert!(!entries.is_empty());
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .collect()
    }
}
