//! Property test: arbitrary messages never panic, and a failure or no-op leaves the document
//! exactly as it was.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::rules::patch::json::semantic_eq;

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("members".to_string()),
        Just("members[value eq \"u1\"]".to_string()),
        Just("emails[type eq \"work\"].value".to_string()),
        Just("emails[primary eq true]".to_string()),
        Just("name.givenName".to_string()),
        Just("name".to_string()),
        Just("active".to_string()),
        Just(urn::ENTERPRISE_USER.to_string()),
        Just(format!("{}:manager", urn::ENTERPRISE_USER)),
        Just("id".to_string()),
        "[a-zA-Z\\[\\]\". :]{0,24}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9@.]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("value".to_string()),
                    Just("primary".to_string()),
                    Just("type".to_string()),
                    Just("members".to_string()),
                    Just("Active".to_string()),
                    Just("name.givenName".to_string()),
                    Just("id".to_string()),
                    Just(urn::ENTERPRISE_USER.to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn never_panics_and_failures_leave_the_document_alone(
        ops in prop::collection::vec((0..4u8, path(), value()), 1..5)
    ) {
        let rs = users();
        let list: Vec<Value> = ops
            .iter()
            .map(|(op, path, value)| {
                let name = ["add", "remove", "Replace", "bogus"][*op as usize];
                json!({"op": name, "path": path, "value": value})
            })
            .collect();
        for mut doc in [user_doc(), group_doc()] {
            let before = doc.clone();
            if let Ok(parsed) = parse_request(&body(Value::Array(list.clone())), &rs) {
                match apply(&mut doc, &parsed, &rs) {
                    Ok(false) | Err(_) => prop_assert_eq!(&doc, &before),
                    Ok(true) => prop_assert!(!semantic_eq(&doc, &before)),
                }
            }
        }
    }
}
