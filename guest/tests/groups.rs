//! `/Groups` as teams: membership edges, link-only policy, shrink guard.

mod common;

use common::Tenant;
use serde_json::{json, Value};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn members_are_edges_read_only_when_asked() {
    let t = Tenant::new();
    let (a, b) = (t.create("a"), t.create("b"));
    let g = t.ok("POST", "/Groups", Some(json!({"displayName": "Eng", "members": [{"value": a}, {"value": b, "$ref": null, "display": "B"}]})));
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(member_ids(&g), sorted(&[&a, &b]));
    assert_eq!(g["members"][0]["type"], "User");
    let read = t.ok("GET", &format!("/Groups/{gid}"), None);
    assert_eq!(member_ids(&read), sorted(&[&a, &b]));
    let without = t.ok(
        "GET",
        &format!("/Groups/{gid}?excludedAttributes=members"),
        None,
    );
    assert!(without.get("members").is_none() && without["displayName"] == "Eng");
    let list = t.ok("GET", "/Groups", None);
    assert!(
        list["Resources"][0].get("members").is_none(),
        "lists never expand members unless asked"
    );
    let list = t.ok("GET", "/Groups?attributes=members", None);
    assert_eq!(member_ids(&list["Resources"][0]), sorted(&[&a, &b]));
    let user = t.ok("GET", &format!("/Users/{a}"), None);
    assert_eq!(user["groups"][0]["value"], gid.as_str());
    assert_eq!(user["groups"][0]["display"], "Eng");
    let found = t.ok(
        "GET",
        &format!("/Groups?filter=members%5Bvalue%20eq%20%22{a}%22%5D"),
        None,
    );
    assert_eq!(found["totalResults"], 1);
    let found = t.ok("GET", "/Groups?filter=displayName%20eq%20%22eng%22", None);
    assert_eq!(found["totalResults"], 1);
}

#[test]
fn patch_deltas_are_idempotent_and_precise() {
    let t = Tenant::new();
    let (a, b, c) = (t.create("a"), t.create("b"), t.create("c"));
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": [{"value": a}, {"value": b}]})),
    );
    let gid = g["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    let v0 = g["meta"]["version"].clone();
    let same = t.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": a}]}]),
        )),
    );
    assert_eq!(
        same["meta"]["version"], v0,
        "re-adding a member changes nothing"
    );
    let same = t.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "remove", "path": format!("members[value eq \"{c}\"]")}]),
        )),
    );
    assert_eq!(
        same["meta"]["version"], v0,
        "removing an absent member changes nothing"
    );
    // Okta's membership delta, with the rename it sends every time.
    let okta = patch(json!([
        {"op": "replace", "value": {"id": gid, "displayName": "Eng"}},
        {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
        {"op": "add", "path": "members", "value": [{"value": c, "display": "c"}]},
    ]));
    let g = t.ok("PATCH", &path, Some(okta));
    assert_eq!(member_ids(&g), sorted(&[&b, &c]));
    assert_ne!(g["meta"]["version"], v0);
    // Entra's default-mode removal carries the member in `value`: only that one goes.
    let entra =
        patch(json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": b}]}]));
    assert_eq!(
        member_ids(&t.ok("PATCH", &path, Some(entra))),
        vec![c.clone()]
    );
    // A full replace applies the difference.
    let g = t.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "replace", "path": "members", "value": [{"value": a}, {"value": b}]}]),
        )),
    );
    assert_eq!(member_ids(&g), sorted(&[&a, &b]));
    let g = t.ok(
        "PUT",
        &path,
        Some(json!({"displayName": "Engineering", "members": [{"value": c}]})),
    );
    assert_eq!(
        (member_ids(&g), g["displayName"].as_str()),
        (vec![c.clone()], Some("Engineering"))
    );
    let user = t.ok("GET", &format!("/Users/{a}"), None);
    assert!(
        user.get("groups").is_none(),
        "reverse edges follow the forward ones"
    );
}

