//! Administration: the admin API, tenant policy from the CLI, the config file and HTTPS.

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::support::{
    admin_json, admin_url, cli, cli_output, get_as, json, new_user, root, Server, ADMIN_TOKEN,
};

#[test]
fn the_admin_api_manages_tenants_policies_and_tokens() {
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--admin-listen", "127.0.0.1:0"],
        |cmd| {
            cmd.env("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN);
        },
    );
    let admin = admin_url(&s);
    let c = s.raw();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut req = c
            .request(method.parse().unwrap(), format!("{admin}{path}"))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        admin_json(req.send().unwrap())
    };

    for auth in [None, Some("wrong-admin-token"), Some(s.token.as_str())] {
        let mut req = c.get(format!("{admin}/tenants"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let (status, body) = admin_json(req.send().unwrap());
        assert_eq!(status, 401, "{auth:?}");
        assert!(body["error"].is_string());
    }
    // The SCIM listener knows nothing of the admin API.
    let resp = c
        .get(format!("{}/admin/tenants", root(&s)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);

    let (status, created) = call(
        "POST",
        "/tenants",
        Some(json!({"name": "acme", "profile": "writer", "default-team": "Staff"})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["tenant"]["name"], "acme");
    assert_eq!(created["tenant"]["profile"], "writer");
    let first = created["token"]["token"].as_str().unwrap().to_string();
    let first_id = created["token"]["id"].as_str().unwrap().to_string();
    assert_eq!(get_as(&s, &first, "/Users").0, 200);
    assert_eq!(
        call("POST", "/tenants", Some(json!({"name": "acme"}))).0,
        409
    );
    assert_eq!(
        call(
            "POST",
            "/tenants",
            Some(json!({"name": "x", "profile": "gold"}))
        )
        .0,
        400
    );
    assert_eq!(call("POST", "/tenants", Some(json!({"nam": "x"}))).0, 400);

    let (_, list) = call("GET", "/tenants", None);
    let names: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "default"]);

    let (status, acme) = call("GET", "/tenants/acme", None);
    assert_eq!(status, 200);
    assert_eq!(acme["policy"]["default-team"], "Staff");
    assert_eq!(acme["policy"]["max-page-size"], 1000);
    let by_id = call(
        "GET",
        &format!("/tenants/{}", acme["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(by_id.1["name"], "acme");
    let (status, missing) = call("GET", "/tenants/nobody", None);
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("nobody"));

    let (status, patched) = call(
        "PATCH",
        "/tenants/acme/policy",
        Some(json!({"max-page-size": 500})),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["policy"]["max-page-size"], 500);
    for bad in [
        json!({"max-page-size": "lots"}),
        json!({"no-such-key": 1}),
        json!([1]),
    ] {
        let (status, body) = call("PATCH", "/tenants/acme/policy", Some(bad.clone()));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        call("GET", "/tenants/acme", None).1["policy"]["max-page-size"],
        500
    );

    // Teams, as the product makes them (not linked to any IdP group).
    let (status, team) = call(
        "POST",
        "/tenants/acme/teams",
        Some(json!({"name": "Sales"})),
    );
    assert_eq!(status, 201, "{team}");
    assert_eq!(
        (team["name"].as_str(), team["linked"].as_bool()),
        (Some("Sales"), Some(false))
    );
    let (status, taken) = call(
        "POST",
        "/tenants/acme/teams",
        Some(json!({"name": "sales"})),
    );
    assert_eq!(status, 409, "{taken}");
    assert!(
        taken["error"].as_str().unwrap().contains("sales"),
        "{taken}"
    );
    assert_eq!(
        call("POST", "/tenants/acme/teams", Some(json!({"title": "x"}))).0,
        400
    );
    assert_eq!(
        call("POST", "/tenants/nobody/teams", Some(json!({"name": "x"}))).0,
        404
    );
    let (_, teams) = call("GET", "/tenants/acme/teams", None);
    assert_eq!(teams["teams"], json!([team]));

    let (status, issued) = call("POST", "/tenants/acme/tokens", None);
    assert_eq!(status, 201);
    let second = issued["token"].as_str().unwrap().to_string();
    let (_, tokens) = call("GET", "/tenants/acme/tokens", None);
    let tokens = tokens["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert!(tokens
        .iter()
        .all(|t| t.get("token").is_none() && t["revoked"] == false));
    assert_eq!(
        call("DELETE", &format!("/tenants/acme/tokens/{first_id}"), None).0,
        204
    );
    assert_eq!(call("DELETE", "/tenants/acme/tokens/k_nope", None).0, 404);
    assert_eq!(get_as(&s, &first, "/Users").0, 401);
    assert_eq!(get_as(&s, &second, "/Users").0, 200);
    let (_, tokens) = call("GET", "/tenants/acme/tokens", None);
    assert!(tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == first_id.as_str() && t["revoked"] == true));

    // Prometheus scrapes the admin listener too, without the admin token.
    let text = c
        .get(format!("{}/metrics", admin.trim_end_matches("/admin")))
        .send()
        .unwrap();
    assert_eq!(text.status(), 200);
    assert!(text.text().unwrap().contains("scimlet_requests_total"));
}

#[test]
fn tenant_policy_is_set_and_shown_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    cli(&[
        "tenant",
        "create",
        "acme",
        "--profile",
        "writer",
        "--data",
        dir,
    ]);
    cli(&[
        "tenant",
        "set",
        "acme",
        "default-team",
        "Staff",
        "--data",
        dir,
    ]);
    cli(&[
        "tenant",
        "set",
        "acme",
        "max-page-size",
        "500",
        "--data",
        dir,
    ]);
    cli(&[
        "tenant",
        "set",
        "acme",
        "roles",
        "[\"member\",\"admin\",\"owner\"]",
        "--data",
        dir,
    ]);
    let shown: Value =
        serde_json::from_str(&cli(&["tenant", "show", "acme", "--data", dir])).unwrap();
    assert_eq!(shown["default-team"], "Staff");
    assert_eq!(shown["max-page-size"], 500);
    assert_eq!(shown["roles"], json!(["member", "admin", "owner"]));
    assert_eq!(
        shown["team-creation"], "link-only",
        "profile defaults are filled in"
    );
    assert_eq!(shown["default-page-size"], 100);

    for (key, value) in [
        ("max-page-size", "lots"),
        ("no-such-key", "1"),
        ("default-page-size", "5000"),
    ] {
        let out = cli_output(&["tenant", "set", "acme", key, value, "--data", dir]);
        assert!(!out.status.success(), "{key}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key) || err.contains("page"), "{err}");
    }
    let again: Value =
        serde_json::from_str(&cli(&["tenant", "show", "acme", "--data", dir])).unwrap();
    assert_eq!(again, shown, "a rejected value is not stored");
    let out = cli_output(&["tenant", "show", "nobody", "--data", dir]);
    assert!(!out.status.success());
}

#[test]
fn a_config_file_is_checked_and_layered_under_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "max-body-bytes = 1024\nmax-concurrency = 3\ntenant-rate-limit = 50\n\
             admin-listen = \"127.0.0.1:0\"\nadmin-token = \"{ADMIN_TOKEN}\"\nlog-format = \"json\"\n"
        ),
    )
    .unwrap();
    let good = good.to_str().unwrap();
    let out = cli(&["config", "check", "--config", good]);
    assert!(out.contains("max-concurrency = 3"), "{out}");
    assert!(out.contains("tenant-rate-limit = 50"), "{out}");
    assert!(out.contains("admin-token = \"<redacted>\""), "{out}");
    assert!(!out.contains(ADMIN_TOKEN), "{out}");
    let out = cli(&[
        "config",
        "check",
        "--config",
        good,
        "--max-concurrency",
        "5",
    ]);
    assert!(out.contains("max-concurrency = 5"), "{out}");
    let env = std::process::Command::new(crate::support::BIN)
        .args(["config", "check", "--max-concurrency", "6"])
        .env("SCIMLET_CONFIG", good)
        .env("SCIMLET_MAX_CONCURRENCY", "4")
        .env("SCIMLET_MAX_BODY_BYTES", "2048")
        .output()
        .unwrap();
    let out = String::from_utf8(env.stdout).unwrap();
    assert!(out.contains("max-concurrency = 6"), "flag over env: {out}");
    assert!(
        out.contains("max-body-bytes = 2048"),
        "env over file: {out}"
    );
    assert!(
        out.contains("tenant-rate-limit = 50"),
        "file over default: {out}"
    );

    let bad_cases = [
        ("unknown.toml", "max-concurency = 3\n", "max-concurency"),
        (
            "value.toml",
            "max-concurrency = \"lots\"\n",
            "max-concurrency",
        ),
        (
            "tls.toml",
            "tls-cert = \"/no/such/cert.pem\"\ntls-key = \"/no/such/key.pem\"\n",
            "tls-cert",
        ),
        ("half.toml", "tls-key = \"/no/such/key.pem\"\n", "tls-cert"),
        (
            "admin.toml",
            "admin-listen = \"127.0.0.1:0\"\n",
            "admin-token",
        ),
    ];
    for (name, text, mentioned) in bad_cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = cli_output(&["config", "check", "--config", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(mentioned), "{name}: {err}");
    }
    let out = cli_output(&["config", "check", "--config", "/no/such/scimlet.toml"]);
    assert!(!out.status.success());

    // `serve` reads the same file: its body cap applies.
    let s = Server::start(&["--config", good]);
    let (status, _) = json(s.send_json("POST", "/Users", &json!({"userName": "x".repeat(4096)})));
    assert_eq!(status, 413);
    assert!(!admin_url(&s).is_empty());
}

#[test]
fn https_is_served_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    cli(&["config", "check", "--tls-cert", cert, "--tls-key", key]);
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let out = cli_output(&[
        "config",
        "check",
        "--tls-cert",
        garbage.to_str().unwrap(),
        "--tls-key",
        key,
    ]);
    assert!(!out.status.success());

    let s = Server::start(&["--tls-cert", cert, "--tls-key", key]);
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = client
        .post(s.url("/Users"))
        .bearer_auth(&s.token)
        .header("content-type", "application/scim+json")
        .body(new_user("tls@example.com").to_string())
        .send()
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(resp.status(), 201);
    assert!(location.starts_with("https://"), "{location}");
    let (status, _) = json(
        client
            .get(s.url("/ServiceProviderConfig"))
            .bearer_auth(&s.token)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    // Without the certificate among its roots, a client refuses the server.
    assert!(Client::new()
        .get(s.url("/ServiceProviderConfig"))
        .send()
        .is_err());
}
