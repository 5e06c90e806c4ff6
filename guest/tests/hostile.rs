//! Hostile input through the HTTP handler: every request gets a SCIM answer (a 4xx error body
//! for what is invalid), nothing panics, the store stays consistent, and the tenant keeps
//! working afterwards.

mod common;

use common::Tenant;
use scimlet_guest::http::{handle, Request, Response};
use scimlet_guest::operator::verify;
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A request with a raw body and content type.
fn raw<'t>(
    t: &'t Tenant,
    method: &str,
    target: &str,
    content_type: &str,
    body: &[u8],
) -> Response<'t> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let req = Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: vec![("content-type".into(), content_type.into())],
        body: body.to_vec(),
        base_url: common::BASE.into(),
        policy: t.policy.clone(),
    };
    handle(&t.store, &req)
}

/// Asserts an RFC 7644 §3.12 error with this status and `scimType`.
fn assert_error(resp: &Response<'_>, status: u16, scim_type: Option<&str>, context: &str) {
    let body = resp.json_body();
    assert_eq!(resp.status, status, "{context}: {body}");
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{context}"
    );
    assert_eq!(body["status"], status.to_string(), "{context}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    if let Some(t) = scim_type {
        assert_eq!(body["scimType"], t, "{context}: {body}");
    }
}

/// The tenant still serves a normal create and read, and its store is consistent.
fn assert_healthy(t: &Tenant) {
    let name = format!("healthy-{}", t.store.len());
    let id = t.create(&name);
    let user = t.ok("GET", &format!("/Users/{id}"), None);
    assert_eq!(user["userName"], name.as_str());
    assert_eq!(verify(&t.store, &t.policy), []);
}

fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

#[test]
fn ten_thousand_levels_of_json_nesting_are_invalid_syntax() {
    let t = Tenant::new();
    let bodies = [
        nested("[", "", "]", 10_000),
        nested("{\"a\":", "1", "}", 10_000),
        format!(
            "{{\"userName\":\"deep\",\"name\":{}}}",
            nested("{\"givenName\":", "\"x\"", "}", 10_000)
        ),
    ];
    for body in &bodies {
        let resp = raw(
            &t,
            "POST",
            "/Users",
            "application/scim+json",
            body.as_bytes(),
        );
        assert_error(&resp, 400, Some("invalidSyntax"), "deep JSON");
        let patch = raw(
            &t,
            "POST",
            "/.search",
            "application/scim+json",
            body.as_bytes(),
        );
        assert_error(&patch, 400, Some("invalidSyntax"), "deep search body");
    }
    assert_healthy(&t);
}

/// The guest has no size limit of its own for free text: the host caps request bodies (413,
/// 1 MiB by default), and whatever passes that cap is stored exactly. Identifiers are bounded
/// (guest/src/identifiers.rs): a 10 MB userName is a 400 that stores nothing.
#[test]
fn ten_megabyte_values_are_stored_and_read_back_exactly() {
    let t = Tenant::new();
    let big = "x".repeat(10 << 20);
    let user = t.ok(
        "POST",
        "/Users",
        Some(json!({"userName": "big", "displayName": big})),
    );
    let id = user["id"].as_str().unwrap();
    let read = t.ok("GET", &format!("/Users/{id}"), None);
    assert_eq!(read["displayName"].as_str().map(str::len), Some(10 << 20));
    let keys = t.store.keys();
    let resp = t.call(
        "POST",
        "/Users",
        Some(json!({"userName": format!("big-{big}")})),
        &[],
    );
    assert_error(&resp, 400, Some("invalidValue"), "10 MB userName");
    assert_eq!(t.store.keys(), keys, "nothing stored");

    let garbage = vec![b'x'; 10 << 20];
    let resp = raw(&t, "POST", "/Users", "application/scim+json", &garbage);
    assert_error(&resp, 400, Some("invalidSyntax"), "10 MB of garbage");
    assert_healthy(&t);
}