#[test]
fn unknown_members_are_refused_and_change_nothing() {
    let t = Tenant::new();
    let a = t.create("a");
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": [{"value": a}]})),
    );
    let gid = g["id"].as_str().unwrap();
    let bad = patch(json!([
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "add", "path": "members", "value": [{"value": "not-a-user"}]},
    ]));
    let (s, e) = t.err("PATCH", &format!("/Groups/{gid}"), Some(bad));
    assert_eq!((s, e["scimType"].as_str()), (400, Some("invalidValue")));
    let g = t.ok("GET", &format!("/Groups/{gid}"), None);
    assert_eq!(
        (g["displayName"].as_str(), member_ids(&g)),
        (Some("Eng"), vec![a.clone()])
    );
    let (s, e) = t.err(
        "POST",
        "/Groups",
        Some(json!({"displayName": "X", "members": [{"value": "ghost"}]})),
    );
    assert_eq!((s, e["scimType"].as_str()), (400, Some("invalidValue")));
    let xs = t.ok("GET", "/Groups?filter=displayName%20eq%20%22X%22", None);
    assert_eq!(
        xs["totalResults"], 0,
        "the refused group was not stored: {xs}"
    );
    let (s, e) = t.err("POST", "/Groups", Some(json!({"displayName": "eng"})));
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")));
}

#[test]
fn deleting_users_and_groups_removes_their_edges() {
    let t = Tenant::new();
    let (a, b) = (t.create("a"), t.create("b"));
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": [{"value": a}, {"value": b}]})),
    );
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(
        t.call("DELETE", &format!("/Users/{a}"), None, &[]).status,
        204
    );
    assert_eq!(
        member_ids(&t.ok("GET", &format!("/Groups/{gid}"), None)),
        vec![b.clone()]
    );
    assert_eq!(
        t.call("DELETE", &format!("/Groups/{gid}"), None, &[])
            .status,
        204
    );
    assert!(t
        .ok("GET", &format!("/Users/{b}"), None)
        .get("groups")
        .is_none());
    let leftovers: Vec<String> = t
        .store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("m/") || k.starts_with("g/") || k.starts_with("s/Group"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_shrink_guard_refuses_mass_removal_but_not_a_full_replace() {
    let t = Tenant::with_policy(r#"{"max-group-shrink-percent": 50}"#);
    let ids: Vec<String> = (0..4).map(|i| t.create(&format!("u{i}"))).collect();
    let members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": members})),
    );
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let filter = format!(
        "members[value eq \"{}\" or value eq \"{}\" or value eq \"{}\"]",
        ids[0], ids[1], ids[2]
    );
    let (s, e) = t.err(
        "PATCH",
        &path,
        Some(patch(json!([{"op": "remove", "path": filter}]))),
    );
    assert_eq!(s, 400);
    assert!(e["detail"].as_str().unwrap().contains("50%"), "{e}");
    let (s, _) = t.err(
        "PATCH",
        &path,
        Some(patch(json!([{"op": "remove", "path": "members"}]))),
    );
    assert_eq!(s, 400, "emptying a group is refused too");
    assert_eq!(member_ids(&t.ok("GET", &path, None)).len(), 4);
    t.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]),
        )),
    );
    let g = t.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "replace", "path": "members", "value": []}]),
        )),
    );
    assert!(
        g.get("members").is_none(),
        "an explicit replace may empty the group"
    );
}

#[test]
fn writer_teams_are_linked_by_exact_name_and_unlinked_on_delete() {
    let t = Tenant::writer();
    let (s, e) = t.err("POST", "/Groups", Some(json!({"displayName": "Sales"})));
    assert_eq!(s, 400);
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("created in the product"),
        "{e}"
    );
    let svc = scimlet_guest::Service::new(&t.store, common::BASE, &t.policy).unwrap();
    let team = svc.create_team("Sales").unwrap();
    let tid = team["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{tid}");
    let (s, e) = t.err(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "replace", "path": "displayName", "value": "X"}]),
        )),
    );
    assert_eq!(s, 403, "an unlinked team is read-only to the IdP: {e}");
    assert_eq!(
        t.ok("GET", &path, None)["displayName"],
        "Sales",
        "the refused rename changed nothing"
    );
    let (s, e) = t.err("POST", "/Groups", Some(json!({"displayName": "sales"})));
    assert_eq!(
        (s, e["scimType"].as_str()),
        (400, Some("invalidValue")),
        "names must match exactly: {e}"
    );
    let all = t.ok("GET", "/Groups", None);
    assert_eq!(all["totalResults"], 1, "no group was created: {all}");
    let u = t.create("ada@example.com");
    let linked = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Sales", "externalId": "okta-1", "members": [{"value": u}]})),
    );
    assert_eq!(linked["id"], tid.as_str());
    assert_eq!(linked["externalId"], "okta-1");
    assert!(member_ids(&linked).contains(&u));
    let (s, e) = t.err("POST", "/Groups", Some(json!({"displayName": "Sales"})));
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")));
    let renamed = t.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "replace", "path": "displayName", "value": "Sales EMEA"}]),
        )),
    );
    assert_eq!(renamed["displayName"], "Sales EMEA");
    assert_eq!(t.call("DELETE", &path, None, &[]).status, 204);
    let kept = t.ok("GET", &path, None);
    assert!(
        member_ids(&kept).contains(&u),
        "unlinking keeps the team and its members"
    );
    assert!(kept.get("externalId").is_none());
    assert_eq!(
        t.err(
            "PATCH",
            &path,
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": u}]}])
            ))
        )
        .0,
        403
    );
}

