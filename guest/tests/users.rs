//! `/Users` behaviour through the HTTP handler, natively, on the in-memory store.

mod common;

use common::{header, Tenant, BASE};
use scimlet_guest::http::{handle, Request};
use scimlet_guest::store::{Scan, Store};
use serde_json::{json, Value};

#[test]
fn create_answers_201_with_location_meta_and_etag() {
    let t = Tenant::new();
    let resp = t.call(
        "POST",
        "/Users",
        Some(json!({"userName": "bjensen", "password": "secret", "id": "mine"})),
        &[],
    );
    assert_eq!(resp.status, 201);
    let u = resp.json_body();
    let id = u["id"].as_str().unwrap();
    assert_ne!(id, "mine", "id is server-assigned");
    assert_eq!(
        header(&resp, "location"),
        Some(format!("{BASE}/Users/{id}").as_str())
    );
    assert_eq!(header(&resp, "content-type"), Some("application/scim+json"));
    assert_eq!(header(&resp, "etag"), u["meta"]["version"].as_str());
    for k in ["created", "lastModified", "location", "version"] {
        assert!(u["meta"][k].is_string(), "meta.{k}");
    }
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u.get("password").is_none());
    // Neither a stored value nor a key holds the password.
    let stored = t
        .store
        .scan(&Scan::prefix(""))
        .expect("scan the whole store");
    assert!(!stored.is_empty());
    for entry in stored {
        assert!(!entry.key.contains("secret"), "{}", entry.key);
        assert!(
            !entry.value.windows(6).any(|w| w == b"secret"),
            "{} holds the password: {}",
            entry.key,
            String::from_utf8_lossy(&entry.value)
        );
    }
}

#[test]
fn user_name_is_unique_case_insensitively_on_create_put_and_patch() {
    let t = Tenant::new();
    t.create("Alice@Example.com");
    let bob = t.create("bob@example.com");
    let (s, e) = t.err(
        "POST",
        "/Users",
        Some(json!({"userName": "alice@example.COM"})),
    );
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")));
    let (s, e) = t.err(
        "PUT",
        &format!("/Users/{bob}"),
        Some(json!({"userName": "ALICE@example.com"})),
    );
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")));
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "alice@example.com"}]});
    let (s, e) = t.err("PATCH", &format!("/Users/{bob}"), Some(patch));
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")));
    let stored = t.ok("GET", &format!("/Users/{bob}"), None);
    assert_eq!(
        stored["userName"], "bob@example.com",
        "refused renames store nothing"
    );
    let alices = t.ok(
        "GET",
        "/Users?filter=userName%20eq%20%22alice@example.com%22",
        None,
    );
    assert_eq!(alices["totalResults"], 1, "{alices}");
    // Renaming to another case of one's own name is fine.
    let u = t.ok(
        "PUT",
        &format!("/Users/{bob}"),
        Some(json!({"userName": "BOB@example.com"})),
    );
    assert_eq!(u["userName"], "BOB@example.com", "stored as sent");
}

#[test]
fn put_replaces_and_keeps_id_while_inactive_users_stay_readable() {
    let t = Tenant::new();
    let id = t.create("ada");
    let put = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "ada",
        "active": false, "groups": [], "meta": {"resourceType": "User"}});
    let u = t.ok("PUT", &format!("/Users/{id}"), Some(put));
    assert_eq!(u["active"], false);
    assert!(u.get("name").is_none(), "PUT clears omitted attributes");
    assert_eq!(t.ok("GET", &format!("/Users/{id}"), None)["active"], false);
    assert_eq!(t.ok("GET", "/Users", None)["totalResults"], 1);
    let (s, e) = t.err(
        "PUT",
        &format!("/Users/{id}"),
        Some(json!({"id": "other", "userName": "ada"})),
    );
    assert_eq!((s, e["scimType"].as_str()), (400, Some("mutability")));
    let (s, _) = t.err("PUT", "/Users/nope", Some(json!({"userName": "x"})));
    assert_eq!(s, 404);
}

