//! The walking skeleton: discovery, auth, user create/read, tenants CLI, guest faults.

use serde_json::{json, Value};

use crate::support::{assert_scim_error, cli, fault_component, json, Server};

#[test]
fn service_provider_config_is_an_rfc7643_document() {
    let s = Server::start(&[]);
    let (status, spc) = json(s.get("/ServiceProviderConfig"));
    assert_eq!(status, 200);
    assert_eq!(
        spc["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    for feature in ["patch", "bulk", "filter", "changePassword", "sort", "etag"] {
        assert!(spc[feature]["supported"].is_boolean(), "{feature} in {spc}");
    }
    assert_eq!(spc["patch"]["supported"], true);
    assert!(spc["filter"]["maxResults"].as_u64().unwrap() > 0);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let (status, types) = json(s.get("/ResourceTypes"));
    assert_eq!(status, 200);
    let ids: Vec<&str> = types["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["User", "Group", "Role"]);
    let (status, user_type) = json(s.get("/ResourceTypes/User"));
    assert_eq!(
        (status, user_type["endpoint"].as_str()),
        (200, Some("/Users"))
    );

    let (status, schemas) = json(s.get("/Schemas"));
    assert_eq!(status, 200);
    assert!(schemas["totalResults"].as_u64().unwrap() >= 3);
    let (status, user) = json(s.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"));
    assert_eq!(status, 200);
    let user_name = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(
        (
            user_name["required"].as_bool(),
            user_name["uniqueness"].as_str()
        ),
        (Some(true), Some("server"))
    );

    let (status, body) = json(s.send_json("POST", "/ServiceProviderConfig", &json!({})));
    assert_eq!(status, 405);
    assert_scim_error(&body, 405, None);
    let (status, body) = json(s.get("/NoSuchThing"));
    assert_eq!(status, 404);
    assert_scim_error(&body, 404, None);
    let (status, _) = json(s.get("/Schemas/urn:nope"));
    assert_eq!(status, 404);
}

#[test]
fn a_posted_user_is_read_back() {
    let s = Server::start(&[]);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
        "password": "never-stored",
        "active": true,
    });
    let resp = s.send_json("POST", "/Users", &body);
    let location = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let etag = resp
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (status, created) = json(resp);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, s.url(&format!("/Users/{id}")));
    assert_eq!(created["meta"]["location"], location.as_str());
    assert_eq!(created["meta"]["version"], etag.as_str());
    assert!(created.get("password").is_none());

    let (status, read) = json(s.get(&format!("/Users/{id}")));
    assert_eq!(status, 200);
    assert_eq!(read["userName"], "ada@example.com");
    assert_eq!(read["name"]["familyName"], "Lovelace");
    assert_eq!(read["active"], true);

    let (status, list) = json(s.get("/Users?filter=userName%20eq%20%22ADA@example.com%22"));
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], id);

    let (status, dup) = json(s.send_json("POST", "/Users", &body));
    assert_eq!(status, 409);
    assert_scim_error(&dup, 409, Some("uniqueness"));

    let (status, missing) = json(s.get("/Users/does-not-exist"));
    assert_eq!(status, 404);
    assert_scim_error(&missing, 404, None);
}

#[test]
fn requests_without_a_valid_token_get_401() {
    let s = Server::start(&[]);
    for auth in [None, Some("Bearer wrong"), Some("Basic Zm9vOmJhcg==")] {
        let mut req = s.raw().get(s.url("/ServiceProviderConfig"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().unwrap();
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .split(' ')
                .next(),
            Some("Bearer")
        );
        let (status, body) = json(resp);
        assert_eq!(status, 401);
        assert_scim_error(&body, 401, None);
    }
}

#[test]
fn tenant_cli_prints_a_working_token_and_lists_tenants() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let out = cli(&["tenant", "create", "acme", "--data", &dir]);
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("scimlet_") && token.len() > 40, "{out}");
    assert!(cli(&["tenant", "list", "--data", &dir]).contains("acme"));

    let mut s = Server::start_in(data, &[]);
    assert!(
        s.token.is_empty(),
        "an existing store gets no new default tenant"
    );
    s.token = token;
    let (status, _) = json(s.get("/Users"));
    assert_eq!(status, 200);
}

#[test]
fn request_bodies_over_the_cap_get_413() {
    let s = Server::start(&["--max-body-bytes", "1024"]);
    let big = json!({"userName": "x".repeat(4096)});
    let (status, body) = json(s.send_json("POST", "/Users", &big));
    assert_eq!(status, 413);
    assert_scim_error(&body, 413, None);
}

#[test]
fn a_faulty_guest_fails_only_its_own_request() {
    let component = fault_component();
    let s = Server::start(&[
        "--component",
        &component,
        "--guest-deadline-ms",
        "300",
        "--guest-memory-mib",
        "32",
    ]);
    for (fault, expected) in [("panic", 500), ("loop", 503), ("oom", 503)] {
        let resp = s
            .req("GET", "/ServiceProviderConfig")
            .header("x-scimlet-fault", fault)
            .send()
            .unwrap();
        let (status, body) = json(resp);
        assert_eq!(status, expected, "{fault}: {body}");
        assert_scim_error(&body, expected, None);
        let (status, _) = json(s.get("/ServiceProviderConfig"));
        assert_eq!(status, 200, "server keeps serving after {fault}");
    }
    let user: Value = json!({"userName": "after-faults"});
    let (status, _) = json(s.send_json("POST", "/Users", &user));
    assert_eq!(status, 201);
}
