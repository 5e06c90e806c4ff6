//! The runtime's behaviour through the embedded component: warm instances stay with their
//! tenant, faults drop the instance, and a component of another contract version is refused.

use std::sync::Arc;

use super::*;
use crate::store::memory::MemoryBackend;

#[allow(dead_code)] // build.rs's part of the shared file
mod guest_build {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/guest_build.rs"));
}

/// Every request creates the same user: run against another tenant's data it would conflict.
fn request(tenant: &Tenant, path: &str, fault: Option<&str>) -> GuestRequest {
    let mut headers = vec![("content-type".into(), "application/scim+json".into())];
    if let Some(kind) = fault {
        headers.push(("x-scimlet-fault".into(), kind.into()));
    }
    GuestRequest {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers,
        body: br#"{"userName":"same@example.com"}"#.to_vec(),
        ctx: GuestContext {
            base_url: "http://test/scim/v2".into(),
            policy: tenant.policy.to_string(),
        },
    }
}

fn setup(wasm: &[u8], limits: Limits) -> (Runtime, Arc<dyn Backend>, Vec<Tenant>) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let cache = std::env::temp_dir().join("scimlet-test-cwasm");
    let runtime = Runtime::new(wasm, Some(&cache), limits).unwrap();
    let tenants = ["acme", "globex"]
        .iter()
        .map(|name| {
            crate::tenancy::create(backend.as_ref(), &runtime, name, "standard", None)
                .unwrap()
                .0
        })
        .collect();
    (runtime, backend, tenants)
}

#[test]
fn a_warm_instance_serves_only_the_tenant_it_was_made_for() {
    let (rt, backend, t) = setup(EMBEDDED_COMPONENT, Limits::default());
    for _ in 0..3 {
        rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
            .unwrap();
    }
    assert_eq!(rt.warm_instances(), 1, "one tenant, one instance reused");
    let created = rt
        .handle(backend.clone(), &t[1], request(&t[1], "/Users", None))
        .unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(
        rt.warm_instances(),
        2,
        "another tenant gets its own instance"
    );
    let other = rt
        .handle(backend.clone(), &t[0], request(&t[0], "/Users", None))
        .unwrap();
    assert_eq!(other.status, 201, "tenants' data stay apart: {other:?}");
}

#[test]
fn instances_are_replaced_after_their_uses_and_past_their_memory() {
    let limits = Limits {
        warm_max_uses: 2,
        ..Limits::default()
    };
    let (rt, backend, t) = setup(EMBEDDED_COMPONENT, limits);
    let call = || {
        rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
            .unwrap()
    };
    call();
    assert_eq!(rt.warm_instances(), 1);
    call();
    assert_eq!(
        rt.warm_instances(),
        0,
        "retired after warm_max_uses requests"
    );
    let small = Limits {
        warm_memory_bytes: 0,
        ..Limits::default()
    };
    let (rt, backend, t) = setup(EMBEDDED_COMPONENT, small);
    rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
        .unwrap();
    assert_eq!(rt.warm_instances(), 0, "grew beyond warm_memory_bytes");
}

#[test]
fn the_warm_pool_keeps_the_most_recently_used_within_its_capacity() {
    let limits = Limits {
        warm_instances: 1,
        ..Limits::default()
    };
    let (rt, backend, t) = setup(EMBEDDED_COMPONENT, limits);
    for tenant in &t {
        rt.handle(backend.clone(), tenant, request(tenant, "/Nothing", None))
            .unwrap();
    }
    assert_eq!(rt.warm_instances(), 1);
    assert!(
        rt.warm.take(&t[1].id).is_some(),
        "the latest tenant's stays"
    );
}

#[test]
fn an_instance_that_trapped_is_dropped_and_the_next_request_succeeds() {
    let path = guest_build::fault_component(
        env!("CARGO"),
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        std::path::Path::new(env!("SCIMLET_GUEST_TARGET_DIR")),
    );
    let faulty = std::fs::read(path).unwrap();
    let (rt, backend, t) = setup(&faulty, Limits::default());
    rt.handle(backend.clone(), &t[0], request(&t[0], "/Nothing", None))
        .unwrap();
    assert_eq!(rt.warm_instances(), 1);
    let fault = rt
        .handle(
            backend.clone(),
            &t[0],
            request(&t[0], "/Users", Some("panic")),
        )
        .unwrap_err();
    assert!(matches!(fault, GuestFault::Trap(_)), "{fault:?}");
    assert_eq!(rt.warm_instances(), 0, "the trapped instance is gone");
    let next = rt
        .handle(backend.clone(), &t[0], request(&t[0], "/Users", None))
        .unwrap();
    assert_eq!(next.status, 201);
}

/// A component exporting only an interface of `package@version`, as another build would.
fn component_exporting(name: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m)
            (core instance $i (instantiate $m))
            (instance $e)
            (export "{name}" (instance $e))
        )"#
    ))
    .unwrap()
}

#[test]
fn a_component_of_another_contract_version_is_refused_in_words() {
    let old = component_exporting("scimlet:scim/handler@0.1.0");
    let err = Runtime::new(&old, None, Limits::default()).err().unwrap();
    let text = format!("{err:#}");
    assert!(
        text.contains("speaks scimlet:scim@0.1.0") && text.contains("scimlet:scim@0.3.0"),
        "{text}"
    );
    let stranger = component_exporting("example:other/api@1.0.0");
    let text = format!(
        "{:#}",
        Runtime::new(&stranger, None, Limits::default())
            .err()
            .unwrap()
    );
    assert!(text.contains("not a scimlet SCIM component"), "{text}");
}