#[test]
fn patch_is_atomic_and_a_no_op_keeps_last_modified() {
    let t = Tenant::new();
    let id = t.create("ada");
    let before = t.ok("GET", &format!("/Users/{id}"), None);
    let noop = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "ada"}]});
    let after = t.ok("PATCH", &format!("/Users/{id}"), Some(noop));
    assert_eq!(
        after["meta"]["lastModified"],
        before["meta"]["lastModified"]
    );
    assert_eq!(after["meta"]["version"], before["meta"]["version"]);
    let bad = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}, {"op": "replace", "path": "nickName", "value": 5}]});
    let (s, _) = t.err("PATCH", &format!("/Users/{id}"), Some(bad));
    assert_eq!(s, 400);
    assert!(
        t.ok("GET", &format!("/Users/{id}"), None)
            .get("active")
            .is_none(),
        "first op rolled back"
    );
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]});
    let u = t.ok("PATCH", &format!("/Users/{id}"), Some(deactivate));
    assert_eq!(u["active"], false);
    assert_ne!(u["meta"]["version"], before["meta"]["version"]);
}

#[test]
fn etags_drive_conditional_requests() {
    let t = Tenant::new();
    let id = t.create("ada");
    let u = t.ok("GET", &format!("/Users/{id}"), None);
    let etag = u["meta"]["version"].as_str().unwrap().to_string();
    let resp = t.call(
        "GET",
        &format!("/Users/{id}"),
        None,
        &[("if-none-match", &etag)],
    );
    assert_eq!(resp.status, 304);
    let put = json!({"userName": "ada2"});
    let resp = t.call(
        "PUT",
        &format!("/Users/{id}"),
        Some(put.clone()),
        &[("if-match", "W/\"999\"")],
    );
    assert_eq!(resp.status, 412);
    let resp = t.call(
        "PUT",
        &format!("/Users/{id}"),
        Some(put),
        &[("if-match", &etag)],
    );
    assert_eq!(resp.status, 200);
    let resp = t.call(
        "DELETE",
        &format!("/Users/{id}"),
        None,
        &[("if-match", &etag)],
    );
    assert_eq!(resp.status, 412, "stale ETag");
}

#[test]
fn delete_answers_204_then_404() {
    let t = Tenant::new();
    let id = t.create("ada");
    assert_eq!(
        t.call("DELETE", &format!("/Users/{id}"), None, &[]).status,
        204
    );
    assert_eq!(t.err("GET", &format!("/Users/{id}"), None).0, 404);
    assert_eq!(t.err("DELETE", &format!("/Users/{id}"), None).0, 404);
    t.create("ada");
}

