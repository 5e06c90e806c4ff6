//! RFC 7644 §3.5.2 semantics: complex merges, `primary`, extensions, value filters, atomicity,
//! mutability, structural checks and `remove`.

use serde_json::json;

use super::*;

#[test]
fn replace_of_a_complex_attribute_merges_sub_attributes() {
    let mut doc = user_doc();
    let ops = json!([{"op": "replace", "path": "name", "value": {"givenName": "Augusta", "middleName": null, "formatted": "A. A. Lovelace"}}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(
        doc["name"],
        json!({"givenName": "Augusta", "familyName": "Lovelace", "formatted": "A. A. Lovelace"})
    );
    let ops = json!([{"op": "replace", "value": {"name": {"familyName": null}}}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(
        doc["name"],
        json!({"givenName": "Augusta", "formatted": "A. A. Lovelace"})
    );
}

#[test]
fn a_new_primary_email_clears_the_old_one() {
    let mut doc = user_doc();
    let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "ada@new.example", "type": "other", "primary": true}]}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "ada@example.com", "type": "work", "primary": false},
            {"value": "ada@home.example", "type": "home"},
            {"value": "ada@new.example", "type": "other", "primary": true}
        ])
    );
    // Through a filter, too.
    let ops = json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    let primaries: Vec<bool> = doc["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["primary"] == json!(true))
        .collect();
    assert_eq!(primaries, [false, true, false]);
}

#[test]
fn enterprise_urn_path_add() {
    let mut doc = user_doc();
    let ops = json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "701984"}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    let mut expected = user_doc();
    expected["schemas"] = json!([urn::USER, urn::ENTERPRISE_USER]);
    expected[urn::ENTERPRISE_USER] = json!({"employeeNumber": "701984"});
    assert_eq!(doc, expected);
    // Removing its last attribute removes the container and its URN.
    let ops = json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(doc, user_doc());
}

#[test]
fn extension_container_path_with_an_object_value() {
    let mut doc = user_doc();
    let ops = json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
        "value": {"schemas": [urn::ENTERPRISE_USER], "Department": "R&D", "manager": {"value": "m-1", "displayName": "ignored"}}}]);
    assert!(
        run(&mut doc, &users(), ops).unwrap(),
        "an extension object may carry its schemas (scim2-tester does)"
    );
    let mut expected = user_doc();
    expected["schemas"] = json!([urn::USER, urn::ENTERPRISE_USER]);
    expected[urn::ENTERPRISE_USER] = json!({"department": "R&D", "manager": {"value": "m-1"}});
    assert_eq!(doc, expected);
    // Entra's bare-string manager, then removal through a filter on the single-valued attribute.
    let ops = json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "271"}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(
        doc[urn::ENTERPRISE_USER]["manager"],
        json!({"value": "271"})
    );
    let ops = json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value eq \"271\"]"}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(doc[urn::ENTERPRISE_USER], json!({"department": "R&D"}));
    // Removing the container removes its URN.
    let ops = json!([{"op": "remove", "path": urn::ENTERPRISE_USER}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(doc, user_doc());
}

#[test]
fn pathless_extension_container_key() {
    let mut doc = user_doc();
    let ops = json!([{"op": "replace", "value": {urn::WRITER_USER: {"Role": "admin"}, "urn:ietf:params:scim:schemas:core:2.0:User": {"title": "Countess"}}}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(doc[urn::WRITER_USER], json!({"role": "admin"}));
    assert_eq!(doc["title"], json!("Countess"));
    assert_eq!(doc["schemas"], json!([urn::USER, urn::WRITER_USER]));
}

#[test]
fn writer_role_replace_by_urn_path() {
    let mut doc = user_doc();
    let path = "urn:custom:params:scim:schemas:extension:writer:2.0:User:role";
    assert!(run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "path": path, "value": "member"}])
    )
    .unwrap());
    let mut expected = user_doc();
    expected["schemas"] = json!([urn::USER, urn::WRITER_USER]);
    expected[urn::WRITER_USER] = json!({"role": "member"});
    assert_eq!(doc, expected);
    assert!(run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "path": path, "value": "admin"}])
    )
    .unwrap());
    expected[urn::WRITER_USER] = json!({"role": "admin"});
    assert_eq!(doc, expected);
}