#[test]
fn error_pages_and_large_body_routes_come_from_the_component() {
    let rt = test_runtime();
    let page = rt.error_page(HostFailure::MissingToken);
    assert_eq!(page.status, 401);
    let body: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "401");
    let too_large = rt.error_page(HostFailure::PayloadTooLarge(1234));
    assert_eq!(too_large.status, 413);
    assert!(String::from_utf8_lossy(&too_large.body).contains("1234"));
    assert!(rt.takes_large_body("PUT", "/Groups/abc"));
    assert!(rt.takes_large_body("PUT", "/groups/abc"));
    assert!(!rt.takes_large_body("PATCH", "/Groups/abc"));
    assert!(!rt.takes_large_body("PUT", "/Users/abc"));
    assert!(!rt.takes_large_body("PUT", "/Groups"));
}

#[test]
fn operator_calls_run_in_the_component() {
    let (rt, backend, t) = setup(EMBEDDED_COMPONENT, Limits::default());
    assert!(rt.profiles().unwrap().contains(&"writer".to_string()));
    let team = rt.create_team(&backend, &t[0], "Sales", "test").unwrap();
    assert_eq!(
        (team.name.as_str(), team.linked, team.members),
        ("Sales", false, 0)
    );
    assert_eq!(rt.list_teams(&backend, &t[0]).unwrap(), [team]);
    assert!(rt.list_teams(&backend, &t[1]).unwrap().is_empty());
    let rows = [
        r#"{"type":"user","userName":"ada@example.com","teams":["Sales"]}"#.to_string(),
        "not json".to_string(),
    ];
    let outcomes = rt
        .import_rows(&backend, &t[0], &rows, None, "test")
        .unwrap();
    assert_eq!(outcomes[0], operator::RowOutcome::Created);
    assert!(matches!(outcomes[1], operator::RowOutcome::Failed(_)));
    let page = rt.export_rows(&backend, &t[0], None, 1000).unwrap();
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.next, None);
    assert_eq!(rt.check(&backend, &t[0]).unwrap(), Vec::<String>::new());
    assert!(matches!(
        rt.effective_policy(&serde_json::json!({"max-page-size": "lots"})),
        Err(operator::OperatorError::Refused { status: 400, .. })
    ));
}

/// Events are exactly the committed changes, under contention too: 32 requests adding 32
/// users to one group at once (on SQLite, whose group commit batches them) and 32 adding the
/// same user make exactly one `group.member_added` per membership, each naming its request.
#[test]
fn parallel_member_adds_commit_exactly_one_event_each() {
    use crate::events::EventKind;
    use crate::store::sqlite::SqliteBackend;
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let cache = std::env::temp_dir().join("scimlet-test-cwasm");
    let rt = Runtime::new(EMBEDDED_COMPONENT, Some(&cache), Limits::default()).unwrap();
    let (tenant, _) =
        crate::tenancy::create(backend.as_ref(), &rt, "acme", "standard", None).unwrap();
    let call = |method: &str, path: &str, body: serde_json::Value, id: &str| {
        let req = GuestRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![
                ("content-type".into(), "application/scim+json".into()),
                ("x-request-id".into(), id.into()),
            ],
            body: body.to_string().into_bytes(),
            ctx: GuestContext {
                base_url: "http://test/scim/v2".into(),
                policy: tenant.policy.to_string(),
            },
        };
        let resp = rt.handle(backend.clone(), &tenant, req).unwrap();
        assert!(resp.status < 300, "{method} {path}: {}", resp.status);
        serde_json::from_slice::<serde_json::Value>(&resp.body).unwrap()
    };
    let users: Vec<String> = (0..32)
        .map(|i| {
            let u = call(
                "POST",
                "/Users",
                serde_json::json!({"userName": format!("u{i}@x.com")}),
                "setup",
            );
            u["id"].as_str().unwrap().to_string()
        })
        .collect();
    let group = call(
        "POST",
        "/Groups",
        serde_json::json!({"displayName": "All"}),
        "setup",
    );
    let gid = group["id"].as_str().unwrap().to_string();
    let add = |user: &str| {
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]
        })
    };
    let path = format!("/Groups/{gid}");
    std::thread::scope(|s| {
        for (i, u) in users.iter().enumerate() {
            let (call, add, path, first) = (&call, &add, &path, &users[0]);
            s.spawn(move || call("PATCH", path, add(u), &format!("add-{i}")));
            s.spawn(move || call("PATCH", path, add(first), &format!("same-{i}")));
        }
    });
    let events = backend.events_after(&tenant.id, None, 10_000).unwrap();
    let added: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::GroupMemberAdded)
        .collect();
    let mut who: Vec<String> = added
        .iter()
        .map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            d["user"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    who.sort();
    let mut want = users.clone();
    want.sort();
    assert_eq!(who, want, "exactly one group.member_added per member");
    for e in &added {
        assert!(e.request_id.starts_with("add-") || e.request_id.starts_with("same-"));
    }
    // The feed is in commit order with distinct, increasing cursors.
    assert!(events.windows(2).all(|w| w[0].cursor < w[1].cursor));
}
