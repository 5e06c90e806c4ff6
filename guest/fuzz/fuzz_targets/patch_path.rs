//! The PATCH path parser, on the user and group schemas: never panics, and what it accepts is
//! canonical (the sub-attribute is in `sub`, the attribute resolves) with a value filter that
//! round-trips through `Display`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimlet_guest::filter;
use scimlet_guest::patch::{parse_path, PatchPath};
use scimlet_guest::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = Policy::from_json(r#"{"profile":"writer"}"#).expect("valid policy");
    for schema in [policy.user_schema(), policy.group_schema()] {
        let Ok(path) = parse_path(text, &schema) else {
            continue;
        };
        if let PatchPath::Attr { attr, filter, .. } = &path {
            assert!(attr.sub.is_none(), "{text:?} parsed as {path:?}");
            assert!(schema.resolve(attr).is_ok(), "{text:?} parsed as {path:?}");
            if let Some(f) = filter {
                let printed = f.to_string();
                let reparsed = filter::parse(&printed)
                    .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
                assert_eq!(f, &reparsed, "{text:?}");
            }
        }
    }
});
