//! Hostile identifiers (guest/src/identifiers.rs): control characters and over-long values in
//! `userName`, `externalId`, `emails.value` and a group's `displayName` get 400 `invalidValue`
//! naming the attribute on every write path, and the store is left exactly as it was.

mod common;

use common::Tenant;
use proptest::prelude::*;
use scimlet_guest::operator::verify;
use scimlet_guest::operator::{Outcome, Row};
use scimlet_guest::store::{MemStore, Store, Write};
use scimlet_guest::Service;
use serde_json::{json, Value};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// C0 controls, DEL and C1 controls an attacker would pick: NUL, the index separator U+001F,
/// DEL, tab, CR/LF, ESC, NEL, CSI.
const CONTROLS: [char; 9] = [
    '\u{0}', '\u{1f}', '\u{7f}', '\t', '\n', '\r', '\u{1b}', '\u{85}', '\u{9b}',
];

/// Every key and value in the tenant's store.
fn snapshot(store: &MemStore) -> Vec<(String, Vec<u8>)> {
    store
        .keys()
        .into_iter()
        .map(|k| {
            let v = store.get(&k).unwrap().unwrap().value;
            (k, v)
        })
        .collect()
}

/// Sends a write that must be refused with 400 `invalidValue` whose detail starts with `attr`,
/// and asserts that nothing in the store changed.
fn refused(t: &Tenant, method: &str, target: &str, body: Value, attr: &str) {
    let before = snapshot(&t.store);
    let context = format!("{method} {target} {}", abbreviated(&body));
    let (status, err) = t.err(method, target, Some(body));
    assert_eq!(status, 400, "{context}: {err}");
    assert_eq!(err["scimType"], "invalidValue", "{context}: {err}");
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("{attr} must ")),
        "{context}: {detail}"
    );
    assert!(
        !detail.chars().any(char::is_control) && detail.len() < 200,
        "the detail never echoes the value: {detail:?}"
    );
    assert_eq!(snapshot(&t.store), before, "{context}: nothing stored");
}

fn abbreviated(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// The user-name writes of every shape: POST, PUT, PATCH with and without a path, with a URN
/// path, Entra's capitalised ops and a PascalCase attribute name.
fn user_name_writes(id: &str, value: &str) -> Vec<(&'static str, String, Value)> {
    let at = format!("/Users/{id}");
    vec![
        ("POST", "/Users".into(), json!({"userName": value})),
        ("PUT", at.clone(), json!({"userName": value})),
        (
            "PATCH",
            at.clone(),
            patch(json!([{"op": "replace", "path": "userName", "value": value}])),
        ),
        (
            "PATCH",
            at.clone(),
            patch(json!([{"op": "replace", "value": {"userName": value}}])),
        ),
        (
            "PATCH",
            at.clone(),
            patch(json!([{"op": "Replace", "path": "userName", "value": value}])),
        ),
        (
            "PATCH",
            at.clone(),
            patch(json!([{"op": "Add", "value": {"UserName": value}}])),
        ),
        (
            "PATCH",
            at,
            patch(json!([{"op": "replace", "path": format!("{USER}:userName"), "value": value}])),
        ),
    ]
}

#[test]
fn control_characters_in_a_user_name_are_refused_on_every_write_path() {
    let t = Tenant::new();
    let id = t.create("ada@example.com");
    for c in CONTROLS {
        let value = format!("ada{c}@example.com");
        for (method, target, body) in user_name_writes(&id, &value) {
            refused(&t, method, &target, body, "userName");
        }
    }
    let user = t.ok("GET", &format!("/Users/{id}"), None);
    assert_eq!(user["userName"], "ada@example.com");
    assert_eq!(user["meta"]["version"], "W/\"1\"");
    assert_eq!(t.ok("GET", "/Users", None)["totalResults"], 1);
    assert_eq!(verify(&t.store, &t.policy), []);
}

#[test]
fn user_names_are_bounded_at_1024_characters() {
    let t = Tenant::new();
    let id = t.create("short");
    for long in ["a".repeat(1025), "a".repeat(100_000)] {
        for (method, target, body) in user_name_writes(&id, &long) {
            refused(&t, method, &target, body, "userName");
        }
    }
    // Characters, not bytes: 1 024 characters of 4 bytes each are accepted.
    let at_limit = ["b".repeat(1024), "😀".repeat(1024)];
    for name in &at_limit {
        t.create(name);
    }
    let renamed = t.ok(
        "PATCH",
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "userName", "value": "c".repeat(1024)}]),
        )),
    );
    assert_eq!(renamed["userName"].as_str().map(str::len), Some(1024));
    assert_eq!(t.ok("GET", "/Users", None)["totalResults"], 3);
    assert_eq!(verify(&t.store, &t.policy), []);
}

