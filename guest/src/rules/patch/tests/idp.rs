//! The request shapes identity providers send (Okta, Entra), through the engine.

use serde_json::json;

use super::*;

#[test]
fn okta_deactivate_is_a_pathless_replace() {
    let mut doc = user_doc();
    let changed = run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .unwrap();
    assert!(changed);
    let mut expected = user_doc();
    expected["active"] = json!(false);
    assert_eq!(doc, expected);
    // Deactivating again changes nothing.
    assert!(!run(
        &mut doc,
        &users(),
        json!([{"op": "replace", "value": {"active": false}}])
    )
    .unwrap());
    assert_eq!(doc, expected);
}

#[test]
fn pascal_case_names_and_capitalised_ops() {
    let mut doc = user_doc();
    let ops = json!([
        {"op": "replace", "value": {"Active": false, "DisplayName": "Ada L.", "NAME": {"GivenName": "Augusta"}}},
        {"Op": "add", "Path": "NickName", "Value": "Ada"}
    ]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    assert_eq!(doc["active"], json!(false));
    assert_eq!(doc["displayName"], json!("Ada L."));
    assert_eq!(
        doc["name"],
        json!({"givenName": "Augusta", "familyName": "Lovelace"})
    );
    assert_eq!(doc["nickName"], json!("Ada"));
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        !keys
            .iter()
            .any(|k| ["Active", "DisplayName", "NAME", "NickName"].contains(k)),
        "{keys:?}"
    );
}

