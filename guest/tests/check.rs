//! The store checker (`scimlet check`, [`scimlet_guest::operator::verify`]) on stores written
//! through the HTTP handler, then damaged key by key.

mod common;

use scimlet_guest::http::{handle, Response};
use scimlet_guest::operator::{report, verify, Problem};
use scimlet_guest::store::{MemStore, Store, Write};
use scimlet_guest::Kind;
use serde_json::{json, Value};

/// The membership keys of the store layout (`src/persist/keys.rs`): `m/{group}/{user}`,
/// `g/{user}/{group}` and `s/User/{user}`.
mod keys {
    pub fn edge(group: &str, user: &str) -> String {
        format!("m/{group}/{user}")
    }

    pub fn reverse(user: &str, group: &str) -> String {
        format!("g/{user}/{group}")
    }

    pub fn user_stamp(user: &str) -> String {
        format!("s/User/{user}")
    }
}

/// Membership edges written as the guest writes them: the edge and its reverse together.
mod members {
    use super::keys::{edge, reverse};
    use scimlet_guest::store::Write;

    pub fn link(group: &str, user: &str) -> [Write; 2] {
        [
            Write::Put(edge(group, user), Vec::new()),
            Write::Put(reverse(user, group), Vec::new()),
        ]
    }

    pub fn unlink(group: &str, user: &str) -> [Write; 2] {
        [
            Write::Delete(edge(group, user)),
            Write::Delete(reverse(user, group)),
        ]
    }
}

const POLICY: &str = r#"{"profile":"writer"}"#;

fn call<'s>(store: &'s MemStore, method: &str, path: &str, body: Value) -> Response<'s> {
    let resp = handle(
        store,
        &common::request(method, path, Some(body), &[], POLICY),
    );
    assert!(resp.status < 300, "{method} {path}: {}", resp.json_body());
    resp
}

fn create_user(store: &MemStore, name: &str) -> String {
    let body = json!({
        "userName": name,
        "externalId": format!("ext-{name}"),
        "emails": [{"value": format!("{name}@Example.com")}, {"value": "shared@example.com"}],
    });
    let resp = call(store, "POST", "/Users", body);
    resp.json_body()["id"].as_str().unwrap().to_string()
}

/// Two users in the default team plus a deleted one, so every key family is present.
fn populated() -> (MemStore, String, String) {
    let store = MemStore::new();
    let ada = create_user(&store, "Ada");
    let bob = create_user(&store, "bob");
    let gone = create_user(&store, "gone");
    let req = common::request("DELETE", &format!("/Users/{gone}"), None, &[], POLICY);
    assert_eq!(handle(&store, &req).status, 204);
    (store, ada, bob)
}

fn put(store: &MemStore, key: &str, value: &[u8]) {
    store
        .commit(&[], &[Write::Put(key.into(), value.to_vec())])
        .unwrap();
}

fn delete(store: &MemStore, key: &str) {
    store.commit(&[], &[Write::Delete(key.into())]).unwrap();
}

fn team_id(store: &MemStore) -> String {
    let prefix = Kind::Group.resource_prefix();
    let key = store
        .keys()
        .into_iter()
        .find(|k| k.starts_with(&prefix))
        .expect("the default team exists");
    key[prefix.len()..].to_string()
}

fn only(problems: Vec<Problem>) -> Problem {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().unwrap()
}

#[test]
fn a_store_written_by_the_guest_is_clean() {
    let (store, _, _) = populated();
    for family in [
        "r/User/", "r/Group/", "u/", "n/", "m/", "g/", "s/User/", "s/Group/",
    ] {
        assert!(
            store.keys().iter().any(|k| k.starts_with(family)),
            "{family} present"
        );
    }
    assert_eq!(verify(&store, POLICY), []);
    assert_eq!(verify(&MemStore::new(), ""), []);
}