#[test]
fn a_one_megabyte_user_name_is_refused_and_a_1024_character_one_is_unique() {
    let t = Tenant::new();
    let resp = t.call(
        "POST",
        "/Users",
        Some(json!({"userName": "n".repeat(1 << 20)})),
        &[],
    );
    assert_error(&resp, 400, Some("invalidValue"), "1 MB userName");
    assert!(t.store.is_empty(), "nothing stored");
    let long = "n".repeat(1024);
    let id = t.create(&long);
    let read = t.ok("GET", &format!("/Users/{id}"), None);
    assert!(read["userName"].as_str() == Some(long.as_str()));
    let resp = t.call(
        "POST",
        "/Users",
        Some(json!({"userName": long.to_uppercase()})),
        &[],
    );
    assert_error(&resp, 409, Some("uniqueness"), "1024-character duplicate");
    // Filters are bounded (8 KiB), so a 1 MB literal cannot be searched for: a clear 400.
    let filter = format!(
        "/Users?filter=userName%20eq%20%22{}%22",
        "n".repeat(1 << 20)
    );
    let resp = t.call("GET", &filter, None, &[]);
    assert_error(&resp, 400, Some("invalidFilter"), "1 MB filter");
    assert_healthy(&t);
}

#[test]
fn ten_thousand_levels_of_filter_nesting_are_invalid_filter() {
    let t = Tenant::new();
    t.create("a");
    let deep = [
        nested("(", "userName eq \"a\"", ")", 10_000),
        nested("not (", "userName eq \"a\"", ")", 10_000),
        // Short enough for the length limit, too deep for the depth limit.
        nested("(", "userName pr", ")", 1_000),
        format!("emails[{}]", nested("(", "value pr", ")", 1_000)),
    ];
    for filter in &deep {
        let resp = t.call(
            "GET",
            &format!("/Users?filter={}", filter.replace(' ', "%20")),
            None,
            &[],
        );
        assert_error(&resp, 400, Some("invalidFilter"), "deep filter");
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
        let resp = t.call("POST", "/Users/.search", Some(search), &[]);
        assert_error(&resp, 400, Some("invalidFilter"), "deep search filter");
    }
    let id = t.create("patched");
    let path = format!(
        "emails[{}].value",
        nested("(", "type eq \"work\"", ")", 10_000)
    );
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": "x@example.com"}]});
    let resp = t.call("PATCH", &format!("/Users/{id}"), Some(patch), &[]);
    assert_error(&resp, 400, None, "deep PATCH path");
    assert_healthy(&t);
}

#[test]
fn huge_and_odd_paging_numbers_are_clamped_or_refused() {
    let t = Tenant::new();
    t.create("a");
    for q in ["count=4294967296", "count=-1", "startIndex=-5"] {
        let list = t.ok("GET", &format!("/Users?{q}"), None);
        let per_page = list["itemsPerPage"].as_u64().unwrap();
        assert!(per_page <= 1, "{q}: {list}");
    }
    for q in [
        "count=99999999999999999999999",
        "count=1e9",
        "count=%00",
        "count=18446744073709551615",
        "startIndex=99999999999999999999",
        "startIndex=18446744073709551615",
    ] {
        let resp = t.call("GET", &format!("/Users?{q}"), None, &[]);
        assert_error(&resp, 400, Some("invalidValue"), q);
    }
    assert_healthy(&t);
}

#[test]
fn invalid_utf8_in_body_and_query_gets_a_scim_answer() {
    let t = Tenant::new();
    let id = t.create("a");
    for body in [
        &b"{\"userName\":\"\xff\xfe\"}"[..],
        b"\xef\xbb\xbf{}",
        b"\xc3(",
    ] {
        let resp = raw(&t, "POST", "/Users", "application/scim+json", body);
        assert_error(&resp, 400, Some("invalidSyntax"), "invalid UTF-8 body");
        let resp = raw(&t, "PUT", &format!("/Users/{id}"), "application/json", body);
        assert_error(&resp, 400, Some("invalidSyntax"), "invalid UTF-8 PUT");
    }
    // Query strings arrive as text; percent-escapes of invalid UTF-8 decode to U+FFFD.
    let none = t.ok("GET", "/Users?filter=userName%20eq%20%22%FF%FE%22", None);
    assert_eq!(none["totalResults"], 0);
    for q in ["filter=%FF", "attributes=%FF", "sortBy=%C3%28"] {
        let resp = t.call("GET", &format!("/Users?{q}"), None, &[]);
        assert_error(&resp, 400, None, q);
    }
    let resp = t.call("GET", "/Users/%FF%00", None, &[]);
    assert_error(&resp, 404, None, "invalid id");
    assert_healthy(&t);
}