#[test]
fn replace_through_a_filter_matching_nothing_is_no_target() {
    let mut doc = user_doc();
    let e = run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x@y"}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::NoTarget));
    assert_eq!(doc, user_doc());
}

#[test]
fn add_through_a_filter_matching_nothing_creates_the_element() {
    let mut doc = user_doc();
    let ops =
        json!([{"op": "add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555-0100"}]);
    assert!(run(&mut doc, &users(), ops.clone()).unwrap());
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "work", "value": "555-0100"}])
    );
    // Again: now it matches and is updated in place.
    let ops =
        json!([{"op": "add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555-0199"}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "work", "value": "555-0199"}])
    );
    // A filter that is not just `eq` terms cannot describe a new element.
    let ops = json!([{"op": "add", "path": "ims[type ne \"aim\"].value", "value": "x"}]);
    assert_eq!(
        kind(&run(&mut doc, &users(), ops).unwrap_err()),
        Some(ScimType::NoTarget)
    );
}

#[test]
fn atomicity_a_failing_operation_undoes_the_earlier_ones() {
    let rs = users();
    // Fails while parsing: nothing is applied.
    let mut doc = user_doc();
    let e = run(&mut doc, &rs, json!([{"op": "replace", "value": {"active": false}}, {"op": "replace", "path": "nope", "value": 1}])).unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
    assert_eq!(doc, user_doc());
    // Fails while applying, after a successful first operation.
    let ops = vec![
        PatchOperation {
            op: OpKind::Replace,
            path: None,
            value: Some(json!({"active": false})),
        },
        PatchOperation {
            op: OpKind::Replace,
            path: Some(PatchPath::Attr {
                attr: AttrPath::parse("nope").unwrap(),
                filter: None,
                sub: None,
            }),
            value: Some(json!(1)),
        },
    ];
    let e = apply(&mut doc, &ops, &rs).unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    assert_eq!(doc, user_doc());
    let e = run(
        &mut doc,
        &rs,
        json!([
            {"op": "replace", "value": {"active": false}},
            {"op": "add", "path": "members", "value": "x"}
        ]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    let e = run(
        &mut doc,
        &rs,
        json!([
            {"op": "replace", "value": {"active": false}},
            {"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x"}
        ]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::NoTarget));
    assert_eq!(doc, user_doc());
}

#[test]
fn read_only_targets_are_mutability_errors() {
    let mut doc = user_doc();
    for (op, path) in [
        ("replace", "id"),
        ("remove", "meta"),
        ("replace", "meta.lastModified"),
        ("add", "groups"),
        (
            "replace",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
        ),
    ] {
        let e = run(
            &mut doc,
            &users(),
            json!([{"op": op, "path": path, "value": "x"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability), "{op} {path}");
    }
    let mut g = group_doc();
    let e = run(
        &mut g,
        &groups(),
        json!([{"op": "replace", "path": "members[value eq \"u1\"].display", "value": "x"}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    assert_eq!(doc, user_doc());
    assert_eq!(g, group_doc());
}

#[test]
fn required_and_immutable_attributes_are_protected() {
    let mut doc = user_doc();
    let e = run(
        &mut doc,
        &users(),
        json!([{"op": "remove", "path": "userName"}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    let e = run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "value": {"userName": null}}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    let mut g = group_doc();
    let e = run(
        &mut g,
        &groups(),
        json!([{"op": "remove", "path": "displayName"}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    // members.value is immutable: set when the member is added, never changed.
    let e = run(
        &mut g,
        &groups(),
        json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u9"}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    // ... but may be set where absent.
    let ops = json!([{"op": "add", "path": "members[value eq \"u2\"].type", "value": "User"}]);
    assert!(run(&mut g, &groups(), ops).unwrap());
    assert_eq!(
        g["members"],
        json!([{"value": "u1", "display": "one"}, {"value": "u2", "type": "User"}])
    );
    let e = run(
        &mut g,
        &groups(),
        json!([{"op": "replace", "path": "members[value eq \"u2\"].type", "value": "Group"}]),
    )
    .unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    assert_eq!(doc, user_doc());
}

#[test]
fn structurally_impossible_values_are_invalid_value() {
    let rs = users();
    for ops in [
        json!([{"op": "replace", "path": "active", "value": {"x": 1}}]),
        json!([{"op": "add", "path": "nickName", "value": ["a"]}]),
        json!([{"op": "replace", "path": "name", "value": "Ada"}]),
        json!([{"op": "add", "path": "emails", "value": [["a"]]}]),
        json!([{"op": "replace", "path": "name.givenName", "value": {"a": 1}}]),
        json!([{"op": "replace", "value": "Ada"}]),
        json!([{"op": "replace", "value": {"nope": 1}}]),
        json!([{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "x"}}]),
        json!([{"op": "add", "path": urn::ENTERPRISE_USER, "value": 5}]),
        json!([{"op": "replace", "value": {urn::ENTERPRISE_USER: {"nope": 1}}}]),
    ] {
        let mut doc = user_doc();
        let e = run(&mut doc, &rs, ops.clone()).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidValue), "{ops}: {e}");
        assert_eq!(doc, user_doc());
    }
    let mut doc = user_doc();
    let e = run(
        &mut doc,
        &rs,
        json!([{"op": "replace", "value": {"nope": 1}}]),
    )
    .unwrap_err();
    assert!(e.detail.contains("'nope'"), "{}", e.detail);
}

#[test]
fn remove_semantics() {
    let rs = users();
    let mut doc = user_doc();
    // A sub-attribute of matching elements.
    assert!(run(
        &mut doc,
        &rs,
        json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}])
    )
    .unwrap());
    assert_eq!(
        doc["emails"][0],
        json!({"value": "ada@example.com", "type": "work"})
    );
    // Matching elements.
    assert!(run(
        &mut doc,
        &rs,
        json!([{"op": "remove", "path": "emails[value ew \"home.example\"]"}])
    )
    .unwrap());
    assert_eq!(
        doc["emails"],
        json!([{"value": "ada@example.com", "type": "work"}])
    );
    // A single-valued attribute and a sub-attribute.
    assert!(run(
        &mut doc,
        &rs,
        json!([{"op": "remove", "path": "displayName"}, {"op": "remove", "path": "name.givenName"}])
    )
    .unwrap());
    assert!(doc.get("displayName").is_none());
    assert_eq!(doc["name"], json!({"familyName": "Lovelace"}));
    // Absent attributes: success, no change.
    assert!(!run(&mut doc, &rs, json!([{"op": "remove", "path": "nickName"}, {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}])).unwrap());
    // Replace with null unassigns.
    assert!(run(
        &mut doc,
        &rs,
        json!([{"op": "replace", "path": "name.familyName", "value": null}])
    )
    .unwrap());
    assert!(doc.get("name").is_none());
}

#[test]
fn write_only_password_is_accepted() {
    let mut doc = user_doc();
    assert!(run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "path": "password", "value": "1mz050nq"}])
    )
    .unwrap());
    assert_eq!(doc["password"], json!("1mz050nq"));
}

#[test]
fn a_patch_of_nothing_changes_nothing() {
    let mut doc = user_doc();
    let ops = json!([
        {"op": "add", "path": "emails", "value": {"value": "ada@example.com", "type": "work", "primary": true}},
        {"op": "replace", "path": "userName", "value": "ada@example.com"},
        {"op": "add", "path": "nickName", "value": null},
        {"op": "replace", "value": {"id": "2819c223", "name": {"givenName": "Ada"}}}
    ]);
    assert!(!run(&mut doc, &users(), ops).unwrap());
    assert_eq!(doc, user_doc());
}