#[test]
fn a_dangling_index_key_is_reported() {
    let (store, ada, _) = populated();
    put(&store, "u/User/userName/nobody", b"no-such-id");
    let p = only(verify(&store, POLICY));
    assert!(matches!(&p, Problem::DanglingIndex { key, .. } if key == "u/User/userName/nobody"));
    assert!(
        p.to_string()
            .contains("User no-such-id, which does not exist"),
        "{p}"
    );

    delete(&store, "u/User/userName/nobody");
    put(&store, &format!("n/User/externalId/stale\u{1f}{ada}"), b"");
    let p = only(verify(&store, POLICY));
    assert!(
        p.to_string()
            .contains(&format!("User {ada} does not have externalId \"stale\"")),
        "{p}"
    );
    assert!(p.to_string().contains("\\u{1f}"), "separator shown: {p}");
}

#[test]
fn a_missing_index_entry_is_reported_with_case_folding() {
    let (store, ada, bob) = populated();
    delete(
        &store,
        &format!("n/User/emails.value/ada@example.com\u{1f}{ada}"),
    );
    let p = only(verify(&store, POLICY));
    assert_eq!(
        p,
        Problem::MissingIndex {
            resource: format!("User {ada}"),
            attr: "emails.value",
            value: "ada@example.com".into(),
            key: format!("n/User/emails.value/ada@example.com\u{1f}{ada}"),
            owner: None,
        }
    );
    put(
        &store,
        &format!("n/User/emails.value/ada@example.com\u{1f}{ada}"),
        b"",
    );

    put(&store, "u/User/userName/ada", bob.as_bytes());
    let p = only(verify(&store, POLICY));
    assert!(
        p.to_string().contains(&format!(
            "has userName \"ada\" but index entry u/User/userName/ada names User {bob}"
        )),
        "{p}"
    );
}

#[test]
fn half_edges_are_reported_from_either_side() {
    let (store, ada, _) = populated();
    let team = team_id(&store);
    delete(&store, &keys::reverse(&ada, &team));
    let p = only(verify(&store, POLICY));
    assert_eq!(
        p,
        Problem::HalfEdge {
            key: keys::edge(&team, &ada),
            reverse: keys::reverse(&ada, &team),
        }
    );
    put(&store, &keys::reverse(&ada, &team), b"");
    delete(&store, &keys::edge(&team, &ada));
    assert!(matches!(
        only(verify(&store, POLICY)),
        Problem::HalfEdge { key, .. } if key == keys::reverse(&ada, &team)
    ));
}

#[test]
fn an_edge_to_a_missing_user_and_an_orphan_stamp_are_reported() {
    let (store, _, _) = populated();
    let team = team_id(&store);
    let writes: Vec<Write> = members::link(&team, "ghost").into();
    store.commit(&[], &writes).unwrap();
    let p = only(verify(&store, POLICY));
    assert_eq!(
        p.to_string(),
        format!("membership key m/{team}/ghost names User ghost, which does not exist")
    );

    store.commit(&[], &members::unlink(&team, "ghost")).unwrap();
    put(&store, &keys::user_stamp("ghost"), b"{}");
    assert_eq!(
        only(verify(&store, POLICY)),
        Problem::OrphanStamp {
            key: keys::user_stamp("ghost")
        }
    );
}

#[test]
fn corrupt_documents_and_bad_policies_are_reported_not_fatal() {
    let (store, ada, _) = populated();
    put(&store, &Kind::User.resource_key(&ada), b"{not json");
    let problems = verify(&store, "{");
    assert!(matches!(problems[0], Problem::Policy(_)), "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Malformed { .. })),
        "{problems:#?}"
    );
    // Its index entries and edges now dangle, and each is named.
    assert!(problems.len() > 3, "{problems:#?}");
}

#[test]
fn the_report_is_one_line_per_problem_and_empty_when_sound() {
    let (store, ada, _) = populated();
    assert!(report(&store, "").is_empty());
    put(&store, "u/User/userName/nobody", b"no-such-id");
    delete(&store, &Kind::User.resource_key(&ada));
    let lines = report(&store, r#"{"roles":[]}"#);
    assert_eq!(
        lines,
        verify(&store, r#"{"roles":[]}"#)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert!(lines[0].contains("roles must not be empty"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("u/User/userName/nobody")),
        "{lines:#?}"
    );
}
