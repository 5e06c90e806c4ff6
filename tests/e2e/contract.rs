//! One contract: every command and request that needs a SCIM rule runs in the component the
//! binary loaded (`--component`), a component of another contract version is refused in words,
//! and groups too large for one response or for the ordinary body limit still work.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::{cli, cli_output, fault_component, json, Server, SCIM_JSON};

/// Runs `scimlet ARGS --data DATA [--component C]` and answers (success, stdout + stderr).
fn run(args: &[&str], data: &str, component: Option<&str>) -> (bool, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--data", data]);
    if let Some(c) = component {
        all.extend(["--component", c]);
    }
    let out = cli_output(&all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_cli_command_that_needs_scim_rules_runs_in_the_component_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let fault = fault_component();
    let fault = Some(fault.as_str());
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"type\":\"team\",\"name\":\"Ops\"}\n").unwrap();
    let rows = rows.to_str().unwrap();
    assert!(run(&["tenant", "create", "acme"], data, None).0);

    // Policy validation: only the test component knows the `fault` key.
    let (ok, text) = run(
        &["tenant", "set", "acme", "fault", "operator-panic"],
        data,
        None,
    );
    assert!(!ok && text.contains("fault"), "{text}");
    let (ok, text) = run(
        &["tenant", "set", "acme", "fault", "operator-panic"],
        data,
        fault,
    );
    assert!(ok, "{text}");

    // Team creation, listing, import, export and check now trap in the test component, and
    // the embedded one refuses the tenant's policy: each command ran where --component said.
    for args in [
        &["team", "create", "acme", "Sales"][..],
        &["team", "list", "acme"],
        &["import", "acme", rows],
        &["export", "acme"],
        &["check"],
    ] {
        let (ok, text) = run(args, data, fault);
        assert!(
            !ok && text.contains("the SCIM component failed"),
            "{args:?}: {text}"
        );
        let (ok, text) = run(args, data, None);
        assert!(
            !ok && !text.contains("the SCIM component failed") && text.contains("fault"),
            "{args:?}: {text}"
        );
    }

    // With the fault switched off, the same commands succeed through the test component.
    assert!(run(&["tenant", "set", "acme", "fault", "null"], data, fault).0);
    let (ok, text) = run(&["team", "create", "acme", "Sales"], data, fault);
    assert!(ok && text.contains("Created team 'Sales'"), "{text}");
    let (ok, text) = run(&["import", "acme", rows], data, fault);
    assert!(ok && text.contains("1 created"), "{text}");
    let (ok, text) = run(&["check"], data, fault);
    assert!(ok && text.contains("'acme'"), "{text}");
}

#[test]
fn a_component_of_another_contract_version_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let old = dir.path().join("old.wasm");
    let component = wat::parse_str(
        r#"(component
            (core module $m)
            (core instance $i (instantiate $m))
            (instance $e)
            (export "scimlet:scim/handler@0.1.0" (instance $e))
        )"#,
    )
    .unwrap();
    std::fs::write(&old, component).unwrap();
    let old = old.to_str().unwrap();
    for args in [
        &["tenant", "create", "acme"][..],
        &["check"],
        &["precompile"],
    ] {
        let (ok, text) = run(args, data, Some(old));
        assert!(
            !ok && text.contains("speaks scimlet:scim@0.1.0")
                && text.contains("speaks scimlet:scim@0.3.0"),
            "{args:?}: {text}"
        );
    }
    let out = cli_output(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data,
        "--component",
        old,
    ]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("scimlet:scim@0.1.0"),
        "{text}"
    );
}

fn member_ids(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| x["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_large_group_streams_out_and_a_whole_group_put_is_applied_as_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    cli(&["tenant", "create", "acme", "--data", &data]);
    let n = 3000;
    let mut rows = String::from("{\"type\":\"team\",\"name\":\"Big\"}\n");
    for i in 0..n {
        rows.push_str(&format!(
            "{{\"type\":\"user\",\"userName\":\"u{i}@example.com\",\"teams\":[\"Big\"]}}\n"
        ));
    }
    for i in 0..500 {
        rows.push_str(&format!(
            "{{\"type\":\"user\",\"userName\":\"spare{i}@example.com\"}}\n"
        ));
    }
    let file = dir.path().join("rows.jsonl");
    std::fs::write(&file, rows).unwrap();
    cli(&["import", "acme", file.to_str().unwrap(), "--data", &data]);
    let token = cli(&["tenant", "token", "add", "acme", "--data", &data]);
    let mut s = Server::start_in(dir, &["--max-body-bytes", "65536"]);
    s.token = token.lines().last().unwrap().trim().to_string();

    let (status, page) = json(s.get("/Groups?filter=displayName%20eq%20%22Big%22&attributes=id"));
    assert_eq!(status, 200);
    let id = page["Resources"][0]["id"].as_str().unwrap().to_string();
    // More members than one piece holds: the body arrives in chunks, as one valid document.
    let (status, group) = json(s.get(&format!("/Groups/{id}")));
    assert_eq!(status, 200);
    let all = member_ids(&group);
    assert_eq!(all.len(), n);
    let (status, list) = json(s.get("/Groups?attributes=members"));
    assert_eq!(status, 200);
    assert_eq!(member_ids(&list["Resources"][0]), all);

    let (_, spares) =
        json(s.get("/Users?filter=userName%20sw%20%22spare%22&count=500&attributes=id"));
    let spares: Vec<String> = spares["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(spares.len(), 500);
    // A whole-group PUT larger than max-body-bytes: the component's large-body route.
    let wanted: BTreeSet<String> = all.iter().skip(500).cloned().chain(spares).collect();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Big",
        "members": wanted.iter().map(|v| json!({"value": v})).collect::<Vec<_>>(),
    });
    assert!(body.to_string().len() > 65536);
    let resp = s.send_json("PUT", &format!("/Groups/{id}"), &body);
    assert_eq!(resp.status(), 200);
    let (_, after) = json(s.get(&format!("/Groups/{id}?attributes=members")));
    assert_eq!(member_ids(&after), wanted);

    // Other routes keep the ordinary limit.
    let big_post = json!({"displayName": "x".repeat(70_000)});
    let resp = s
        .req("POST", "/Groups")
        .header("content-type", SCIM_JSON)
        .body(big_post.to_string())
        .send()
        .unwrap();
    let (status, err) = json(resp);
    assert_eq!(status, 413);
    assert!(err["detail"].as_str().unwrap().contains("65536"), "{err}");
}
