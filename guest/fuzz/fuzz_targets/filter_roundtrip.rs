//! The filter parser: never panics, and whatever it accepts prints (`Display`) as text that
//! parses back, strictly, to the same tree. Accepted filters are also validated and evaluated
//! against a user, which must not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimlet_guest::filter::{self, ParseOptions, MAX_FILTER_LEN};
use scimlet_guest::Policy;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let schema = Policy::default().user_schema();
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1", "userName": "Ada", "active": true, "externalId": "e1",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
        "meta": {"created": "2024-01-01T00:00:00Z", "lastModified": "2024-02-01T00:00:00Z"},
    });
    for lenient in [false, true] {
        let opts = ParseOptions {
            lenient_unquoted: lenient,
        };
        let Ok(parsed) = filter::parse_with(text, opts) else {
            continue;
        };
        let printed = parsed.to_string();
        // Printing may lengthen a filter (quotes around lenient values, canonical spacing);
        // the length limit then refuses it, which is not a round-trip failure.
        if printed.len() <= MAX_FILTER_LEN {
            let reparsed = filter::parse(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
            assert_eq!(parsed, reparsed, "{text:?} printed as {printed:?}");
        }
        if filter::validate(&parsed, &schema).is_ok() {
            filter::matches(&parsed, &user, &schema);
        }
    }
});