#[test]
fn external_ids_of_users_and_groups_are_checked_alike() {
    let t = Tenant::new();
    let uid = t.create("ada");
    let gid = t.ok("POST", "/Groups", Some(json!({"displayName": "Sales"})))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hostile = [
        "00u\u{0}1".to_string(),
        "00u\u{1f}1".to_string(),
        "x".repeat(1025),
    ];
    for value in &hostile {
        for (kind, id, base) in [
            ("Users", &uid, json!({"userName": "ada"})),
            ("Groups", &gid, json!({"displayName": "Sales"})),
        ] {
            let mut body = base.clone();
            body["externalId"] = value.as_str().into();
            refused(&t, "POST", &format!("/{kind}"), body.clone(), "externalId");
            refused(&t, "PUT", &format!("/{kind}/{id}"), body, "externalId");
            for ops in [
                json!([{"op": "add", "path": "externalId", "value": value}]),
                json!([{"op": "Replace", "value": {"externalId": value}}]),
            ] {
                refused(
                    &t,
                    "PATCH",
                    &format!("/{kind}/{id}"),
                    patch(ops),
                    "externalId",
                );
            }
        }
    }
    let ok = "y".repeat(1024);
    let user = t.ok(
        "PATCH",
        &format!("/Users/{uid}"),
        Some(patch(
            json!([{"op": "add", "path": "externalId", "value": ok}]),
        )),
    );
    assert_eq!(user["externalId"].as_str(), Some(ok.as_str()));
    let group = t.ok(
        "PUT",
        &format!("/Groups/{gid}"),
        Some(json!({"displayName": "Sales", "externalId": ok})),
    );
    assert_eq!(group["externalId"].as_str(), Some(ok.as_str()));
    assert_eq!(verify(&t.store, &t.policy), []);
}

#[test]
fn group_display_names_are_checked_on_every_write_path() {
    let t = Tenant::new();
    let uid = t.create("ada");
    let gid = t.ok("POST", "/Groups", Some(json!({"displayName": "Sales"})))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let at = format!("/Groups/{gid}");
    let mut hostile: Vec<String> = CONTROLS.iter().map(|c| format!("Sa{c}les")).collect();
    hostile.extend(["s".repeat(1025), "s".repeat(100_000)]);
    for value in &hostile {
        refused(
            &t,
            "POST",
            "/Groups",
            json!({"displayName": value}),
            "displayName",
        );
        refused(
            &t,
            "PUT",
            &at,
            json!({"displayName": value, "members": [{"value": uid}]}),
            "displayName",
        );
        for ops in [
            json!([{"op": "replace", "path": "displayName", "value": value}]),
            json!([{"op": "Replace", "value": {"displayName": value}}]),
            // The member add in the same request is refused with it: all operations or none.
            json!([{"op": "add", "path": "members", "value": [{"value": uid}]},
                   {"op": "replace", "path": "displayName", "value": value}]),
        ] {
            refused(&t, "PATCH", &at, patch(ops), "displayName");
        }
    }
    let group = t.ok("GET", &at, None);
    assert_eq!(group["displayName"], "Sales");
    assert!(group.get("members").is_none(), "{group}");
    t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "g".repeat(1024)})),
    );
    assert_eq!(t.ok("GET", "/Groups", None)["totalResults"], 2);
    assert_eq!(verify(&t.store, &t.policy), []);
}

