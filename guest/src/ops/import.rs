//! Import and export of an existing directory (users with roles and team memberships, and
//! teams): products have people before they turn SCIM on, and IdPs then match them by userName.
//!
//! Import is idempotent — a row whose user already holds exactly that content and those
//! memberships changes nothing — and batched: one atomic commit per batch of rows, so loading
//! tens of thousands of users costs a few commits rather than one per user.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::identifiers;
use crate::model::resource_type::Kind;
use crate::ops::service::Service;
use crate::persist::events;
use crate::persist::keys;
use crate::persist::members::{self, Membership};
use crate::persist::prefetch::Prefetched;
use crate::persist::repo::{Repo, Stored};
use crate::persist::store::{Check, Event, StoreError, Write};
use crate::rules::resource;

/// One input row.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A team, by name.
    Team {
        /// The team's name (the group's `displayName`).
        name: String,
    },
    /// A user, with its role and team memberships.
    User(UserRow),
}

/// A user row: the SCIM attributes an import carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRow {
    /// `userName`, the key import matches existing users by.
    pub user_name: String,
    /// `name.givenName`.
    pub given_name: Option<String>,
    /// `name.familyName`.
    pub family_name: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// The primary work email (`emails[primary].value`).
    pub email: Option<String>,
    /// `externalId`, the identity provider's id.
    pub external_id: Option<String>,
    /// `active`; absent keeps the stored value (new users are active).
    pub active: Option<bool>,
    /// The user's role, one of the tenant's policy roles.
    pub role: Option<String>,
    /// Names of the teams the user belongs to.
    pub teams: Vec<String>,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The row created a resource.
    Created,
    /// The row changed an existing resource or its memberships.
    Updated,
    /// The resource already held exactly this row.
    Unchanged,
    /// The row was refused; the text says why.
    Failed(String),
}

impl Row {
    /// Reads a JSON-lines record: `{"type":"team","name":…}` or
    /// `{"type":"user","userName":…,"givenName":…,"familyName":…,"displayName":…,"email":…,
    /// "externalId":…,"active":…,"role":…,"teams":[…]}`.
    pub fn from_json(v: &Value) -> Result<Row, String> {
        let obj = v.as_object().ok_or("a record must be a JSON object")?;
        let text = |k: &str| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("'{k}' must be a string")),
            }
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("team") => Ok(Row::Team {
                name: text("name")?.ok_or("a team needs a 'name'")?,
            }),
            Some("user") => {
                let teams = match obj.get("teams") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::to_string)
                                .ok_or("'teams' must be strings")
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err("'teams' must be an array of team names".into()),
                };
                let active = match obj.get("active") {
                    None | Some(Value::Null) => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(_) => return Err("'active' must be true or false".into()),
                };
                Ok(Row::User(UserRow {
                    user_name: text("userName")?.ok_or("a user needs a 'userName'")?,
                    given_name: text("givenName")?,
                    family_name: text("familyName")?,
                    display_name: text("displayName")?,
                    email: text("email")?,
                    external_id: text("externalId")?,
                    active,
                    role: text("role")?,
                    teams,
                }))
            }
            Some(other) => Err(format!(
                "unknown record type '{other}' (expected 'user' or 'team')"
            )),
            None => Err("a record needs a 'type' of 'user' or 'team'".into()),
        }
    }

    /// The JSON-lines record (the export format).
    pub fn to_json(&self) -> Value {
        match self {
            Row::Team { name } => json!({"type": "team", "name": name}),
            Row::User(u) => {
                let mut m = Map::new();
                m.insert("type".into(), "user".into());
                m.insert("userName".into(), u.user_name.clone().into());
                let mut put = |k: &str, v: &Option<String>| {
                    if let Some(v) = v {
                        m.insert(k.into(), v.clone().into());
                    }
                };
                put("givenName", &u.given_name);
                put("familyName", &u.family_name);
                put("displayName", &u.display_name);
                put("email", &u.email);
                put("externalId", &u.external_id);
                put("role", &u.role);
                if let Some(a) = u.active {
                    m.insert("active".into(), a.into());
                }
                m.insert("teams".into(), json!(u.teams));
                Value::Object(m)
            }
        }
    }
}

