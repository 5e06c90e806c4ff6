//! The dialect rules end to end: request shapes identity providers send, served through the
//! HTTP handler on the in-memory store (the rewrites themselves are unit-tested in
//! `src/rules/dialect/`), and the shapes RFC 7643/7644 already allow, which need no rule.

mod common;

use scimlet_guest::filter::{parse_with, ParseOptions};
use scimlet_guest::http::Response;
use scimlet_guest::store::{Scan, Store};
use serde_json::{json, Value};

/// The schema URNs the bodies name (RFC 7643 §8.7.1, RFC 7644 §3.5.2, the writer profile).
mod urn {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub const WRITER_USER: &str = "urn:custom:params:scim:schemas:extension:writer:2.0:User";
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn patch(ops: Value) -> Value {
    json!({"schemas": [urn::PATCH_OP], "Operations": ops})
}

/// A tenant on the in-memory store, served through the HTTP handler ([`common::Tenant`]).
struct Tenant(common::Tenant);

impl Tenant {
    fn new(policy: &str) -> Tenant {
        Tenant(common::Tenant::with_policy(policy))
    }

    fn call(&self, method: &str, target: &str, body: Option<Value>) -> Response<'static> {
        self.0.call(method, target, body, &[])
    }

    fn ok(&self, method: &str, target: &str, body: Value) -> Value {
        self.0.ok(method, target, Some(body))
    }

    fn ok_get(&self, target: &str) -> Value {
        let resp = self.call("GET", target, None);
        assert_eq!(resp.status, 200, "GET {target}: {}", resp.json_body());
        resp.json_body()
    }

    /// A user with a work email; its id.
    fn user(&self, name: &str) -> String {
        let body = json!({"userName": name, "name": {"givenName": "G", "familyName": name},
            "emails": [{"value": format!("{name}@x"), "type": "work", "primary": true}]});
        self.ok("POST", "/Users", body)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every stored value, as text (to prove what is never stored).
    fn store_text(&self) -> String {
        let all = Scan {
            start: String::new(),
            end: "\u{10ffff}".into(),
            skip: 0,
            limit: u32::MAX,
            descending: false,
            keys_only: false,
        };
        let entries = self.0.store.scan(&all).unwrap();
        assert!(!entries.is_empty());
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .collect()
    }
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
        parse_with(
            f,
            ParseOptions {
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

// ---- string booleans, bare manager, roles as JSON text (rules/dialect/values.rs) ----

#[test]
fn bare_manager_through_the_handler_stores_the_manager_object() {
    let t = Tenant::new("");
    let (boss, id) = (t.user("boss"), t.user("ada"));
    let body =
        patch(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}]));
    t.ok("PATCH", &format!("/Users/{id}"), body);
    let stored = t.ok_get(&format!("/Users/{id}"));
    assert_eq!(stored[ENTERPRISE]["manager"]["value"], boss.as_str());
}

#[test]
fn json_string_roles_through_the_handler_set_the_writer_role() {
    let t = Tenant::new(r#"{"profile":"writer"}"#);
    let id = t.user("ada");
    let body = patch(
        json!([{"op": "replace", "path": "roles", "value": "[{\"value\":\"admin\",\"primary\":true}]"}]),
    );
    t.ok("PATCH", &format!("/Users/{id}"), body);
    let stored = t.ok_get(&format!("/Users/{id}"));
    assert_eq!(
        stored["roles"],
        json!([{"value": "admin", "primary": true}])
    );
    assert_eq!(stored[urn::WRITER_USER]["role"], "admin");
}

// ---- remove with value, add with a value filter (rules/dialect/filters.rs) ----

#[test]
fn remove_with_value_through_the_handler_removes_exactly_those_members() {
    for (overrides, status) in [("", 200), (r#"{"dialect.remove-with-value":false}"#, 400)] {
        let t = Tenant::new(overrides);
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|n| t.user(n)).collect();
        let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let g = t.ok(
            "POST",
            "/Groups",
            json!({"displayName": "Eng", "members": members}),
        );
        let gid = g["id"].as_str().unwrap();
        let body = patch(
            json!([{"op": "remove", "path": "members", "value": [{"$ref": null, "value": ids[1]}]}]),
        );
        let resp = t.call("PATCH", &format!("/Groups/{gid}"), Some(body));
        assert_eq!(resp.status, status, "{}", resp.json_body());
        let stored = t.ok_get(&format!("/Groups/{gid}"));
        let mut left: Vec<&str> = stored["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        if status == 200 {
            want.retain(|id| *id != ids[1]);
        }
        want.sort();
        assert_eq!(left, want, "policy {overrides}");
    }
}

#[test]
fn add_filter_upsert_through_the_handler_creates_then_updates() {
    let t = Tenant::new("");
    let id = t.user("ada");
    let add = |v: &str| {
        patch(json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": v}]))
    };
    t.ok("PATCH", &format!("/Users/{id}"), add("555"));
    t.ok("PATCH", &format!("/Users/{id}"), add("556"));
    let stored = t.ok_get(&format!("/Users/{id}"));
    assert_eq!(
        stored["phoneNumbers"],
        json!([{"type": "work", "value": "556"}])
    );
}

// ---- path keys (rules/dialect/path_keys.rs) ----

#[test]
fn path_keys_through_the_handler_store_each_attribute() {
    let t = Tenant::new("");
    let id = t.user("bjfe");
    let body = patch(json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x"},
        {"op": "replace", "value": {
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            format!("{ENTERPRISE}:employeeNumber"): "Aklq"
        }}
    ]));
    let out = t.ok("PATCH", &format!("/Users/{id}"), body);
    let stored = t.ok_get(&format!("/Users/{id}"));
    assert_eq!(out, stored);
    assert_eq!(stored["displayName"], "Bjfe");
    assert_eq!(
        stored["name"],
        json!({"givenName": "Kkom", "familyName": "Unua"})
    );
    assert_eq!(stored[ENTERPRISE]["employeeNumber"], "Aklq");
    assert_eq!(stored["emails"][0]["value"], "new@x");
    assert!(stored["schemas"]
        .as_array()
        .unwrap()
        .contains(&json!(ENTERPRISE)));
}
