//! Change events are exactly the committed changes: each request of a scripted Okta sequence
//! commits the events a product needs to follow it, a request that changes nothing or fails
//! commits none, and the payloads carry the resource and, for updates, what it was before.

mod common;

use common::Tenant;
use scimlet_guest::store::{EventKind, MemStore};
use serde_json::{json, Value};

/// Events committed since the last call, as (kind, data, previous).
struct Seen {
    at: usize,
}

impl Seen {
    fn new() -> Self {
        Seen { at: 0 }
    }
    fn take(&mut self, store: &MemStore) -> Vec<(EventKind, Value, Option<Value>)> {
        let all = store.events();
        let new = all[self.at..]
            .iter()
            .map(|(_, e)| {
                (
                    e.kind,
                    serde_json::from_str(&e.data).expect("data is JSON"),
                    e.previous
                        .as_deref()
                        .map(|p| serde_json::from_str(p).expect("previous is JSON")),
                )
            })
            .collect();
        self.at = all.len();
        new
    }
    fn kinds(&mut self, store: &MemStore) -> Vec<EventKind> {
        self.take(store).into_iter().map(|(k, _, _)| k).collect()
    }
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn user(name: &str, given: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "name": {"givenName": given, "familyName": "L"},
           "emails": [{"value": name, "primary": true}], "active": true, "password": "hunter2!"})
}

fn patch(ops: Value) -> Option<Value> {
    Some(json!({"schemas": [PATCH], "Operations": ops}))
}

#[test]
fn an_okta_lifecycle_commits_one_event_per_change() {
    use EventKind::*;
    let t = Tenant::new();
    let mut seen = Seen::new();

    let ada = t.ok("POST", "/Users", Some(user("ada@example.com", "Ada")));
    let ada_id = ada["id"].as_str().unwrap().to_string();
    let created = seen.take(&t.store);
    assert_eq!(created.len(), 1);
    let (kind, data, previous) = &created[0];
    assert_eq!(*kind, UserCreated);
    assert_eq!(data["userName"], "ada@example.com");
    assert_eq!(data["id"], ada_id.as_str());
    assert!(data["meta"]["location"]
        .as_str()
        .unwrap()
        .ends_with(&ada_id));
    assert!(previous.is_none());

    // Okta's profile update: a PUT of the whole user.
    t.ok(
        "PUT",
        &format!("/Users/{ada_id}"),
        Some(user("ada@example.com", "Augusta")),
    );
    let updated = seen.take(&t.store);
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].0, UserUpdated);
    assert_eq!(updated[0].1["name"]["givenName"], "Augusta");
    assert_eq!(
        updated[0].2.as_ref().unwrap(),
        &json!({"name.givenName": "Ada"})
    );

    // The same PUT again changes nothing and commits nothing.
    t.ok(
        "PUT",
        &format!("/Users/{ada_id}"),
        Some(user("ada@example.com", "Augusta")),
    );
    assert_eq!(seen.kinds(&t.store), []);

    let active = |on: bool| patch(json!([{"op": "replace", "value": {"active": on}}]));
    t.ok("PATCH", &format!("/Users/{ada_id}"), active(false));
    let off = seen.take(&t.store);
    assert_eq!(off.len(), 1);
    assert_eq!(off[0].0, UserDeactivated);
    assert_eq!(off[0].1["active"], false);
    assert_eq!(off[0].2.as_ref().unwrap(), &json!({"active": true}));
    t.ok("PATCH", &format!("/Users/{ada_id}"), active(true));
    assert_eq!(seen.kinds(&t.store), [UserReactivated]);

    let bob = t.ok("POST", "/Users", Some(user("bob@example.com", "Bob")));
    let bob_id = bob["id"].as_str().unwrap().to_string();
    assert_eq!(seen.kinds(&t.store), [UserCreated]);

    // Group push with a member listed twice: one membership.
    let group = t.ok(
        "POST",
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "Engineering",
                    "members": [{"value": ada_id}, {"value": ada_id}]})),
    );
    let gid = group["id"].as_str().unwrap().to_string();
    let pushed = seen.take(&t.store);
    assert_eq!(
        pushed.iter().map(|e| e.0).collect::<Vec<_>>(),
        [GroupCreated, GroupMemberAdded]
    );
    assert!(
        pushed[0].1.get("members").is_none(),
        "groups without members"
    );
    assert_eq!(pushed[1].1["group"]["id"], gid.as_str());
    assert_eq!(pushed[1].1["group"]["displayName"], "Engineering");
    assert_eq!(pushed[1].1["user"]["id"], ada_id.as_str());

    let add = |id: &str| patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
    t.ok("PATCH", &format!("/Groups/{gid}"), add(&bob_id));
    assert_eq!(seen.kinds(&t.store), [GroupMemberAdded]);
    // Adding a member again changes nothing.
    t.ok("PATCH", &format!("/Groups/{gid}"), add(&bob_id));
    assert_eq!(seen.kinds(&t.store), []);

    let remove =
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{ada_id}\"]")}]));
    t.ok("PATCH", &format!("/Groups/{gid}"), remove);
    let removed = seen.take(&t.store);
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].0, GroupMemberRemoved);
    assert_eq!(removed[0].1["user"]["id"], ada_id.as_str());

    let rename = patch(json!([{"op": "replace", "value": {"displayName": "R&D"}}]));
    t.ok("PATCH", &format!("/Groups/{gid}"), rename);
    let renamed = seen.take(&t.store);
    assert_eq!(renamed.len(), 1);
    assert_eq!(renamed[0].0, GroupUpdated);
    assert_eq!(renamed[0].1["displayName"], "R&D");
    assert_eq!(
        renamed[0].2.as_ref().unwrap(),
        &json!({"displayName": "Engineering"})
    );

    // A failed request commits nothing: a duplicate userName, a member who is no user.
    t.err("POST", "/Users", Some(user("ADA@example.com", "Twin")));
    t.err("PATCH", &format!("/Groups/{gid}"), add("no-such-user"));
    assert_eq!(seen.kinds(&t.store), []);

    // Deleting the group removes its members first, in the same commit.
    t.call("DELETE", &format!("/Groups/{gid}"), None, &[]);
    let deleted = seen.take(&t.store);
    assert_eq!(
        deleted.iter().map(|e| e.0).collect::<Vec<_>>(),
        [GroupMemberRemoved, GroupDeleted]
    );
    assert_eq!(deleted[0].1["user"]["id"], bob_id.as_str());
    assert_eq!(deleted[1].1["id"], gid.as_str());

    // Deleting a user who is still a member: the membership goes with it.
    let g2 = t.ok(
        "POST",
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "Ops", "members": [{"value": bob_id}]})),
    );
    seen.take(&t.store);
    t.call("DELETE", &format!("/Users/{bob_id}"), None, &[]);
    let gone = seen.take(&t.store);
    assert_eq!(
        gone.iter().map(|e| e.0).collect::<Vec<_>>(),
        [GroupMemberRemoved, UserDeleted]
    );
    assert_eq!(gone[0].1["group"]["displayName"], "Ops");
    assert_eq!(gone[0].1["group"]["id"], g2["id"]);

    // Never a password, anywhere.
    for (_, e) in t.store.events() {
        assert!(!e.data.contains("hunter2"), "{}", e.data);
        assert!(!e.previous.unwrap_or_default().contains("hunter2"));
    }
}