impl UserRow {
    /// The SCIM User document the row stands for.
    fn to_scim(&self, svc: &Service<'_>) -> Value {
        let mut doc = json!({"userName": self.user_name});
        let mut name = Map::new();
        if let Some(g) = &self.given_name {
            name.insert("givenName".into(), g.clone().into());
        }
        if let Some(f) = &self.family_name {
            name.insert("familyName".into(), f.clone().into());
        }
        if !name.is_empty() {
            doc["name"] = Value::Object(name);
        }
        if let Some(d) = &self.display_name {
            doc["displayName"] = d.clone().into();
        }
        if let Some(e) = &self.email {
            doc["emails"] = json!([{"value": e, "type": "work", "primary": true}]);
        }
        if let Some(x) = &self.external_id {
            doc["externalId"] = x.clone().into();
        }
        if let Some(a) = self.active {
            doc["active"] = a.into();
        }
        if let Some(r) = &self.role {
            match &svc.policy.role_extension {
                Some(ext) => doc[ext.as_str()] = json!({svc.policy.role_attribute.as_str(): r}),
                None => doc["roles"] = json!([{"value": r, "primary": true}]),
            }
        }
        doc
    }
}

const ATTEMPTS: usize = 16;

impl Service<'_> {
    /// Imports one batch of rows in one atomic commit; failed rows are reported, not fatal.
    pub fn import_batch(&self, rows: &[Row]) -> ScimResult<Vec<Outcome>> {
        for _ in 0..ATTEMPTS {
            let mut plan = self.plan_import(rows)?;
            if plan.writes.is_empty() {
                return Ok(plan.outcomes);
            }
            let outcomes = std::mem::take(&mut plan.outcomes);
            let members = events::memberships(self.store(), &plan.writes, &plan.teams())?;
            let mut events = std::mem::take(&mut plan.events);
            events.extend(members);
            match self.store().commit_events(plan.checks, plan.writes, events) {
                Ok(_) => return Ok(outcomes),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ScimError::unavailable(
            "the import batch kept conflicting with concurrent changes",
        ))
    }

    /// Imports rows given as JSON texts (the operator interface's shape): a text that is not
    /// a row fails in its own slot, the others go through [`Service::import_batch`] together.
    pub fn import_texts(&self, texts: &[String]) -> ScimResult<Vec<Outcome>> {
        let parsed: Vec<Result<Row, String>> = texts
            .iter()
            .map(|t| {
                serde_json::from_str::<Value>(t)
                    .map_err(|e| format!("not JSON: {e}"))
                    .and_then(|v| Row::from_json(&v))
            })
            .collect();
        let rows: Vec<Row> = parsed
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .cloned()
            .collect();
        let mut imported = self.import_batch(&rows)?.into_iter();
        Ok(parsed
            .into_iter()
            .map(|r| match r {
                Ok(_) => imported.next().unwrap_or(Outcome::Unchanged),
                Err(why) => Outcome::Failed(why),
            })
            .collect())
    }

    fn plan_import(&self, rows: &[Row]) -> ScimResult<ImportPlan> {
        // Every row's userName index entry, then the users they name: two store calls.
        let known = Prefetched::new(self.store());
        let index = Kind::User.index("userName").expect("indexed");
        let index_keys = rows
            .iter()
            .filter_map(|r| match r {
                // A refused userName fails its row later, without reaching the store.
                Row::User(u)
                    if identifiers::check_value(Kind::User, "userName", &u.user_name).is_ok() =>
                {
                    Some(index.unique_key(Kind::User, &u.user_name))
                }
                _ => None,
            })
            .collect();
        let user_keys = known
            .fetch(index_keys)?
            .into_iter()
            .map(|e| Kind::User.resource_key(&String::from_utf8_lossy(&e.value)))
            .collect();
        known.fetch(user_keys)?;
        let users = Repo::new(&known, Kind::User, self.schema(Kind::User), &self.base_url);
        let mut plan = ImportPlan::default();
        let mut teams = TeamIds::default();
        for row in rows {
            if let Row::Team { name } = row {
                let outcome = match teams.resolve(self, name, &mut plan) {
                    Ok((_, true)) => Outcome::Created,
                    Ok((_, false)) => Outcome::Unchanged,
                    Err(e) => Outcome::Failed(e.detail),
                };
                plan.outcomes.push(outcome);
            }
        }
        // Users seen earlier in this batch, by lower-cased userName: (id, document, is new).
        let mut seen: BTreeMap<String, (String, Value, bool)> = BTreeMap::new();
        let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
        let mut outcomes = Vec::new();
        for row in rows {
            let Row::User(u) = row else { continue };
            let outcome = self
                .plan_user(&users, u, &mut seen, &mut teams, &mut edges, &mut plan)
                .unwrap_or_else(|e| Outcome::Failed(e.detail));
            outcomes.push(outcome);
        }
        // Row outcomes in input order: teams were pushed first, so interleave by position.
        let mut team_outcomes = std::mem::take(&mut plan.outcomes).into_iter();
        let mut user_outcomes = outcomes.into_iter();
        plan.outcomes = rows
            .iter()
            .map(|r| match r {
                Row::Team { .. } => team_outcomes.next(),
                Row::User(_) => user_outcomes.next(),
            })
            .map(|o| o.unwrap_or(Outcome::Unchanged))
            .collect();
        let group_stamps: BTreeSet<String> = edges.iter().map(|(g, _)| g.clone()).collect();
        for g in group_stamps {
            plan.writes.push(members::stamp(keys::group_stamp(&g)));
        }
        Ok(plan)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_user(
        &self,
        users: &Repo<'_>,
        u: &UserRow,
        seen: &mut BTreeMap<String, (String, Value, bool)>,
        teams: &mut TeamIds,
        edges: &mut BTreeSet<(String, String)>,
        plan: &mut ImportPlan,
    ) -> ScimResult<Outcome> {
        // Team names first: a refused one must fail the row before its user is planned.
        for team in &u.teams {
            identifiers::check_value(Kind::Group, "displayName", team)
                .map_err(|e| ScimError::invalid_value(format!("teams: {}", e.detail)))?;
        }
        let mut content =
            resource::normalize_input(&u.to_scim(self), self.schema(Kind::User), self.rules())?;
        let key = u.user_name.to_lowercase();
        if seen.contains_key(&key) {
            return Err(ScimError::uniqueness(format!(
                "userName '{}' appears twice in one batch",
                u.user_name
            )));
        }
        let index = Kind::User.index("userName").expect("indexed");
        let existing: Option<Stored> = match users.lookup(index, &u.user_name)?.first() {
            Some(id) => users.get(id)?,
            None => None,
        };
        let mut outcome = Outcome::Unchanged;
        let id = match &existing {
            Some(current) => {
                self.sync_roles_keeping(Some(&current.doc), &mut content)?;
                if let Some((doc, checks, writes)) = users.replacement(current, content)? {
                    plan.checks.extend(checks);
                    plan.writes.extend(writes);
                    plan.events
                        .extend(users.event(Some(&current.doc), Some(&doc)));
                    outcome = Outcome::Updated;
                }
                current.id().to_string()
            }
            None => {
                self.sync_roles(None, &mut content)?;
                let (id, doc) = users.new_document(content, None);
                let (checks, writes) = users.creation(&id, &doc)?;
                plan.checks.extend(checks);
                plan.writes.extend(writes);
                plan.events.extend(users.event(None, Some(&doc)));
                outcome = Outcome::Created;
                id
            }
        };
        seen.insert(key, (id.clone(), Value::Null, existing.is_none()));
        let m = Membership::new(self.store());
        let current_groups: BTreeSet<String> = if existing.is_some() {
            m.groups_of(&id)?.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let mut joined = false;
        for team in &u.teams {
            let (gid, _) = teams.resolve(self, team, plan)?;
            if !current_groups.contains(&gid) && edges.insert((gid.clone(), id.clone())) {
                if existing.is_some() {
                    // Read without a check: an edge added meanwhile must fail this commit,
                    // not be reported added twice (a new user's edges cannot exist yet).
                    plan.checks.push(Check {
                        key: keys::edge(&gid, &id),
                        version: None,
                    });
                }
                plan.writes.extend(members::link(&gid, &id));
                joined = true;
            }
        }
        if joined {
            plan.writes.push(members::stamp(keys::user_stamp(&id)));
            if outcome == Outcome::Unchanged {
                outcome = Outcome::Updated;
            }
        }
        Ok(outcome)
    }

    /// Every team and user as import rows (teams first, so the output imports back as is).
    pub fn export(&self, mut emit: impl FnMut(Row) -> ScimResult<()>) -> ScimResult<()> {
        let groups = Repo::new(
            self.store(),
            Kind::Group,
            self.schema(Kind::Group),
            &self.base_url,
        );
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        groups.for_each(|g| {
            let name = g
                .doc
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            names.insert(g.id().to_string(), name.clone());
            emit(Row::Team { name })
        })?;
        let users = Repo::new(
            self.store(),
            Kind::User,
            self.schema(Kind::User),
            &self.base_url,
        );
        let m = Membership::new(self.store());
        users.for_each(|u| {
            let teams = m
                .groups_of(u.id())?
                .iter()
                .filter_map(|g| names.get(g).cloned())
                .collect();
            emit(Row::User(user_row(self, &u.doc, teams)))
        })
    }
}

pub(crate) fn user_row(svc: &Service<'_>, doc: &Value, teams: Vec<String>) -> UserRow {
    let s = |p: &str| doc.pointer(p).and_then(Value::as_str).map(str::to_string);
    let emails = doc.get("emails").and_then(Value::as_array);
    let email = emails
        .and_then(|e| {
            e.iter()
                .find(|x| x.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| e.first())
        })
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string);
    UserRow {
        user_name: s("/userName").unwrap_or_default(),
        given_name: s("/name/givenName"),
        family_name: s("/name/familyName"),
        display_name: s("/displayName"),
        email,
        external_id: s("/externalId"),
        active: doc.get("active").and_then(Value::as_bool),
        role: crate::ops::roles::role_of(&svc.policy, doc),
        teams,
    }
}

#[derive(Default)]
struct ImportPlan {
    checks: Vec<Check>,
    writes: Vec<Write>,
    /// The users' and teams' change events; membership events are derived from `writes`.
    events: Vec<Event>,
    /// The teams this batch creates, for the membership events that name them.
    new_teams: Vec<Value>,
    outcomes: Vec<Outcome>,
}

impl ImportPlan {
    fn teams(&self) -> Vec<&Value> {
        self.new_teams.iter().collect()
    }
}

/// Team ids by lower-cased name, creating missing teams within the batch.
#[derive(Default)]
struct TeamIds {
    known: BTreeMap<String, String>,
}

impl TeamIds {
    /// The team's id and whether this batch creates it.
    fn resolve(
        &mut self,
        svc: &Service<'_>,
        name: &str,
        plan: &mut ImportPlan,
    ) -> ScimResult<(String, bool)> {
        let key = name.to_lowercase();
        if let Some(id) = self.known.get(&key) {
            return Ok((id.clone(), false));
        }
        let groups = Repo::new(
            svc.store(),
            Kind::Group,
            svc.schema(Kind::Group),
            &svc.base_url,
        );
        let index = Kind::Group.index("displayName").expect("indexed");
        let (id, created) = match groups.lookup(index, name)?.into_iter().next() {
            Some(id) => (id, false),
            None => {
                let content = resource::normalize_input(
                    &json!({"displayName": name}),
                    svc.schema(Kind::Group),
                    svc.rules(),
                )?;
                let (id, doc) = groups.new_document(content, Some(json!({"linked": false})));
                let (checks, writes) = groups.creation(&id, &doc)?;
                plan.checks.extend(checks);
                plan.writes.extend(writes);
                plan.events.extend(groups.event(None, Some(&doc)));
                plan.new_teams.push(doc);
                (id, true)
            }
        };
        self.known.insert(key, id.clone());
        Ok((id, created))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::store::MemStore;

    fn rows(lines: &[Value]) -> Vec<Row> {
        lines.iter().map(|l| Row::from_json(l).unwrap()).collect()
    }

    #[test]
    fn import_is_idempotent_and_exports_what_it_imported() {
        let store = MemStore::new();
        let svc = Service::new(&store, "", r#"{"profile":"writer"}"#).unwrap();
        let input = rows(&[
            json!({"type": "team", "name": "Sales"}),
            json!({"type": "user", "userName": "ada@x.com", "givenName": "Ada", "email": "ada@x.com", "role": "admin", "teams": ["Sales", "Ops"]}),
            json!({"type": "user", "userName": "bob@x.com", "active": false}),
        ]);
        let first = svc.import_batch(&input).unwrap();
        assert_eq!(
            first,
            [Outcome::Created, Outcome::Created, Outcome::Created]
        );
        let keys = store.keys();
        let again = svc.import_batch(&input).unwrap();
        assert_eq!(
            again,
            [Outcome::Unchanged, Outcome::Unchanged, Outcome::Unchanged]
        );
        assert_eq!(store.keys(), keys, "re-running changes nothing");
        let mut out = Vec::new();
        svc.export(|r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        let ada = out.iter().find_map(|r| match r {
            Row::User(u) if u.user_name == "ada@x.com" => Some(u.clone()),
            _ => None,
        });
        let ada = ada.unwrap();
        assert_eq!(
            (ada.role.as_deref(), ada.email.as_deref()),
            (Some("admin"), Some("ada@x.com"))
        );
        let mut teams = ada.teams.clone();
        teams.sort();
        assert_eq!(teams, ["Ops", "Sales"]);
        assert_eq!(
            svc.import_batch(&out)
                .unwrap()
                .iter()
                .filter(|o| **o != Outcome::Unchanged)
                .count(),
            0
        );
    }

    #[test]
    fn import_texts_keeps_one_outcome_per_text_in_order() {
        let store = MemStore::new();
        let svc = Service::new(&store, "", r#"{"profile":"writer"}"#).unwrap();
        let texts: Vec<String> = [
            r#"{"type":"team","name":"Sales"}"#,
            "{not json",
            r#"{"type":"user","userName":"ada@x.com","teams":["Sales"]}"#,
            r#"{"type":"robot"}"#,
            r#"{"type":"user","userName":"bob@x.com","role":"owner"}"#,
            r#"{"type":"user","userName":"cy@x.com"}"#,
        ]
        .map(String::from)
        .to_vec();
        let out = svc.import_texts(&texts).unwrap();
        assert_eq!(out.len(), texts.len());
        assert_eq!(out[0], Outcome::Created);
        assert!(matches!(&out[1], Outcome::Failed(m) if m.starts_with("not JSON")));
        assert_eq!(out[2], Outcome::Created);
        assert!(matches!(&out[3], Outcome::Failed(m) if m.contains("robot")));
        assert!(matches!(&out[4], Outcome::Failed(m) if m.contains("owner")));
        assert_eq!(out[5], Outcome::Created);
        let again = svc.import_texts(&texts).unwrap();
        assert_eq!(
            (&again[0], &again[2], &again[5]),
            (
                &Outcome::Unchanged,
                &Outcome::Unchanged,
                &Outcome::Unchanged
            )
        );
        assert!(svc.import_texts(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_rows_fail_alone() {
        let store = MemStore::new();
        let svc = Service::new(&store, "", r#"{"profile":"writer"}"#).unwrap();
        let input = rows(&[
            json!({"type": "user", "userName": "ok@x.com"}),
            json!({"type": "user", "userName": "bad@x.com", "role": "owner"}),
            json!({"type": "user", "userName": "OK@x.com"}),
        ]);
        let out = svc.import_batch(&input).unwrap();
        assert_eq!(out[0], Outcome::Created);
        assert!(matches!(&out[1], Outcome::Failed(m) if m.contains("owner")));
        assert!(matches!(&out[2], Outcome::Failed(m) if m.contains("twice")));
        assert!(Row::from_json(&json!({"type": "user"})).is_err());
        assert!(Row::from_json(&json!({"type": "robot"})).is_err());
    }
}
