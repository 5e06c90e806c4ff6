//! Streamed response bodies: the same text as the complete rendering, in bounded chunks.

mod common;

use common::{request, Tenant};
use scimlet_guest::http::{handle_with, Response};
use scimlet_guest::http::{Body, Limits};
use serde_json::{json, Value};

/// Everything in one piece.
const WHOLE: Limits = Limits {
    inline: u32::MAX,
    page: 100_000,
};

/// Streams from the eighth member on, five edges a chunk.
const SMALL: Limits = Limits { inline: 7, page: 5 };

fn call_with<'t>(
    t: &'t Tenant,
    method: &str,
    target: &str,
    body: Option<Value>,
    limits: Limits,
) -> Response<'t> {
    handle_with(
        &t.store,
        &request(method, target, body, &[], &t.policy),
        limits,
    )
}

/// A tenant with groups of these sizes (members shared between groups), their ids in order.
fn tenant_with_groups(sizes: &[usize]) -> (Tenant, Vec<String>) {
    let t = Tenant::new();
    let most = sizes.iter().copied().max().unwrap_or(0);
    let users: Vec<String> = (0..most)
        .map(|i| {
            let body = if i % 3 == 0 {
                json!({"userName": format!("user{i}"), "displayName": format!("User \"{i}\"")})
            } else {
                json!({"userName": format!("user{i}")})
            };
            t.ok("POST", "/Users", Some(body))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let groups = sizes
        .iter()
        .enumerate()
        .map(|(g, &n)| {
            let members: Vec<Value> = users[..n].iter().map(|u| json!({"value": u})).collect();
            let body = json!({"displayName": format!("Team {g}"), "members": members});
            t.ok("POST", "/Groups?attributes=id", Some(body))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (t, groups)
}

/// The response whole and streamed: same status, headers and text; the streamed chunks each
/// within `page` members.
fn assert_same(t: &Tenant, method: &str, target: &str, body: Option<Value>, streams: bool) {
    let whole = call_with(t, method, target, body.clone(), WHOLE);
    assert!(!whole.body.is_stream(), "{target}");
    let streamed = call_with(t, method, target, body, SMALL);
    assert_eq!(streamed.body.is_stream(), streams, "{method} {target}");
    assert_eq!(
        (streamed.status, &streamed.headers),
        (whole.status, &whole.headers),
        "{target}"
    );
    let chunks = streamed.body.collect_chunks().unwrap();
    for chunk in &chunks[1..] {
        let values = String::from_utf8_lossy(chunk)
            .matches("\"type\":\"User\"")
            .count();
        assert!(
            values <= SMALL.page as usize,
            "{target}: {values} members in a chunk"
        );
        assert!(
            chunk.len() < 4096,
            "{target}: a chunk of {} bytes",
            chunk.len()
        );
    }
    let text = String::from_utf8(chunks.concat()).unwrap();
    let expected = String::from_utf8(whole.bytes().to_vec()).unwrap();
    assert_eq!(text, expected, "{method} {target}");
    serde_json::from_str::<Value>(&text).expect("valid JSON");
}

#[test]
fn a_streamed_group_reads_as_the_whole_one() {
    let (t, groups) = tenant_with_groups(&[0, 1, 7, 8, 10, 23]);
    let projections = [
        "",
        "?attributes=members",
        "?attributes=members.value",
        "?attributes=members.display,displayName",
        "?excludedAttributes=members.display",
        "?excludedAttributes=members",
        "?attributes=displayName",
    ];
    for (gid, size) in groups.iter().zip([0, 1, 7, 8, 10, 23]) {
        for proj in projections {
            let wants = !proj.contains("excludedAttributes=members&")
                && proj != "?excludedAttributes=members"
                && proj != "?attributes=displayName";
            let target = format!("/Groups/{gid}{proj}");
            assert_same(&t, "GET", &target, None, wants && size > 7);
        }
    }
    // A replacement answers with the group as a GET does.
    let gid = &groups[5];
    let members = t.ok("GET", &format!("/Groups/{gid}"), None)["members"].clone();
    let put = json!({"displayName": "Team 5", "members": members});
    let whole = call_with(
        &t,
        "PUT",
        &format!("/Groups/{gid}"),
        Some(put.clone()),
        WHOLE,
    );
    let streamed = call_with(&t, "PUT", &format!("/Groups/{gid}"), Some(put), SMALL);
    assert!(streamed.body.is_stream());
    assert_eq!(streamed.body.collect().unwrap(), whole.bytes());
}

#[test]
fn pages_of_groups_stream_their_members_alike() {
    let (t, _) = tenant_with_groups(&[3, 0, 12, 2, 9, 0, 1]);
    let search = |attrs: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": attrs, "count": 20, "startIndex": 2})
    };
    for (method, target, body, streams) in [
        ("GET", "/Groups?attributes=members", None, true),
        ("GET", "/Groups?attributes=members.value,displayName", None, true),
        (
            "GET",
            "/Groups?attributes=members&excludedAttributes=members.display",
            None,
            true,
        ),
        ("GET", "/Groups?attributes=members&count=2", None, false),
        ("GET", "/Groups", None, false),
        (
            "GET",
            "/Groups?attributes=members&filter=displayName%20sw%20%22Team%22&sortBy=displayName&sortOrder=descending",
            None,
            true,
        ),
        ("POST", "/Groups/.search", Some(search("members")), true),
        ("GET", "/?attributes=members,userName", None, true),
        ("POST", "/.search", Some(search("members,displayName")), true),
    ] {
        assert_same(&t, method, target, body, streams);
    }
}

#[test]
fn small_responses_stay_whole_and_large_ones_stream_by_default() {
    let (t, groups) = tenant_with_groups(&[1000, 1001]);
    let at_limit = t.call_raw("GET", &format!("/Groups/{}", groups[0]), None, &[]);
    assert!(
        !at_limit.body.is_stream(),
        "1000 members render in one piece"
    );
    assert_eq!(
        at_limit.json_body()["members"].as_array().unwrap().len(),
        1000
    );
    let over = t.call_raw("GET", &format!("/Groups/{}", groups[1]), None, &[]);
    let Body::Stream { first, .. } = &over.body else {
        panic!("1001 members stream");
    };
    assert!(first.len() < 2048, "the first part is the document alone");
    let chunks = over.body.collect_chunks().unwrap();
    assert_eq!(
        chunks.len(),
        1 + 2,
        "two pages of edges, the last one short"
    );
    let doc: Value = serde_json::from_slice(&chunks.concat()).unwrap();
    assert_eq!(doc["members"].as_array().unwrap().len(), 1001);
    // Over the page, the list streams too: 2001 members in all.
    let list = t.call_raw("GET", "/Groups?attributes=members", None, &[]);
    assert!(list.body.is_stream());
    let page: Value = serde_json::from_slice(&list.body.collect().unwrap()).unwrap();
    assert_eq!(
        page["Resources"][1]["members"].as_array().unwrap().len(),
        1001
    );
}