#[test]
fn a_group_replacement_reports_each_member_changed() {
    use EventKind::*;
    let t = Tenant::new();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            t.ok("POST", "/Users", Some(user(&format!("u{i}@x.com"), "U")))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let members =
        |which: &[usize]| -> Value { which.iter().map(|&i| json!({"value": ids[i]})).collect() };
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "All", "members": members(&[0, 1, 2])})),
    );
    let gid = g["id"].as_str().unwrap();
    let mut seen = Seen::new();
    seen.take(&t.store);
    t.ok(
        "PUT",
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [GROUP], "displayName": "All", "members": members(&[1, 3, 4])})),
    );
    let mut changes: Vec<(EventKind, String)> = seen
        .take(&t.store)
        .into_iter()
        .map(|(k, d, _)| (k, d["user"]["id"].as_str().unwrap().to_string()))
        .collect();
    changes.sort();
    let mut expected = vec![
        (GroupMemberAdded, ids[3].clone()),
        (GroupMemberAdded, ids[4].clone()),
        (GroupMemberRemoved, ids[0].clone()),
        (GroupMemberRemoved, ids[2].clone()),
    ];
    expected.sort();
    assert_eq!(changes, expected);
}

#[test]
fn link_only_and_unlink_policies_report_links() {
    use EventKind::*;
    let t = Tenant::writer();
    let mut seen = Seen::new();
    scimlet_guest::operator::create_team(
        &scimlet_guest::Service::new(&t.store, common::BASE, &t.policy).unwrap(),
        "Sales",
    )
    .unwrap();
    assert_eq!(seen.kinds(&t.store), [GroupCreated]);
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "Sales", "externalId": "okta-1"})),
    );
    let linked = seen.take(&t.store);
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].0, GroupLinked);
    assert_eq!(linked[0].1["externalId"], "okta-1");
    t.call(
        "DELETE",
        &format!("/Groups/{}", g["id"].as_str().unwrap()),
        None,
        &[],
    );
    let unlinked = seen.take(&t.store);
    assert_eq!(unlinked.len(), 1);
    assert_eq!(unlinked[0].0, GroupUnlinked);
    assert_eq!(unlinked[0].2.as_ref().unwrap()["externalId"], "okta-1");
}

#[test]
fn an_import_reports_users_teams_and_memberships() {
    use EventKind::*;
    let t = Tenant::new();
    let svc = scimlet_guest::Service::new(&t.store, common::BASE, &t.policy).unwrap();
    let rows = [
        r#"{"type":"user","userName":"ada@x.com","teams":["Eng"]}"#.to_string(),
        r#"{"type":"user","userName":"bob@x.com","teams":["Eng","Ops"]}"#.to_string(),
    ];
    svc.import_texts(&rows).unwrap();
    let mut seen = Seen::new();
    let mut kinds = seen.kinds(&t.store);
    kinds.sort();
    assert_eq!(
        kinds,
        [
            UserCreated,
            UserCreated,
            GroupCreated,
            GroupCreated,
            GroupMemberAdded,
            GroupMemberAdded,
            GroupMemberAdded
        ]
    );
    // Importing the same rows again changes nothing.
    svc.import_texts(&rows).unwrap();
    assert_eq!(seen.kinds(&t.store), []);
}