#[test]
fn indexed_email_values_are_identifiers_too_value_filters_included() {
    let t = Tenant::new();
    let id = t.ok(
        "POST",
        "/Users",
        Some(json!({"userName": "ada", "emails": [{"value": "ada@x.com", "type": "work"}]})),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let at = format!("/Users/{id}");
    let bad = "ada\u{1f}evil@x.com";
    refused(
        &t,
        "POST",
        "/Users",
        json!({"userName": "bob", "emails": [{"value": "bob@x.com"}, {"value": bad}]}),
        "emails.value",
    );
    for ops in [
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": bad}]),
        json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": bad}]),
        json!([{"op": "Add", "path": "emails", "value": [{"value": "x".repeat(1025)}]}]),
    ] {
        refused(&t, "PATCH", &at, patch(ops), "emails.value");
    }
    assert_eq!(
        t.ok("GET", &at, None)["emails"],
        json!([{"value": "ada@x.com", "type": "work"}])
    );
}

/// Free text is not an identifier: tabs, newlines and NULs there are data, stored exactly.
#[test]
fn free_text_keeps_its_control_characters() {
    let t = Tenant::new();
    let body = json!({
        "userName": "ada",
        "name": {"formatted": "Ada\tLovelace\n", "givenName": "A\u{0}da"},
        "displayName": "Ada\r\nLovelace", "title": "x".repeat(5000),
    });
    let user = t.ok("POST", "/Users", Some(body.clone()));
    let read = t.ok(
        "GET",
        &format!("/Users/{}", user["id"].as_str().unwrap()),
        None,
    );
    for key in ["name", "displayName", "title"] {
        assert_eq!(read[key], body[key], "{key}");
    }
}

/// A user stored before the rules existed (written straight into the store here) can still be
/// deactivated; renaming it must give a clean name.
#[test]
fn legacy_identifiers_do_not_block_other_updates() {
    let t = Tenant::new();
    let id = t.create("legacy");
    let key = format!("r/User/{id}");
    let mut doc: Value =
        serde_json::from_slice(&t.store.get(&key).unwrap().unwrap().value).unwrap();
    doc["userName"] = "leg\u{0}acy".into();
    t.store
        .commit(
            &[],
            &[
                Write::Put(key, serde_json::to_vec(&doc).unwrap()),
                Write::Delete("u/User/userName/legacy".into()),
                Write::Put("u/User/userName/leg\u{0}acy".into(), id.as_bytes().to_vec()),
            ],
        )
        .unwrap();
    assert_eq!(verify(&t.store, &t.policy), []);
    let at = format!("/Users/{id}");
    let off = t.ok(
        "PATCH",
        &at,
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    );
    assert_eq!(
        (off["active"].as_bool(), off["userName"].as_str()),
        (Some(false), Some("leg\u{0}acy"))
    );
    t.ok(
        "PUT",
        &at,
        Some(json!({"userName": "leg\u{0}acy", "active": true})),
    );
    refused(
        &t,
        "PATCH",
        &at,
        patch(json!([{"op": "replace", "path": "userName", "value": "LEG\u{0}ACY"}])),
        "userName",
    );
    let clean = t.ok("PUT", &at, Some(json!({"userName": "legacy"})));
    assert_eq!(clean["userName"], "legacy");
    assert_eq!(verify(&t.store, &t.policy), []);
}

/// Under a link-only policy POST /Groups looks the name up instead of storing it: the rule
/// answers first, so the refusal names the rule and never echoes the value.
#[test]
fn link_only_group_pushes_are_checked_before_the_lookup() {
    let t = Tenant::writer();
    t.create("ada");
    refused(
        &t,
        "POST",
        "/Groups",
        json!({"displayName": "Everyone\u{0}"}),
        "displayName",
    );
    refused(
        &t,
        "POST",
        "/Groups",
        json!({"displayName": "e".repeat(100_000)}),
        "displayName",
    );
}

#[test]
fn import_rows_with_hostile_identifiers_fail_alone_and_store_nothing() {
    let store = MemStore::new();
    let svc = Service::new(&store, "", r#"{"profile":"writer"}"#).unwrap();
    let rows: Vec<Row> = [
        json!({"type": "team", "name": "Sa\u{0}les"}),
        json!({"type": "user", "userName": "ada\u{0}@x.com"}),
        json!({"type": "user", "userName": "n".repeat(1025)}),
        json!({"type": "user", "userName": "bob@x.com", "externalId": "00u\u{7f}"}),
        json!({"type": "user", "userName": "eve@x.com", "email": "eve\n@x.com"}),
        json!({"type": "user", "userName": "joe@x.com", "teams": ["Ops", "Sa\u{1b}les"]}),
    ]
    .iter()
    .map(|r| Row::from_json(r).unwrap())
    .collect();
    let outcomes = svc.import_batch(&rows).unwrap();
    let expected = [
        "displayName",
        "userName",
        "userName",
        "externalId",
        "emails.value",
        "teams: displayName",
    ];
    for (outcome, attr) in outcomes.iter().zip(expected) {
        assert!(
            matches!(outcome, Outcome::Failed(m) if m.starts_with(&format!("{attr} must "))),
            "{outcome:?}"
        );
    }
    assert!(store.is_empty(), "{:?}", store.keys());
    let ok = Row::from_json(&json!({"type": "user", "userName": "joe@x.com", "teams": ["Ops"]}));
    assert_eq!(
        svc.import_batch(&[ok.unwrap()]).unwrap(),
        [Outcome::Created]
    );
}

fn clean_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_filter("not Cc", |c| !c.is_control()),
        1..=1024,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Through the handler: a userName with any control character anywhere is a 400 that
    /// stores nothing; any other userName within the limit is created.
    #[test]
    fn user_names_through_the_handler(
        name in clean_name(),
        c in prop_oneof![0u32..0x20, Just(0x7f), 0x80u32..0xa0].prop_map(|c| char::from_u32(c).unwrap()),
        at in any::<prop::sample::Index>(),
    ) {
        let t = Tenant::new();
        let mut chars: Vec<char> = name.chars().collect();
        chars.insert(at.index(chars.len() + 1), c);
        let hostile: String = chars.into_iter().collect();
        let resp = t.call("POST", "/Users", Some(json!({"userName": hostile})), &[]);
        prop_assert_eq!(resp.status, 400);
        prop_assert_eq!(&resp.json_body()["scimType"], "invalidValue");
        prop_assert!(t.store.is_empty());
        let resp = t.call("POST", "/Users", Some(json!({"userName": name})), &[]);
        let created = resp.json_body();
        prop_assert_eq!(resp.status, 201, "{}", created);
        prop_assert_eq!(created["userName"].as_str(), Some(name.as_str()));
    }
}