#[test]
fn okta_group_rename_carries_the_same_id() {
    let mut doc = group_doc();
    let ops = json!([{"op": "replace", "value": {"id": "abf4dd94", "displayName": "New"}}]);
    assert!(run(&mut doc, &groups(), ops.clone()).unwrap());
    let mut expected = group_doc();
    expected["displayName"] = json!("New");
    assert_eq!(doc, expected);
    // Okta repeats the rename with every membership update: a no-op.
    assert!(!run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(doc, expected);
}

#[test]
fn a_different_id_in_a_pathless_replace_is_a_mutability_error() {
    let mut doc = group_doc();
    let ops = json!([{"op": "replace", "value": {"id": "other", "displayName": "New"}}]);
    let e = run(&mut doc, &groups(), ops).unwrap_err();
    assert_eq!(kind(&e), Some(ScimType::Mutability));
    assert_eq!(doc, group_doc());
    // meta and schemas in a value are ignored.
    let ops = json!([{"op": "replace", "value": {"meta": {"resourceType": "X"}, "schemas": ["x"], "displayName": "Test SCIMv2"}}]);
    assert!(!run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(doc, group_doc());
}

#[test]
fn okta_membership_delta() {
    let mut doc = group_doc();
    let ops = json!([
        {"op": "remove", "path": "members[value eq \"u1\"]"},
        {"op": "add", "path": "members", "value": [{"value": "u3", "display": "x"}]}
    ]);
    assert!(run(&mut doc, &groups(), ops).unwrap());
    let mut expected = group_doc();
    // `display` is readOnly: the server derives it.
    expected["members"] = json!([{"value": "u2"}, {"value": "u3"}]);
    assert_eq!(doc, expected);
}

#[test]
fn re_adding_a_member_is_a_no_op() {
    let mut doc = group_doc();
    let ops = json!([{"op": "add", "path": "members", "value": [{"value": "u1", "display": "someone else"}]}]);
    assert!(!run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(doc, group_doc());
    // Also pathless, as a single value rather than a list, and duplicated in one request.
    let ops = json!([{"op": "add", "value": {"members": [{"value": "u2"}, {"value": "u2", "type": "User"}]}}]);
    assert!(!run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(doc, group_doc());
}

#[test]
fn removing_an_absent_member_is_a_no_op() {
    let mut doc = group_doc();
    let ops = json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]);
    assert!(!run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(doc, group_doc());
    let mut empty = json!({"schemas": [urn::GROUP], "id": "g", "displayName": "Empty"});
    assert!(!run(
        &mut empty,
        &groups(),
        json!([{"op": "remove", "path": "members[value eq \"x\"]"}])
    )
    .unwrap());
    assert_eq!(
        empty,
        json!({"schemas": [urn::GROUP], "id": "g", "displayName": "Empty"})
    );
}

#[test]
fn replace_members_replaces_the_whole_list() {
    let mut doc = group_doc();
    let ops = json!([{"op": "replace", "path": "members",
        "value": [{"value": "u2", "display": "two"}, {"value": "u9"}, {"value": "u9"}]}]);
    assert!(run(&mut doc, &groups(), ops).unwrap());
    let mut expected = group_doc();
    expected["members"] = json!([{"value": "u2"}, {"value": "u9"}]);
    assert_eq!(doc, expected);
    // The pathless variant seen from Okta (jelhub/scimgateway#113): an empty list empties the group.
    let ops = json!([{"op": "replace", "value": {"members": [], "id": "abf4dd94", "displayName": "Test SCIMv2"}}]);
    assert!(run(&mut doc, &groups(), ops).unwrap());
    expected.as_object_mut().unwrap().remove("members");
    assert_eq!(doc, expected);
}

#[test]
fn remove_members_without_filter_removes_all() {
    let mut doc = group_doc();
    assert!(run(
        &mut doc,
        &groups(),
        json!([{"op": "remove", "path": "members"}])
    )
    .unwrap());
    let mut expected = group_doc();
    expected.as_object_mut().unwrap().remove("members");
    assert_eq!(doc, expected);
    assert!(!run(
        &mut doc,
        &groups(),
        json!([{"op": "remove", "path": "members"}])
    )
    .unwrap());
}

#[test]
fn entra_remove_with_a_value_list_removes_only_those_members() {
    let mut doc = group_doc();
    let ops =
        json!([{"op": "remove", "path": "members", "value": [{"$ref": null, "value": "u1"}]}]);
    assert!(run(&mut doc, &groups(), ops).unwrap());
    let mut expected = group_doc();
    expected["members"] = json!([{"value": "u2"}]);
    assert_eq!(doc, expected);
    // An empty list removes nothing rather than everything.
    let ops = json!([{"op": "remove", "path": "members", "value": []}]);
    assert!(!run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(doc, expected);
}

#[test]
fn entra_add_member_as_a_bare_string_and_with_ref_null() {
    let mut doc = group_doc();
    let ops = json!([
        {"op": "add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5"}]},
        {"op": "add", "path": "members", "value": "string id 1"}
    ]);
    assert!(run(&mut doc, &groups(), ops).unwrap());
    assert_eq!(
        doc["members"],
        json!([{"value": "u1", "display": "one"}, {"value": "u2"}, {"value": "f648f8d5"}, {"value": "string id 1"}])
    );
}

#[test]
fn entra_replace_through_a_value_filter_and_a_sub_attribute() {
    let mut doc = user_doc();
    let ops = json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x.com"},
        {"op": "replace", "path": "name.familyName", "value": "updatedFamilyName"}
    ]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    let mut expected = user_doc();
    expected["emails"][0]["value"] = json!("new@x.com");
    expected["name"]["familyName"] = json!("updatedFamilyName");
    assert_eq!(doc, expected);
}

#[test]
fn entra_dotted_and_urn_keys_in_a_pathless_replace() {
    let mut doc = user_doc();
    let ops = json!([{"op": "replace", "value": {
        "displayName": "Bjfe",
        "name.givenName": "Kkom",
        "name.familyName": "Unua",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
    }}]);
    assert!(run(&mut doc, &users(), ops).unwrap());
    let mut expected = user_doc();
    expected["displayName"] = json!("Bjfe");
    expected["name"] = json!({"givenName": "Kkom", "familyName": "Unua"});
    expected["schemas"] = json!([urn::USER, urn::ENTERPRISE_USER]);
    expected[urn::ENTERPRISE_USER] = json!({"employeeNumber": "Aklq"});
    assert_eq!(doc, expected);
}