#[test]
fn paging_follows_rfc7644_edge_cases_with_stable_order() {
    let t = Tenant::new();
    let ids: Vec<String> = (0..7).map(|i| t.create(&format!("user{i}"))).collect();
    let page = |q: &str| t.ok("GET", &format!("/Users?{q}"), None);
    let ids_of = |v: &Value| {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let p = page("startIndex=3&count=2");
    assert_eq!(
        (
            p["totalResults"].as_u64(),
            p["startIndex"].as_u64(),
            p["itemsPerPage"].as_u64()
        ),
        (Some(7), Some(3), Some(2))
    );
    assert_eq!(ids_of(&p), ids[2..4]);
    assert_eq!(
        ids_of(&page("startIndex=0&count=1")),
        ids[..1],
        "startIndex < 1 is 1"
    );
    assert_eq!(page("startIndex=-5&count=1")["startIndex"], 1);
    let zero = page("count=0");
    assert_eq!(
        (zero["totalResults"].as_u64(), zero["itemsPerPage"].as_u64()),
        (Some(7), Some(0))
    );
    assert_eq!(page("count=-3")["itemsPerPage"], 0, "negative count is 0");
    assert_eq!(page("count=100000")["itemsPerPage"], 7);
    assert_eq!(page("startIndex=100")["itemsPerPage"], 0);
    let mut all = Vec::new();
    for start in [1, 4, 7] {
        all.extend(ids_of(&page(&format!("startIndex={start}&count=3"))));
    }
    assert_eq!(all, ids);
    assert_eq!(t.err("GET", "/Users?count=abc", None).0, 400);
}

#[test]
fn filters_use_the_grammar_and_report_invalid_filters() {
    let t = Tenant::new();
    t.ok("POST", "/Users", Some(json!({"userName": "bjensen", "externalId": "E1", "title": "Boss",
        "emails": [{"value": "bjensen@example.com", "type": "work"}], "name": {"familyName": "Jensen"}})));
    t.ok("POST", "/Users", Some(json!({"userName": "jsmith", "externalId": "e1", "emails": [{"value": "js@example.org", "type": "home"}]})));
    let total = |f: &str| {
        let q = f.replace(' ', "%20").replace('"', "%22");
        t.ok("GET", &format!("/Users?filter={q}"), None)["totalResults"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(total(r#"userName eq "BJENSEN""#), 1);
    assert_eq!(total(r#"externalId eq "E1""#), 1, "externalId is caseExact");
    assert_eq!(total(r#"emails.value eq "JS@example.org""#), 1);
    assert_eq!(
        total(r#"emails[type eq "work" and value co "@example.com"]"#),
        1
    );
    assert_eq!(total(r#"title pr"#), 1);
    assert_eq!(total(r#"not (title pr)"#), 1);
    assert_eq!(
        total(r#"userName sw "j" or name.familyName eq "jensen""#),
        2
    );
    assert_eq!(total(r#"meta.lastModified gt "2000-01-01T00:00:00Z""#), 2);
    assert_eq!(total(r#"userName eq "nobody""#), 0);
    for bad in [
        r#"userName eq"#,
        r#"nosuch eq "x""#,
        r#"userName zz "x""#,
        r#"active gt true"#,
    ] {
        let q = bad.replace(' ', "%20").replace('"', "%22");
        let (s, e) = t.err("GET", &format!("/Users?filter={q}"), None);
        assert_eq!(
            (s, e["scimType"].as_str()),
            (400, Some("invalidFilter")),
            "{bad}"
        );
    }
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"jsmith\"", "attributes": ["userName"]});
    let r = t.ok("POST", "/Users/.search", Some(search.clone()));
    assert_eq!(r["totalResults"], 1);
    assert_eq!(
        r["Resources"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["schemas", "id", "userName"]
    );
    assert_eq!(t.ok("POST", "/.search", Some(search))["totalResults"], 1);
}

#[test]
fn sorting_orders_by_the_attribute_type() {
    let t = Tenant::new();
    for n in ["carol", "Alice", "bob"] {
        t.create(n);
    }
    let names = |q: &str| {
        t.ok("GET", &format!("/Users?{q}"), None)["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("sortBy=userName"), ["Alice", "bob", "carol"]);
    assert_eq!(
        names("sortBy=userName&sortOrder=descending"),
        ["carol", "bob", "Alice"]
    );
    assert_eq!(
        t.err("GET", "/Users?sortBy=userName&sortOrder=sideways", None)
            .0,
        400
    );
}

#[test]
fn projection_applies_to_reads_and_writes() {
    let t = Tenant::new();
    let resp = t.call(
        "POST",
        "/Users?attributes=userName",
        Some(json!({"userName": "ada", "title": "Countess"})),
        &[],
    );
    let u = resp.json_body();
    assert_eq!(
        u.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["schemas", "id", "userName"]
    );
    let id = u["id"].as_str().unwrap();
    let u = t.ok(
        "GET",
        &format!("/Users/{id}?excludedAttributes=title,meta"),
        None,
    );
    assert!(u.get("title").is_none() && u.get("meta").is_none() && u["userName"] == "ada");
    let l = t.ok("GET", "/Users?attributes=title", None);
    assert_eq!(l["Resources"][0]["title"], "Countess");
    assert!(l["Resources"][0].get("userName").is_none());
}

#[test]
fn malformed_requests_get_scim_errors_never_500() {
    let t = Tenant::new();
    let raw = |method: &str, target: &str, body: &[u8], ct: Option<&str>| {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let req = Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: ct
                .map(|c| vec![("content-type".to_string(), c.to_string())])
                .unwrap_or_default(),
            body: body.to_vec(),
            base_url: BASE.into(),
            ..Request::default()
        };
        handle(&t.store, &req)
    };
    // Refusals: status and scimType, and nothing stored.
    let refused = |r: scimlet_guest::http::Response, status: u16, scim_type: Option<&str>| {
        let body = r.json_body();
        assert_eq!(
            (r.status, body["scimType"].as_str()),
            (status, scim_type),
            "{body}"
        );
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    };
    refused(
        raw("POST", "/Users", b"{not json", None),
        400,
        Some("invalidSyntax"),
    );
    let created = |r: scimlet_guest::http::Response, user_name: &str| {
        let body = r.json_body();
        assert_eq!(r.status, 201, "{body}");
        let id = body["id"].as_str().unwrap();
        let stored = t.ok("GET", &format!("/Users/{id}"), None);
        assert_eq!(stored["userName"], user_name);
    };
    created(
        raw(
            "POST",
            "/Users",
            br#"{"userName":"a"}"#,
            Some("application/json; charset=utf-8"),
        ),
        "a",
    );
    created(raw("POST", "/Users", br#"{"userName":"b"}"#, None), "b");
    refused(
        raw("POST", "/Users", br#"{"userName":"c"}"#, Some("text/plain")),
        415,
        None,
    );
    refused(raw("POST", "/Users", b"", None), 400, Some("invalidSyntax"));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    refused(
        raw("POST", "/Users", deep.as_bytes(), None),
        400,
        Some("invalidSyntax"),
    );
    refused(
        raw("POST", "/Users", br#"{"userName": ["x"]}"#, None),
        400,
        Some("invalidValue"),
    );
    let listed = t.ok("GET", "/Users", None);
    assert_eq!(
        listed["totalResults"], 2,
        "only a and b were stored: {listed}"
    );
    assert_eq!(raw("PATCH", "/Users", b"{}", None).status, 405);
    assert_eq!(raw("GET", "/Me", b"", None).status, 501);
    assert_eq!(raw("GET", "/Widgets", b"", None).status, 404);
    assert_eq!(raw("GET", "/Schemas?filter=id%20pr", b"", None).status, 403);
}

#[test]
fn writer_role_lives_in_the_custom_extension() {
    let t = Tenant::writer();
    let ext = "urn:custom:params:scim:schemas:extension:writer:2.0:User";
    let u = t.ok(
        "POST",
        "/Users",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ext],
        "userName": "ada@example.com", ext: {"role": "admin"}}),
        ),
    );
    assert_eq!(u[ext]["role"], "admin");
    assert!(u["schemas"].as_array().unwrap().iter().any(|s| s == ext));
    let id = u["id"].as_str().unwrap();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": format!("{ext}:role"), "value": "member"}]});
    assert_eq!(
        t.ok("PATCH", &format!("/Users/{id}"), Some(patch))[ext]["role"],
        "member"
    );
    let bad = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": format!("{ext}:role"), "value": "owner"}]});
    let (s, e) = t.err("PATCH", &format!("/Users/{id}"), Some(bad));
    assert_eq!((s, e["scimType"].as_str()), (400, Some("invalidValue")));
    let schema = t.ok("GET", &format!("/Schemas/{ext}"), None);
    assert_eq!(
        schema["attributes"][0]["canonicalValues"],
        json!(["member", "admin"])
    );
}

#[test]
fn a_put_that_does_not_mention_the_role_keeps_it() {
    let t = Tenant::writer();
    let ext = "urn:custom:params:scim:schemas:extension:writer:2.0:User";
    let u = t.ok(
        "POST",
        "/Users",
        Some(json!({"userName": "ada@example.com", ext: {"role": "admin"}})),
    );
    let id = u["id"].as_str().unwrap();
    let put = json!({"userName": "ada@example.com", "name": {"givenName": "Ada"}, "active": true});
    let after = t.ok("PUT", &format!("/Users/{id}"), Some(put));
    assert_eq!(
        after[ext]["role"], "admin",
        "Okta's full-object PUT without the role keeps it"
    );
    let put = json!({"userName": "ada@example.com", ext: {"role": "member"}});
    assert_eq!(
        t.ok("PUT", &format!("/Users/{id}"), Some(put))[ext]["role"],
        "member"
    );
}

#[test]
fn writes_carry_a_provisioning_record_without_secrets() {
    let t = Tenant::new();
    let resp = t.call(
        "POST",
        "/Users",
        Some(json!({"userName": "ada", "password": "hunter2"})),
        &[],
    );
    let rec: Value = serde_json::from_str(resp.audit.as_deref().unwrap()).unwrap();
    assert_eq!(
        (
            rec["action"].as_str(),
            rec["resource"].as_str(),
            rec["userName"].as_str()
        ),
        (Some("create"), Some("User"), Some("ada"))
    );
    assert!(!rec.to_string().contains("hunter2"));
    let id = rec["id"].as_str().unwrap().to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let resp = t.call("PATCH", &format!("/Users/{id}"), Some(patch), &[]);
    let rec: Value = serde_json::from_str(resp.audit.as_deref().unwrap()).unwrap();
    assert_eq!(
        rec["operations"][0],
        json!({"op": "replace", "path": "active", "value": false}),
        "the normalised operation"
    );
    let resp = t.call("DELETE", "/Users/nope", None, &[]);
    let rec: Value = serde_json::from_str(resp.audit.as_deref().unwrap()).unwrap();
    assert_eq!(rec["error"]["detail"], "User 'nope' not found");
    assert!(t.call("GET", "/Users", None, &[]).audit.is_none());
}

#[test]
fn endpoint_names_match_in_any_case_but_ids_do_not() {
    let t = Tenant::new();
    let resp = t.call("POST", "/users", Some(json!({"userName": "ada"})), &[]);
    assert_eq!(resp.status, 201);
    let id = resp.json_body()["id"].as_str().unwrap().to_string();
    assert_eq!(
        header(&resp, "location"),
        Some(format!("{BASE}/Users/{id}").as_str()),
        "locations keep the RFC spelling"
    );
    let rec: Value = serde_json::from_str(resp.audit.as_deref().unwrap()).unwrap();
    assert_eq!(
        (rec["action"].as_str(), rec["id"].as_str()),
        (Some("create"), Some(id.as_str()))
    );
    assert_eq!(t.ok("GET", "/users", None)["totalResults"], 1);
    assert_eq!(
        t.ok("GET", &format!("/USERS/{id}"), None)["userName"],
        "ada"
    );
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    assert_eq!(
        t.ok("POST", "/users/.Search", Some(search.clone()))["totalResults"],
        1
    );
    assert_eq!(t.ok("POST", "/.SEARCH", Some(search))["totalResults"], 1);
    let g = t.call("POST", "/groups", Some(json!({"displayName": "Eng"})), &[]);
    assert_eq!(g.status, 201);
    assert_eq!(t.ok("GET", "/Groups", None)["totalResults"], 1);
    for path in [
        "/serviceproviderconfig",
        "/schemas",
        "/SCHEMAS/urn:ietf:params:scim:schemas:core:2.0:User",
        "/resourcetypes",
        "/resourceTypes/user",
        "/roles",
    ] {
        t.ok("GET", path, None);
    }
    assert_eq!(t.call("GET", "/me", None, &[]).status, 501);
    assert_eq!(t.call("GET", "/usersx", None, &[]).status, 404);
    let upper = id.to_uppercase();
    if upper != id {
        assert_eq!(
            t.call("GET", &format!("/Users/{upper}"), None, &[]).status,
            404,
            "ids are caseExact (RFC 7643 §3.1)"
        );
    }
}

#[test]
fn attributes_with_a_value_filter_name_the_attribute_unless_the_rule_is_off() {
    let body = json!({"userName": "ada", "title": "Countess", "emails": [
        {"value": "ada@work.example", "type": "work"},
        {"value": "ada@home.example", "type": "home"}]});
    let t = Tenant::new();
    t.ok("POST", "/Users", Some(body.clone()));
    // As Microsoft's reference collection sends it: `+` for spaces, brackets escaped.
    let list = t.ok(
        "GET",
        "/Users?attributes=emails%5Btype+eq+%22work%22%5D",
        None,
    );
    let ada = &list["Resources"][0];
    assert_eq!(
        ada["emails"].as_array().unwrap().len(),
        2,
        "the whole attribute"
    );
    assert!(ada.get("title").is_none() && ada.get("userName").is_none());
    let list = t.ok(
        "GET",
        "/Users?attributes=userName,emails%5Bvalue%20eq%20%22a,b%22%5D.value",
        None,
    );
    let ada = &list["Resources"][0];
    assert_eq!(ada["userName"], "ada");
    assert_eq!(ada["emails"][0], json!({"value": "ada@work.example"}));
    let id = ada["id"].as_str().unwrap();
    let one = t.ok(
        "GET",
        &format!("/Users/{id}?attributes=emails%5Btype%20eq%20%22work%22%5D"),
        None,
    );
    assert!(one["emails"].is_array() && one.get("title").is_none());
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "attributes": ["emails[type eq \"work\"]"]});
    assert!(t.ok("POST", "/Users/.search", Some(search))["Resources"][0]["emails"].is_array());
    let (status, e) = t.err(
        "GET",
        "/Users?attributes=emails%5Btype%20zz%20%22work%22%5D",
        None,
    );
    assert_eq!(
        (status, e["scimType"].as_str()),
        (400, Some("invalidValue"))
    );

    let strict = Tenant::with_policy(r#"{"dialect.filtered-attributes": false}"#);
    strict.ok("POST", "/Users", Some(body));
    let (status, e) = strict.err(
        "GET",
        "/Users?attributes=emails%5Btype+eq+%22work%22%5D",
        None,
    );
    assert_eq!(
        (status, e["scimType"].as_str()),
        (400, Some("invalidValue"))
    );
    assert!(e["detail"]
        .as_str()
        .unwrap()
        .contains("dialect.filtered-attributes is false"));
    strict.ok("GET", "/Users?attributes=emails", None);
}