#[test]
fn writer_users_join_the_default_team_with_the_default_role() {
    let t = Tenant::writer();
    let u = t.create("ada@example.com");
    let user = t.ok("GET", &format!("/Users/{u}"), None);
    assert_eq!(user["groups"][0]["display"], "Everyone");
    let ext = "urn:custom:params:scim:schemas:extension:writer:2.0:User";
    assert_eq!(user[ext]["role"], "member");
    assert_eq!(user["roles"][0]["value"], "member");
    let v = t.create("bob@example.com");
    let teams = t.ok(
        "GET",
        "/Groups?filter=displayName%20eq%20%22Everyone%22&attributes=members",
        None,
    );
    assert_eq!(teams["totalResults"], 1, "the default team is created once");
    assert_eq!(member_ids(&teams["Resources"][0]), sorted(&[&u, &v]));
    // Entra app roles through core `roles`.
    let p = patch(
        json!([{"op": "replace", "path": "roles", "value": [{"value": "admin", "primary": "True"}]}]),
    );
    assert_eq!(
        t.ok("PATCH", &format!("/Users/{u}"), Some(p))[ext]["role"],
        "admin"
    );
    let p = patch(json!([{"op": "replace", "path": "roles", "value": [{"value": "owner"}]}]));
    assert_eq!(
        t.err("PATCH", &format!("/Users/{u}"), Some(p)).1["scimType"],
        "invalidValue"
    );
}

#[test]
fn roles_are_a_read_only_resource_advertised_in_discovery() {
    let t = Tenant::writer();
    let roles = t.ok("GET", "/Roles", None);
    assert_eq!(roles["totalResults"], 2);
    assert_eq!(roles["Resources"][0]["value"], "member");
    assert_eq!(roles["Resources"][0]["default"], true);
    assert_eq!(t.ok("GET", "/Roles/admin", None)["display"], "Admin");
    assert_eq!(
        t.ok("GET", "/Roles?filter=value%20eq%20%22admin%22", None)["totalResults"],
        1
    );
    assert_eq!(t.err("GET", "/Roles/owner", None).0, 404);
    assert_eq!(t.err("POST", "/Roles", Some(json!({"value": "x"}))).0, 405);
    let types = t.ok("GET", "/ResourceTypes/Role", None);
    assert_eq!(types["endpoint"], "/Roles");
    let schema = t.ok(
        "GET",
        "/Schemas/urn:scimlet:params:scim:schemas:core:2.0:Role",
        None,
    );
    assert_eq!(schema["attributes"][0]["name"], "value");
}