/// NUL is a valid JSON string character (`\u0000`): in free text it is stored as given and
/// keeps values apart (no truncation at the NUL); in an identifier it is refused
/// (guest/src/identifiers.rs); a raw NUL in a filter literal is refused as JSON string rules
/// require.
#[test]
fn nul_characters_in_values_are_kept_exactly() {
    let t = Tenant::new();
    let resp = t.call(
        "POST",
        "/Users",
        Some(json!({"userName": "nul\u{0}a"})),
        &[],
    );
    assert_error(&resp, 400, Some("invalidValue"), "NUL in userName");
    assert!(t.store.is_empty(), "nothing stored");
    let user = |name: &str, display: &str| {
        let u = t.ok(
            "POST",
            "/Users",
            Some(json!({"userName": name, "displayName": display})),
        );
        u["id"].as_str().unwrap().to_string()
    };
    let a = user("nul-a", "nul\u{0}a");
    let b = user("nul-b", "nul\u{0}b");
    let read = t.ok("GET", &format!("/Users/{a}"), None);
    assert_eq!(read["displayName"], "nul\u{0}a");
    let list = t.ok(
        "GET",
        "/Users?filter=displayName%20eq%20%22nul%5Cu0000b%22",
        None,
    );
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], b.as_str());
    let resp = t.call(
        "GET",
        "/Users?filter=displayName%20eq%20%22nul%00b%22",
        None,
        &[],
    );
    assert_error(&resp, 400, Some("invalidFilter"), "raw NUL in a filter");
    assert_healthy(&t);
}

#[test]
fn duplicate_json_keys_are_invalid_syntax() {
    let t = Tenant::new();
    let id = t.create("dup");
    let bodies: [&str; 4] = [
        r#"{"userName":"a","userName":"b"}"#,
        r#"{"userName":"a","USERNAME":"b"}"#,
        r#"{"userName":"a","name":{"givenName":"x","givenName":"y"}}"#,
        r#"{"userName":"a","emails":[{"value":"a@x","value":"b@x"}]}"#,
    ];
    for body in bodies {
        let resp = raw(
            &t,
            "POST",
            "/Users",
            "application/scim+json",
            body.as_bytes(),
        );
        assert_error(&resp, 400, Some("invalidSyntax"), body);
        assert!(
            resp.json_body()["detail"]
                .as_str()
                .unwrap()
                .contains("duplicate key"),
            "{body}"
        );
    }
    let patch = format!(
        r#"{{"schemas":["{PATCH_OP}"],"Operations":[{{"op":"replace","op":"remove","path":"active","value":false}}]}}"#
    );
    let resp = raw(
        &t,
        "PATCH",
        &format!("/Users/{id}"),
        "application/scim+json",
        patch.as_bytes(),
    );
    assert_error(&resp, 400, Some("invalidSyntax"), "duplicate op");
    // The same key in different objects is fine.
    let ok =
        r#"{"userName":"b","name":{"givenName":"x"},"emails":[{"value":"a@x"},{"value":"b@x"}]}"#;
    let resp = raw(&t, "POST", "/Users", "application/scim+json", ok.as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.json_body());
    assert_healthy(&t);
}

/// Values of the wrong JSON type for an attribute of this schema type.
fn wrong_values(attr: &Value) -> Vec<Value> {
    let multi = attr["multiValued"] == true;
    let singles = match attr["type"].as_str().unwrap() {
        "boolean" => vec![json!("yes"), json!(1), json!({"v": true}), json!([true])],
        "complex" => vec![json!("text"), json!(42), json!(true), json!(1.5)],
        _ => vec![json!(42), json!(true), json!({"v": "x"}), json!(1.5)],
    };
    if !multi {
        return singles;
    }
    // A multi-valued complex attribute: anything but objects inside the array, or a scalar.
    let mut values: Vec<Value> = singles.into_iter().filter(|v| !v.is_object()).collect();
    values.extend([json!([1]), json!(["text"]), json!([[]]), json!([true])]);
    values
}

