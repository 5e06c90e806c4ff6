//! User-specific rules: roles kept in step between the tenant's role extension and the core
//! `roles` attribute, the default team, the derived `groups` attribute, and edge clean-up.

use serde_json::{json, Map, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::resource_type::Kind;
use crate::ops::service::Service;
use crate::persist::keys;
use crate::persist::members::{self, Membership};
use crate::persist::repo::{check_if_match, Plan, Repo};
use crate::persist::store::{Check, Event, Write};
use crate::rules::resource;

impl Service<'_> {
    fn users_repo(&self) -> Repo<'_> {
        Repo::new(
            self.store(),
            Kind::User,
            self.schema(Kind::User),
            &self.base_url,
        )
    }

    /// POST /Users: the user joins the tenant's default team (created on first use).
    pub(crate) fn create_user(&self, body: &Value) -> ScimResult<Value> {
        let mut content = resource::normalize_input(body, self.schema(Kind::User), self.rules())?;
        self.sync_roles(None, &mut content)?;
        let team = self.policy.default_team.clone();
        self.users_repo()
            .create_beside(content, None, |uid| match &team {
                Some(name) => self.join_default_team(name, uid),
                None => Ok((Vec::new(), Vec::new(), None)),
            })
    }

    /// The checks and writes that put `uid` in the team `name`, and the team's document and
    /// creation event when the team is created by this commit.
    #[allow(clippy::type_complexity)]
    fn join_default_team(
        &self,
        name: &str,
        uid: &str,
    ) -> ScimResult<(Vec<Check>, Vec<Write>, Option<(Value, Event)>)> {
        let groups = Repo::new(
            self.store(),
            Kind::Group,
            self.schema(Kind::Group),
            &self.base_url,
        );
        let index = Kind::Group.index("displayName").expect("indexed");
        let (mut checks, mut writes, mut created) = (Vec::new(), Vec::new(), None);
        let gid = match groups.lookup(index, name)?.into_iter().next() {
            Some(gid) => {
                let team = self.store().get(&Kind::Group.resource_key(&gid))?;
                checks.push(Check::unchanged(
                    Kind::Group.resource_key(&gid),
                    team.as_ref(),
                ));
                gid
            }
            None => {
                let content = resource::normalize_input(
                    &json!({"displayName": name}),
                    self.schema(Kind::Group),
                    self.rules(),
                )?;
                let (gid, doc) = groups.new_document(content, Some(json!({"linked": false})));
                let (c, w) = groups.creation(&gid, &doc)?;
                checks.extend(c);
                writes.extend(w);
                created = groups.event(None, Some(&doc)).map(|e| (doc, e));
                gid
            }
        };
        writes.extend(members::link(&gid, uid));
        writes.push(members::stamp(keys::group_stamp(&gid)));
        writes.push(members::stamp(keys::user_stamp(uid)));
        Ok((checks, writes, created))
    }

    /// Keeps the role extension and core `roles` in step: whichever the request changed wins,
    /// values must be roles of the tenant, and a new user gets the default role.
    pub(crate) fn sync_roles(
        &self,
        old: Option<&Value>,
        content: &mut Map<String, Value>,
    ) -> ScimResult<()> {
        self.sync_roles_with(old, content, false)
    }

    /// [`Self::sync_roles`] for a full replacement (PUT, import): one that mentions no role
    /// keeps the current one, so IdPs that do not map the role never reset it on each update.
    pub(crate) fn sync_roles_keeping(
        &self,
        old: Option<&Value>,
        content: &mut Map<String, Value>,
    ) -> ScimResult<()> {
        self.sync_roles_with(old, content, true)
    }

    fn sync_roles_with(
        &self,
        old: Option<&Value>,
        content: &mut Map<String, Value>,
        keep_unmentioned: bool,
    ) -> ScimResult<()> {
        let Some(ext) = self.policy.role_extension.clone() else {
            return Ok(());
        };
        let attr = self.policy.role_attribute.clone();
        if let (true, Some(old_doc)) = (keep_unmentioned, old) {
            let mentions_ext = content.get(&ext).and_then(|e| e.get(&attr)).is_some();
            if !mentions_ext && !content.contains_key("roles") {
                if let Some(role) = old_doc.get(&ext).and_then(|e| e.get(&attr)) {
                    let ext_obj = content
                        .entry(ext.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(m) = ext_obj {
                        m.insert(attr.clone(), role.clone());
                    }
                }
                if let Some(roles) = old_doc.get("roles") {
                    content.insert("roles".into(), roles.clone());
                }
                return Ok(());
            }
        }
        let ext_role = |doc: &Map<String, Value>| {
            doc.get(&ext)
                .and_then(|e| e.get(&attr))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let core_roles = |doc: Option<&Value>| doc.cloned().unwrap_or(Value::Null);
        let old_map = old.and_then(Value::as_object).cloned().unwrap_or_default();
        let core_changed = core_roles(content.get("roles")) != core_roles(old_map.get("roles"));
        let new_core = roles_values(content.get("roles"));
        let chosen = if core_changed && !new_core.is_empty() {
            for v in &new_core {
                if !self.policy.roles.contains(v) {
                    return Err(ScimError::invalid_value(format!(
                        "'{v}' is not a role of this organization; expected one of: {}",
                        self.policy.roles.join(", ")
                    )));
                }
            }
            Some(primary_role(content.get("roles")).unwrap_or_else(|| new_core[0].clone()))
        } else {
            ext_role(content).or_else(|| {
                if old.is_none() {
                    self.policy.default_role.clone()
                } else {
                    None
                }
            })
        };
        let Some(role) = chosen else {
            content.remove("roles");
            return Ok(());
        };
        let ext_obj = content
            .entry(ext.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = ext_obj {
            m.insert(attr.clone(), Value::String(role.clone()));
        }
        content.insert("roles".into(), json!([{"value": role, "primary": true}]));
        Ok(())
    }

    /// The user as responses show it, with `groups` derived from memberships when wanted.
    pub(crate) fn present_user(&self, doc: &Value, with_groups: bool) -> ScimResult<Value> {
        let mut out = doc.clone();
        if !with_groups {
            return Ok(out);
        }
        let uid = doc.get("id").and_then(Value::as_str).unwrap_or_default();
        let gids = Membership::new(self.store()).groups_of(uid)?;
        if gids.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = gids.iter().map(|g| Kind::Group.resource_key(g)).collect();
        let docs = self.store().get_many(&keys)?;
        let groups: Vec<Value> = gids
            .iter()
            .zip(docs)
            .filter_map(|(gid, entry)| {
                let d: Value = serde_json::from_slice(&entry?.value).ok()?;
                Some(json!({
                    "value": gid,
                    "$ref": format!("{}/Groups/{gid}", self.base_url),
                    "display": d.get("displayName").cloned().unwrap_or(Value::Null),
                    "type": "direct",
                }))
            })
            .collect();
        if let Some(m) = out.as_object_mut() {
            m.insert("groups".into(), Value::Array(groups));
        }
        Ok(out)
    }

    /// DELETE /Users/{id}: the user and every membership edge go in one commit.
    pub(crate) fn delete_user(&self, id: &str, if_match: Option<&str>) -> ScimResult<()> {
        let m = Membership::new(self.store());
        self.users_repo().mutate(id, |current| {
            check_if_match(if_match, current.etag())?;
            let mut plan = Plan::delete();
            let stamp_key = keys::user_stamp(id);
            let stamp = self.store().get(&stamp_key)?;
            plan.checks
                .push(Check::unchanged(stamp_key.clone(), stamp.as_ref()));
            for gid in m.groups_of(id)? {
                plan.writes.extend(members::unlink(&gid, id));
                plan.writes.push(members::stamp(keys::group_stamp(&gid)));
            }
            if stamp.is_some() {
                plan.writes.push(Write::Delete(stamp_key));
            }
            Ok(plan)
        })?;
        Ok(())
    }
}

fn roles_values(roles: Option<&Value>) -> Vec<String> {
    roles
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("value").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn primary_role(roles: Option<&Value>) -> Option<String> {
    let items = roles?.as_array()?;
    let primary = items
        .iter()
        .find(|r| r.get("primary") == Some(&Value::Bool(true)))?;
    primary
        .get("value")
        .and_then(Value::as_str)
        .map(str::to_string)
}