#[test]
fn large_groups_stream_every_member_with_the_projection() {
    let t = Tenant::new();
    let g = t.ok("POST", "/Groups", Some(json!({"displayName": "Big"})));
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let mut all = Vec::new();
    for chunk in 0..5 {
        let ids: Vec<String> = (0..500)
            .map(|i| t.create(&format!("u{chunk}-{i}")))
            .collect();
        let value: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
        t.ok(
            "PATCH",
            &path,
            Some(patch(
                json!([{"op": "add", "path": "members", "value": value}]),
            )),
        );
        all.extend(ids);
    }
    all.sort();
    let read = t.ok("GET", &path, None);
    assert_eq!(
        member_ids(&read),
        all,
        "members beyond one read batch are all there"
    );
    let slim = t.ok("GET", &format!("{path}?attributes=members.value"), None);
    assert_eq!(
        slim["members"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["value"]
    );
    assert_eq!(slim["members"].as_array().unwrap().len(), 2500);
    assert!(slim.get("displayName").is_none());
    let no_ref = t.ok(
        "GET",
        &format!("{path}?excludedAttributes=members.$ref"),
        None,
    );
    assert!(no_ref["members"][0].get("$ref").is_none() && no_ref["members"][0]["type"] == "User");
}

#[test]
fn patching_a_large_group_answers_204_unless_attributes_are_asked_for() {
    let t = Tenant::with_policy(r#"{"group-patch-body-max-members": 2}"#);
    let ids: Vec<String> = (0..4).map(|i| t.create(&format!("u{i}"))).collect();
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": [{"value": ids[0]}]})),
    );
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let add = |i: usize| {
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": ids[i]}]}]),
        ))
    };
    assert_eq!(
        t.call("PATCH", &path, add(1), &[]).status,
        200,
        "small groups answer with the resource"
    );
    let big = t.call("PATCH", &path, add(2), &[]);
    assert_eq!(big.status, 204);
    assert!(big.bytes().is_empty() && common::header(&big, "etag").is_some());
    let asked = t.call(
        "PATCH",
        &format!("{path}?attributes=displayName"),
        add(3),
        &[],
    );
    assert_eq!(
        asked.status, 200,
        "RFC 7644 §3.5.2: attributes given means 200 with the resource"
    );
    let slim = t.call(
        "PATCH",
        &format!("{path}?excludedAttributes=members"),
        Some(patch(
            json!([{"op": "replace", "path": "displayName", "value": "R&D"}]),
        )),
        &[],
    );
    assert_eq!(
        slim.status, 200,
        "a response without members costs nothing, whatever the group's size"
    );
    assert_eq!(member_ids(&t.ok("GET", &path, None)).len(), 4);
}

/// A store that deletes a user just before the next commit lands: the race between a member
/// removal and the user's deletion, made deterministic.
struct DeleteBeforeCommit {
    inner: scimlet_guest::store::MemStore,
    victim: std::cell::RefCell<Option<String>>,
}