/// Every read-write attribute of the core User schema (and each sub-attribute), with every
/// wrong JSON type, through POST, PUT and PATCH: each is a 400 naming the problem.
#[test]
fn wrong_types_in_every_user_attribute_are_invalid_values() {
    let t = Tenant::new();
    let id = t.create("typed");
    let schema = t.ok("GET", &format!("/Schemas/{USER}"), None);
    let mut cases = Vec::new();
    for attr in schema["attributes"].as_array().unwrap() {
        let name = attr["name"].as_str().unwrap();
        // Read-only attributes are ignored in requests (RFC 7643 §2.2). The password is never
        // stored, but a wrongly typed one is still refused.
        if attr["mutability"] == "readOnly" {
            continue;
        }
        // PATCH reads a bare string (or a list of them) for a complex attribute with a string `value`
        // sub-attribute as `{"value": ...}` (patch.rs; Entra's `manager: "271"`).
        let has_text_value = attr["subAttributes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "value" && s["type"] != "boolean");
        for wrong in wrong_values(attr) {
            let bare = |v: &Value| v.is_string();
            let patch_reads_it = has_text_value
                && (bare(&wrong) || wrong.as_array().is_some_and(|a| a.iter().all(bare)));
            cases.push((name.to_string(), wrong, patch_reads_it));
        }
        for sub in attr["subAttributes"].as_array().into_iter().flatten() {
            let sub_name = sub["name"].as_str().unwrap();
            for wrong in wrong_values(sub) {
                let element = json!({ sub_name: wrong });
                let value = if attr["multiValued"] == true {
                    json!([element])
                } else {
                    element
                };
                cases.push((format!("{name}.{sub_name}"), value, false));
            }
        }
    }
    assert!(cases.len() > 150, "{} cases", cases.len());
    for (path, value, patch_reads_it) in &cases {
        let attr = path.split('.').next().unwrap();
        let context = format!("{path} = {value}");
        let mut body = json!({"userName": "typed-post"});
        body[attr] = value.clone();
        let resp = t.call("POST", "/Users", Some(body), &[]);
        assert_error(&resp, 400, Some("invalidValue"), &format!("POST {context}"));
        let mut body = json!({"userName": "typed"});
        body[attr] = value.clone();
        let resp = t.call("PUT", &format!("/Users/{id}"), Some(body), &[]);
        assert_error(&resp, 400, Some("invalidValue"), &format!("PUT {context}"));
        let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": attr, "value": value}]});
        let resp = t.call("PATCH", &format!("/Users/{id}"), Some(patch), &[]);
        if *patch_reads_it {
            let user = resp.json_body();
            assert_eq!(resp.status, 200, "PATCH {context}: {user}");
            let stored = &user[attr];
            let first = if stored.is_array() {
                &stored[0]
            } else {
                stored
            };
            let sent = if value.is_array() { &value[0] } else { value };
            assert_eq!(first, &json!({ "value": sent }), "PATCH {context}");
        } else {
            assert_error(&resp, 400, None, &format!("PATCH {context}"));
        }
    }
    assert_healthy(&t);
}

#[test]
fn wrong_types_in_the_patch_envelope_are_refused() {
    let t = Tenant::new();
    let id = t.create("envelope");
    let envelopes = [
        json!("not an object"),
        json!([{"op": "add"}]),
        json!({"schemas": PATCH_OP, "Operations": []}),
        json!({"schemas": [PATCH_OP], "Operations": {"op": "add"}}),
        json!({"schemas": [PATCH_OP], "Operations": ["add"]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": 1, "path": "active", "value": true}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": 7, "value": true}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": ["active"], "value": true}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": "flat"}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": [1, 2]}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": null}]}),
    ];
    for body in &envelopes {
        let resp = t.call("PATCH", &format!("/Users/{id}"), Some(body.clone()), &[]);
        assert_error(&resp, 400, None, &body.to_string());
    }
    assert_healthy(&t);
}

#[test]
fn content_type_lies_are_refused() {
    let t = Tenant::new();
    let user = br#"{"userName":"liar"}"#;
    for ct in [
        "application/xml",
        "text/xml; charset=utf-8",
        "text/plain",
        "multipart/form-data",
    ] {
        let resp = raw(&t, "POST", "/Users", ct, user);
        assert_error(&resp, 415, None, ct);
    }
    let form = b"userName=liar&active=true";
    for ct in ["application/json", "application/scim+json; charset=utf-8"] {
        let resp = raw(&t, "POST", "/Users", ct, form);
        assert_error(&resp, 400, Some("invalidSyntax"), ct);
    }
    let resp = raw(&t, "POST", "/Users", "application/json", b"   ");
    assert_error(&resp, 400, Some("invalidSyntax"), "blank body");
    assert_eq!(
        t.ok("GET", "/Users?filter=userName%20eq%20%22liar%22", None)["totalResults"],
        0
    );
    assert_healthy(&t);
}
