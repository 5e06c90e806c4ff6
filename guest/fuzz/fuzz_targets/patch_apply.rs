//! The PATCH engine on a fixed user: `parse_request` then `apply` never panic, and a failed or
//! no-op PATCH leaves the document exactly as it was (apply is atomic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimlet_guest::patch::{apply, parse_request};
use scimlet_guest::Policy;
use serde_json::{json, Value};

fn user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:custom:params:scim:schemas:extension:writer:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true}],
        "roles": [{"value": "member", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        },
        "urn:custom:params:scim:schemas:extension:writer:2.0:User": {"role": "member"},
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3\""}
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let schema = Policy::from_json(r#"{"profile":"writer"}"#)
        .expect("valid policy")
        .user_schema();
    let Ok(ops) = parse_request(&body, &schema) else {
        return;
    };
    let before = user();
    let mut doc = before.clone();
    match apply(&mut doc, &ops, &schema) {
        Ok(true) => assert!(doc.is_object()),
        Ok(false) => assert_eq!(doc, before, "a no-op PATCH changed the document"),
        Err(e) => {
            assert_eq!(doc, before, "a failed PATCH ({e}) changed the document");
            assert!((400..500).contains(&e.status), "{e}");
        }
    }
});