impl scimlet_guest::store::Store for DeleteBeforeCommit {
    fn get(
        &self,
        key: &str,
    ) -> Result<Option<scimlet_guest::store::Entry>, scimlet_guest::store::StoreError> {
        self.inner.get(key)
    }
    fn get_many(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<scimlet_guest::store::Entry>>, scimlet_guest::store::StoreError> {
        self.inner.get_many(keys)
    }
    fn scan(
        &self,
        scan: &scimlet_guest::store::Scan,
    ) -> Result<Vec<scimlet_guest::store::Entry>, scimlet_guest::store::StoreError> {
        self.inner.scan(scan)
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, scimlet_guest::store::StoreError> {
        self.inner.count(start, end)
    }
    fn commit_events(
        &self,
        checks: Vec<scimlet_guest::store::Check>,
        writes: Vec<scimlet_guest::store::Write>,
        events: Vec<scimlet_guest::store::Event>,
    ) -> Result<u64, scimlet_guest::store::StoreError> {
        if let Some(user) = self.victim.borrow_mut().take() {
            let svc = scimlet_guest::Service::new(&self.inner, "", "").unwrap();
            svc.delete(scimlet_guest::Kind::User, &user, None).unwrap();
        }
        self.inner.commit_events(checks, writes, events)
    }
}

#[test]
fn a_member_removal_racing_the_users_deletion_leaves_nothing_behind() {
    let store = DeleteBeforeCommit {
        inner: scimlet_guest::store::MemStore::new(),
        victim: Default::default(),
    };
    let svc = scimlet_guest::Service::new(&store, "", "").unwrap();
    let proj = Default::default();
    let kind = scimlet_guest::Kind::User;
    let u = svc
        .create(kind, &json!({"userName": "leaver"}), &proj)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g = svc
        .create(
            scimlet_guest::Kind::Group,
            &json!({"displayName": "Eng", "members": [{"value": u}]}),
            &proj,
        )
        .unwrap();
    let gid = g["id"].as_str().unwrap().to_string();
    *store.victim.borrow_mut() = Some(u.clone());
    let remove = patch(json!([{"op": "remove", "path": format!("members[value eq \"{u}\"]")}]));
    svc.patch(scimlet_guest::Kind::Group, &gid, &remove, None, &proj)
        .unwrap();
    let problems = scimlet_guest::operator::verify(&store.inner, "");
    assert!(problems.is_empty(), "{problems:?}");
    let leftovers: Vec<String> = store
        .inner
        .keys()
        .into_iter()
        .filter(|k| k.contains(&u))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Counts the user documents read and the keys written, around a memory store.
#[derive(Default)]
struct Counting {
    inner: scimlet_guest::store::MemStore,
    user_reads: std::cell::Cell<usize>,
    writes: std::cell::Cell<usize>,
}

impl Counting {
    fn count_users(&self, keys: &[String]) {
        let users = keys.iter().filter(|k| k.starts_with("r/User/")).count();
        self.user_reads.set(self.user_reads.get() + users);
    }

    fn call(&self, method: &str, target: &str, body: Option<Value>) -> Value {
        self.user_reads.set(0);
        self.writes.set(0);
        let req = common::request(method, target, body, &[], "");
        let resp = scimlet_guest::http::handle(self, &req);
        assert!(resp.status < 300, "{method} {target}: {}", resp.status);
        resp.json_body()
    }
}

impl scimlet_guest::store::Store for Counting {
    fn get(
        &self,
        key: &str,
    ) -> Result<Option<scimlet_guest::store::Entry>, scimlet_guest::store::StoreError> {
        self.count_users(&[key.to_string()]);
        self.inner.get(key)
    }
    fn get_many(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<scimlet_guest::store::Entry>>, scimlet_guest::store::StoreError> {
        self.count_users(keys);
        self.inner.get_many(keys)
    }
    fn scan(
        &self,
        scan: &scimlet_guest::store::Scan,
    ) -> Result<Vec<scimlet_guest::store::Entry>, scimlet_guest::store::StoreError> {
        self.inner.scan(scan)
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, scimlet_guest::store::StoreError> {
        self.inner.count(start, end)
    }
    fn commit_events(
        &self,
        checks: Vec<scimlet_guest::store::Check>,
        writes: Vec<scimlet_guest::store::Write>,
        events: Vec<scimlet_guest::store::Event>,
    ) -> Result<u64, scimlet_guest::store::StoreError> {
        self.writes.set(self.writes.get() + writes.len());
        self.inner.commit_events(checks, writes, events)
    }
}

fn displays(group: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["value"].as_str().unwrap().to_string(),
                m["display"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn members_show_the_users_current_display_name_else_user_name() {
    let t = Tenant::new();
    let ada = t.ok(
        "POST",
        "/Users",
        Some(json!({"userName": "ada@x", "displayName": "Ada Lovelace"})),
    );
    let ada = ada["id"].as_str().unwrap().to_string();
    let bob = t.create("bob@x");
    let g = t.ok(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": [
        {"value": ada, "display": "ignored: read-only"}, {"value": bob}]})),
    );
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let mut want = vec![
        (ada.clone(), json!("Ada Lovelace")),
        (bob.clone(), json!("bob@x")),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(displays(&g), want, "the create response");
    assert_eq!(displays(&t.ok("GET", &path, None)), want);
    let listed = t.ok("GET", "/Groups?attributes=members", None);
    assert_eq!(displays(&listed["Resources"][0]), want);

    // A rename shows at the next read: nothing is copied onto the membership edges.
    t.ok(
        "PATCH",
        &format!("/Users/{ada}"),
        Some(patch(json!([
        {"op": "replace", "path": "displayName", "value": "Ada King"}]))),
    );
    t.ok(
        "PATCH",
        &format!("/Users/{bob}"),
        Some(patch(json!([
        {"op": "replace", "path": "userName", "value": "robert@x"}]))),
    );
    let mut want = vec![
        (ada.clone(), json!("Ada King")),
        (bob.clone(), json!("robert@x")),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(displays(&t.ok("GET", &path, None)), want);
    t.ok(
        "PATCH",
        &format!("/Users/{ada}"),
        Some(patch(json!([
        {"op": "remove", "path": "displayName"}]))),
    );
    let read = t.ok("GET", &path, None);
    assert!(
        displays(&read).contains(&(ada.clone(), json!("ada@x"))),
        "{read}"
    );

    let slim = t.ok(
        "GET",
        &format!("{path}?attributes=members.value,members.display"),
        None,
    );
    assert_eq!(slim["members"][0].as_object().unwrap().len(), 2);
    let no_display = t.ok(
        "GET",
        &format!("{path}?excludedAttributes=members.display"),
        None,
    );
    assert!(no_display["members"][0].get("display").is_none());
    let found = t.ok(
        "GET",
        "/Groups?filter=members.display%20eq%20%22ROBERT@x%22",
        None,
    );
    assert_eq!(found["totalResults"], 1);
    let found = t.ok(
        "GET",
        "/Groups?filter=members%5Bdisplay%20sw%20%22nobody%22%5D",
        None,
    );
    assert_eq!(found["totalResults"], 0);
}

#[test]
fn member_display_costs_reads_only_when_returned_and_adds_stay_o1() {
    let s = Counting::default();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let u = s.call("POST", "/Users", Some(json!({"userName": format!("u{i}")})));
            u["id"].as_str().unwrap().to_string()
        })
        .collect();
    let members: Vec<Value> = ids[..4].iter().map(|i| json!({"value": i})).collect();
    let g = s.call(
        "POST",
        "/Groups",
        Some(json!({"displayName": "Eng", "members": members})),
    );
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());

    s.call("GET", &path, None);
    assert_eq!(s.user_reads.get(), 4, "one read per member shown");
    for cheap in [
        format!("{path}?excludedAttributes=members"),
        format!("{path}?attributes=displayName"),
        format!("{path}?attributes=members.value"),
        format!("{path}?excludedAttributes=members.display"),
        "/Groups".to_string(),
        "/Groups?excludedAttributes=members".to_string(),
        "/Groups?attributes=members.value".to_string(),
    ] {
        s.call("GET", &cheap, None);
        assert_eq!(s.user_reads.get(), 0, "{cheap} reads no user");
    }
    let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": ids[4]}]}]));
    s.call(
        "PATCH",
        &format!("{path}?excludedAttributes=members"),
        Some(add),
    );
    assert_eq!(
        (s.user_reads.get(), s.writes.get()),
        (1, 4),
        "an add checks the one new member and writes its edge, reverse edge and two stamps"
    );
}

#[test]
fn a_member_add_racing_the_users_deletion_is_refused_and_leaves_nothing_behind() {
    let store = DeleteBeforeCommit {
        inner: scimlet_guest::store::MemStore::new(),
        victim: Default::default(),
    };
    let svc = scimlet_guest::Service::new(&store, "", "").unwrap();
    let proj = Default::default();
    let kind = scimlet_guest::Kind::User;
    let u = svc
        .create(kind, &json!({"userName": "leaver"}), &proj)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g = svc
        .create(
            scimlet_guest::Kind::Group,
            &json!({"displayName": "Eng"}),
            &proj,
        )
        .unwrap();
    let gid = g["id"].as_str().unwrap().to_string();
    // The add reads the user, then the user is deleted just before the add's commit lands.
    *store.victim.borrow_mut() = Some(u.clone());
    let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
    let err = svc
        .patch(scimlet_guest::Kind::Group, &gid, &add, None, &proj)
        .unwrap_err();
    assert_eq!(err.status, 400, "{err:?}");
    assert_eq!(
        err.scim_type.map(|t| t.as_str()),
        Some("invalidValue"),
        "{err:?}"
    );
    assert!(
        store.victim.borrow().is_none(),
        "the deletion did run between the add's read and its commit"
    );
    let problems = scimlet_guest::operator::verify(&store.inner, "");
    assert!(problems.is_empty(), "{problems:?}");
    let leftovers: Vec<String> = store
        .inner
        .keys()
        .into_iter()
        .filter(|k| k.contains(&u))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let group = svc.get(scimlet_guest::Kind::Group, &gid, &proj).unwrap();
    assert!(member_ids(&group).is_empty(), "{group}");
}
