//! Groups as the product's teams: membership edges, link-only creation, unlink on delete, and
//! the shrink guard. Group documents are stored without members; members live in
//! [`crate::persist::members`] and are read only when a response asks for them.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::model::diag::{self, Level};
use crate::model::error::{ScimError, ScimResult};
use crate::model::identifiers;
use crate::model::policy::{GroupDelete, TeamCreation};
use crate::model::resource_type::Kind;
use crate::model::schema::{urn, ResourceSchema};
use crate::ops::service::Service;
use crate::persist::events::is_linked;
use crate::persist::keys;
use crate::persist::members::{self, MemberFields, Membership};
use crate::persist::repo::{check_if_match, etag_of, DocChange, Plan, Repo, Stored, INTERNAL};
use crate::persist::store::{Check, Entry, Write};
use crate::rules::filter::{self, CompareOp, Filter};
use crate::rules::group_input::{member_ids, split_members, GroupInput, Rules as GroupRules};
use crate::rules::patch::{self, OpKind, PatchOperation, PatchPath};
use crate::rules::resource::{self, Projection};

fn linked(flag: bool) -> Value {
    json!({"linked": flag})
}

/// Membership as the operations of one request have left it so far.
struct Delta<'a> {
    group: &'a str,
    m: Membership<'a>,
    /// Set after a full replace or a generic operation: the complete new membership.
    full: Option<BTreeSet<String>>,
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
    /// Whether the client asked for the whole membership to be what it sent (PUT, replace).
    explicit_replace: bool,
    /// The stored membership, read at most once.
    original: Option<BTreeSet<String>>,
}

impl<'a> Delta<'a> {
    fn new(group: &'a str, m: Membership<'a>) -> Self {
        Delta {
            group,
            m,
            full: None,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
            explicit_replace: false,
            original: None,
        }
    }

    fn original(&mut self) -> ScimResult<&BTreeSet<String>> {
        if self.original.is_none() {
            self.original = Some(self.m.members(self.group)?.into_iter().collect());
        }
        Ok(self.original.as_ref().expect("just loaded"))
    }

    /// Whether each id is a member now, reading only those edges.
    fn contains(&mut self, ids: &[String]) -> ScimResult<Vec<bool>> {
        if let Some(full) = &self.full {
            return Ok(ids.iter().map(|i| full.contains(i)).collect());
        }
        let stored = match &self.original {
            Some(o) => ids.iter().map(|i| o.contains(i)).collect(),
            None => self.m.contains(self.group, ids)?,
        };
        Ok(ids
            .iter()
            .zip(stored)
            .map(|(id, s)| self.added.contains(id) || (s && !self.removed.contains(id)))
            .collect())
    }

    fn add(&mut self, ids: Vec<String>) -> ScimResult<()> {
        if let Some(full) = &mut self.full {
            full.extend(ids);
            return Ok(());
        }
        let present = self.contains(&ids)?;
        for (id, p) in ids.into_iter().zip(present) {
            if !p && !self.removed.remove(&id) {
                self.added.insert(id);
            }
        }
        Ok(())
    }

    fn remove(&mut self, ids: Vec<String>) -> ScimResult<()> {
        if let Some(full) = &mut self.full {
            for id in &ids {
                full.remove(id);
            }
            return Ok(());
        }
        let present = self.contains(&ids)?;
        for (id, p) in ids.into_iter().zip(present) {
            if p && !self.added.remove(&id) {
                self.removed.insert(id);
            }
        }
        Ok(())
    }

    /// The complete membership now.
    fn current(&mut self) -> ScimResult<BTreeSet<String>> {
        if let Some(full) = &self.full {
            return Ok(full.clone());
        }
        let mut set = self.original()?.clone();
        set.retain(|id| !self.removed.contains(id));
        set.extend(self.added.iter().cloned());
        Ok(set)
    }

    fn set_full(&mut self, set: BTreeSet<String>) {
        self.full = Some(set);
        self.added.clear();
        self.removed.clear();
    }

    /// Applies one operation on `members`.
    fn apply(
        &mut self,
        op: &PatchOperation,
        filter: Option<&Filter>,
        sub: Option<&str>,
        rs: &ResourceSchema,
    ) -> ScimResult<()> {
        match (op.op, filter, sub, &op.value) {
            (OpKind::Add, None, None, Some(v)) => self.add(member_ids(v)?),
            // Entra's default mode: remove with a list of members, never "remove everyone".
            (OpKind::Remove, None, None, Some(v)) => self.remove(member_ids(v)?),
            (OpKind::Remove, None, None, None) => {
                self.set_full(BTreeSet::new());
                Ok(())
            }
            (OpKind::Replace, None, None, Some(v)) => {
                let ids = member_ids(v)?;
                self.set_full(ids.into_iter().collect());
                self.explicit_replace = true;
                Ok(())
            }
            (OpKind::Remove, Some(f), None, _) if value_eq_ids(f).is_some() => {
                self.remove(value_eq_ids(f).unwrap_or_default())
            }
            _ => self.generic(op, rs),
        }
    }

    /// Any other shape: run the PATCH engine on the materialised member list.
    fn generic(&mut self, op: &PatchOperation, rs: &ResourceSchema) -> ScimResult<()> {
        let current = self.current()?;
        let members: Vec<Value> = current
            .iter()
            .map(|id| json!({"value": id, "type": "User"}))
            .collect();
        let mut doc = json!({"schemas": [urn::GROUP], "displayName": "-", "members": members});
        patch::apply(&mut doc, std::slice::from_ref(op), rs)?;
        let after = member_ids(doc.get("members").unwrap_or(&Value::Null))?;
        self.set_full(after.into_iter().collect());
        Ok(())
    }

    /// The edges to add and remove.
    fn finish(mut self) -> ScimResult<Changes<'static>> {
        let explicit = self.explicit_replace;
        let (add, remove, before): (Vec<String>, Vec<String>, _) = match self.full.take() {
            Some(full) => {
                let original = self.original()?;
                let add = full.difference(original).cloned().collect();
                let remove = original.difference(&full).cloned().collect();
                (add, remove, Some(original.len() as u64))
            }
            None => (
                self.added.into_iter().collect(),
                self.removed.into_iter().collect(),
                self.original.as_ref().map(|o| o.len() as u64),
            ),
        };
        Ok(Changes {
            add: add.into_iter().map(Cow::Owned).collect(),
            remove: remove.into_iter().map(Cow::Owned).collect(),
            explicit,
            before,
            whole: self.original.is_some(),
        })
    }
}

/// Edge changes of one request.
struct Changes<'w> {
    add: Vec<Cow<'w, str>>,
    remove: Vec<Cow<'w, str>>,
    explicit: bool,
    /// Member count before, when it was read.
    before: Option<u64>,
    /// Whether the whole membership was read (then the stamp must not have moved since).
    whole: bool,
}

/// Users and edges read per `get_many`, and edges per keys-only scan of a replacement.
const LOOKUP: usize = 1000;
const DIFF_PAGE: u32 = 10_000;

/// An empty list of member ids.
const NONE: &[&str] = &[];

/// The edges that turn the stored membership into `wanted` (sorted, without repeats): a merge
/// of `wanted` with the stored edges, read in key order a page at a time with keys-only scans,
/// so that the stored membership is never held whole. Store keys order bytewise, as `String`s
/// compare.
fn replacement_changes<'w>(
    m: &Membership<'_>,
    group: &str,
    wanted: &'w [String],
) -> ScimResult<Changes<'w>> {
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    let mut before = 0u64;
    let mut next = wanted.iter().peekable();
    let mut after: Option<String> = None;
    loop {
        let mut page = m.page(group, after.as_deref(), DIFF_PAGE)?;
        let full = page.len() == DIFF_PAGE as usize;
        before += page.len() as u64;
        for stored in &page {
            while let Some(w) = next.next_if(|w| w.as_str() < stored.as_str()) {
                add.push(Cow::Borrowed(w.as_str()));
            }
            if next.next_if(|w| *w == stored).is_none() {
                remove.push(Cow::Owned(stored.clone()));
            }
        }
        if !full {
            break;
        }
        after = page.pop();
    }
    add.extend(next.map(|w| Cow::Borrowed(w.as_str())));
    Ok(Changes {
        add,
        remove,
        explicit: true,
        before: Some(before),
        whole: true,
    })
}

/// `value eq "a"` or `value eq "a" or value eq "b"` ...: the ids, else `None`.
fn value_eq_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, Value::String(s))
            if p.uri.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![s.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = value_eq_ids(a)?;
            ids.extend(value_eq_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}

fn is_members_path(path: &Option<PatchPath>) -> Option<(Option<&Filter>, Option<&str>)> {
    match path {
        Some(PatchPath::Attr { attr, filter, sub })
            if attr.name.eq_ignore_ascii_case("members")
                && attr
                    .uri
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(urn::GROUP)) =>
        {
            Some((filter.as_ref(), sub.as_deref().or(attr.sub.as_deref())))
        }
        _ => None,
    }
}

impl Service<'_> {
    fn groups_repo(&self) -> Repo<'_> {
        Repo::new(
            self.store(),
            Kind::Group,
            self.schema(Kind::Group),
            &self.base_url,
        )
    }

    /// A group's ETag: its document revision plus its membership stamp's version.
    fn group_etag(doc: &Value, stamp: Option<&Entry>) -> String {
        let rev = etag_of(doc)
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string();
        match stamp {
            Some(s) => format!("W/\"{rev}.{}\"", s.version),
            None => format!("W/\"{rev}\""),
        }
    }

    /// The group as responses show it: meta from the document and the membership stamp, and
    /// members with the sub-attributes `members` keeps, only when wanted (so
    /// `excludedAttributes=members` never reads them).
    pub(crate) fn present_group(
        &self,
        doc: &Value,
        stamp: Option<&Entry>,
        members: Option<MemberFields>,
    ) -> ScimResult<Value> {
        let mut out = doc.clone();
        let id = doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let etag = Self::group_etag(doc, stamp);
        if let Some(meta) = out.get_mut("meta").and_then(Value::as_object_mut) {
            meta.insert("version".into(), etag.into());
            if let Some(t) = stamp.and_then(members::stamp_time) {
                let newer = meta
                    .get("lastModified")
                    .and_then(Value::as_str)
                    .is_none_or(|m| t.as_str() > m);
                if newer {
                    meta.insert("lastModified".into(), t.into());
                }
            }
        }
        if let Some(fields) = members {
            let mut list = Vec::new();
            Membership::new(self.store())
                .for_each_member(&id, fields, &self.base_url, |m| list.push(m))?;
            if !list.is_empty() {
                out.as_object_mut()
                    .expect("object")
                    .insert("members".into(), Value::Array(list));
            }
        }
        Ok(out)
    }

    /// A single group for a response, without members: a group may have a million of them,
    /// so [`crate::protocol::body`] reads them while the response is sent.
    pub(crate) fn get_group(&self, id: &str) -> ScimResult<Value> {
        let stored = self.groups_repo().get_existing(id)?;
        let stamp = Membership::new(self.store()).stamp(id)?;
        self.present_group(&stored.doc, stamp.as_ref(), None)
    }

    /// Whether a PATCH response should leave the group out (see the policy's
    /// `group-patch-body-max-members`). A response without members costs nothing to render, so
    /// only a projection that keeps them probes the group's size.
    pub(crate) fn group_too_large_for_body(
        &self,
        gid: &str,
        proj: &Projection,
    ) -> ScimResult<bool> {
        if !proj.wants(self.schema(Kind::Group), "members") {
            return Ok(false);
        }
        Membership::new(self.store()).more_than(gid, self.policy.group_patch_body_max_members)
    }

    /// POST /Groups: creates a team, or under a link-only policy links the existing team with
    /// exactly that name.
    pub(crate) fn create_group(&self, input: GroupInput) -> ScimResult<Value> {
        let content =
            resource::normalize_input(&input.doc, self.schema(Kind::Group), self.rules())?;
        let (content, ids) = self.content_and_members(content, input.members)?;
        if self.policy.team_creation == TeamCreation::LinkOnly {
            return self.link_team(content, ids);
        }
        let doc = self
            .groups_repo()
            .create_with(content, Some(linked(true)), |gid| {
                self.edge_plan(gid, &ids, NONE, Some(None))
            })?;
        let id = doc["id"].as_str().unwrap_or_default().to_string();
        self.get_group(&id)
    }

    /// The checked content of a POST or PUT body with its member ids (refused only now, after
    /// the rest of the document).
    fn content_and_members(
        &self,
        mut content: Map<String, Value>,
        members: ScimResult<Vec<String>>,
    ) -> ScimResult<(Map<String, Value>, Vec<String>)> {
        let mut ids = members?;
        // A spelling of `members` the input did not take apart (URN-qualified).
        if let Some(v) = content.remove("members") {
            ids.extend(member_ids(&v)?);
        }
        // A member listed twice is one membership (and one change event).
        let mut seen = BTreeSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        Ok((content, ids))
    }

    /// The rules [`GroupInput`] checks members with.
    pub(crate) fn group_rules<'s>(&'s self, method: &'s str) -> GroupRules<'s> {
        GroupRules {
            method,
            rs: self.schema(Kind::Group),
            policy: &self.policy,
            input: self.rules(),
        }
    }

    /// A team created by the product itself (CLI, admin API): allowed under every policy and
    /// not linked to any identity-provider group until one is pushed with the same name.
    pub fn create_team(&self, name: &str) -> ScimResult<Value> {
        let content = resource::normalize_input(
            &json!({"displayName": name}),
            self.schema(Kind::Group),
            self.rules(),
        )?;
        self.groups_repo()
            .create_with(content, Some(linked(false)), |_| {
                Ok((Vec::new(), Vec::new()))
            })
    }

    /// Every team with its link state and member count (for operators).
    pub fn teams(&self) -> ScimResult<Vec<(Value, bool, u64)>> {
        let m = Membership::new(self.store());
        let mut out = Vec::new();
        self.groups_repo().for_each(|s| {
            let id = s.id().to_string();
            out.push((s.doc.clone(), is_linked(&s.doc), m.count(&id)?));
            Ok(())
        })?;
        Ok(out)
    }

    fn link_team(&self, content: Map<String, Value>, ids: Vec<String>) -> ScimResult<Value> {
        let name = content
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        // Checked before the lookup, whose refusal would otherwise echo a hostile name.
        identifiers::check_value(Kind::Group, "displayName", &name)?;
        let repo = self.groups_repo();
        let index = Kind::Group.index("displayName").expect("indexed");
        let existing = repo
            .lookup(index, &name)?
            .into_iter()
            .next()
            .map(|id| repo.get(&id))
            .transpose()?
            .flatten();
        let Some(team) = existing
            .filter(|t| t.doc.get("displayName").and_then(Value::as_str) == Some(name.as_str()))
        else {
            return Err(ScimError::invalid_value(format!(
                "teams are created in the product, not by the identity provider: no team is named exactly '{name}'. \
                 Create the team in the product (or rename the group to match it exactly), then push the group again."
            )));
        };
        if is_linked(&team.doc) {
            return Err(ScimError::uniqueness(format!(
                "team '{name}' is already linked to a group"
            )));
        }
        let id = team.id().to_string();
        repo.mutate(&id, |current| {
            let mut c = object_of(&current.doc);
            if let Some(ext) = content.get("externalId") {
                c.insert("externalId".into(), ext.clone());
            }
            // A team the product made may have members already: only the others are added.
            let present = Membership::new(self.store()).contains(&id, &ids)?;
            let add: Vec<&String> = ids
                .iter()
                .zip(present)
                .filter(|(_, p)| !p)
                .map(|(u, _)| u)
                .collect();
            let (checks, writes) = self.edge_plan(&id, &add, NONE, None)?;
            Ok(Plan {
                doc: DocChange::Replace(c),
                internal: Some(linked(true)),
                checks,
                writes,
            })
        })?;
        diag::emit(
            Level::Info,
            &format!("linked team '{name}' ({id}) to the identity provider's group"),
        );
        self.get_group(&id)
    }

    /// Writes for adding and removing edges, with checks that every added user exists (and
    /// keeps existing until the commit) and the membership stamps. Users and edges are read
    /// [`LOOKUP`] at a time and only their versions kept: a group replaced with 100 000 new
    /// members must not hold 100 000 user documents.
    ///
    /// Each edge written is a membership change (one change event each,
    /// [`crate::persist::events`]): `guard` is the group's membership stamp as read when the
    /// whole membership was (`Some(None)`: it had none), which no concurrent change can leave
    /// unchanged; without it, each added edge is checked absent and each removed one present.
    fn edge_plan(
        &self,
        gid: &str,
        add: &[impl AsRef<str>],
        remove: &[impl AsRef<str>],
        guard: Option<Option<&Entry>>,
    ) -> ScimResult<(Vec<Check>, Vec<Write>)> {
        if add.is_empty() && remove.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut checks = Vec::with_capacity(add.len() + remove.len() + 1);
        for chunk in add.chunks(LOOKUP) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|u| Kind::User.resource_key(u.as_ref()))
                .collect();
            let users = self.store().get_many(&keys)?;
            if let Some((missing, _)) = chunk.iter().zip(&users).find(|(_, e)| e.is_none()) {
                return Err(ScimError::invalid_value(format!(
                    "member '{}' is not a user of this organization",
                    missing.as_ref()
                )));
            }
            for (key, entry) in keys.into_iter().zip(&users) {
                checks.push(Check::unchanged(key, entry.as_ref()));
            }
        }
        // A removal holds only while its edge does: if the user is deleted meanwhile (which
        // removes the edge), the commit conflicts and the retry no longer removes anything.
        for chunk in remove.chunks(LOOKUP) {
            let keys: Vec<String> = chunk.iter().map(|u| keys::edge(gid, u.as_ref())).collect();
            let edges = self.store().get_many(&keys)?;
            for (key, edge) in keys.into_iter().zip(&edges) {
                checks.push(Check::unchanged(key, edge.as_ref()));
            }
        }
        let stamp_value = members::stamp_value();
        let mut writes = Vec::with_capacity(3 * (add.len() + remove.len()) + 1);
        for u in add {
            writes.extend(members::link(gid, u.as_ref()));
            writes.push(Write::Put(
                keys::user_stamp(u.as_ref()),
                stamp_value.clone(),
            ));
        }
        for u in remove {
            writes.extend(members::unlink(gid, u.as_ref()));
            writes.push(Write::Put(
                keys::user_stamp(u.as_ref()),
                stamp_value.clone(),
            ));
        }
        match guard {
            Some(stamp) => checks.push(Check::unchanged(keys::group_stamp(gid), stamp)),
            None => checks.extend(add.iter().map(|u| Check {
                key: keys::edge(gid, u.as_ref()),
                version: None,
            })),
        }
        writes.push(Write::Put(keys::group_stamp(gid), stamp_value));
        Ok((checks, writes))
    }

    /// Refuses removing more than the tenant's share of a group outside an explicit replace.
    fn shrink_guard(&self, gid: &str, changes: &Changes) -> ScimResult<()> {
        let pct = u64::from(self.policy.max_group_shrink_percent);
        if changes.explicit || pct >= 100 || changes.remove.len() < 2 {
            return Ok(());
        }
        let before = match changes.before {
            Some(n) => n,
            None => Membership::new(self.store()).count(gid)?,
        };
        let removed = changes.remove.len() as u64;
        if before == 0 || removed * 100 <= before * pct {
            return Ok(());
        }
        let why = format!(
            "refused to remove {removed} of {before} members of group {gid}: more than this organization's limit of {pct}% \
             in one request. Send the complete member list as a replace (PUT or a 'replace' of members) to do this deliberately."
        );
        diag::emit(Level::Warn, &why);
        Err(ScimError::invalid_value(why))
    }

    /// Applies `plan` to the group's document and members atomically, then reads the group back.
    /// With `replacement` (sorted, without repeats), that is the new membership and `plan`
    /// changes only the document.
    fn change_group(
        &self,
        id: &str,
        if_match: Option<&str>,
        replacement: Option<&[String]>,
        plan: impl Fn(&Stored, &mut Delta<'_>) -> ScimResult<DocChange>,
    ) -> ScimResult<Value> {
        let repo = self.groups_repo();
        let m = Membership::new(self.store());
        repo.mutate(id, |current| {
            let stamp = m.stamp(id)?;
            check_if_match(if_match, &Self::group_etag(&current.doc, stamp.as_ref()))?;
            if self.policy.team_creation == TeamCreation::LinkOnly && !is_linked(&current.doc) {
                return Err(ScimError::forbidden(format!(
                    "team '{}' is not linked to the identity provider; push a group with exactly its name to link it",
                    current.doc.get("displayName").and_then(Value::as_str).unwrap_or_default()
                )));
            }
            let mut delta = Delta::new(id, Membership::new(self.store()));
            let doc = plan(current, &mut delta)?;
            let changes = match replacement {
                Some(wanted) => replacement_changes(&m, id, wanted)?,
                None => delta.finish()?,
            };
            self.shrink_guard(id, &changes)?;
            let guard = (changes.whole || if_match.is_some()).then_some(stamp.as_ref());
            let (checks, writes) = self.edge_plan(id, &changes.add, &changes.remove, guard)?;
            Ok(Plan { doc, internal: None, checks, writes })
        })?;
        self.get_group(id)
    }

    /// PUT /Groups/{id}: the document and the whole membership (RFC 7644 §3.5.1). Only the
    /// edges that differ from the stored ones are written.
    pub(crate) fn replace_group(
        &self,
        id: &str,
        input: GroupInput,
        if_match: Option<&str>,
    ) -> ScimResult<Value> {
        let content =
            resource::normalize_input(&input.doc, self.schema(Kind::Group), self.rules())?;
        if let Some(other) = input.doc.get("id").and_then(Value::as_str) {
            if other != id {
                return Err(ScimError::mutability(format!(
                    "'id' is immutable: the body says '{other}', the URL '{id}'"
                )));
            }
        }
        let (content, mut ids) = self.content_and_members(content, input.members)?;
        ids.sort_unstable();
        ids.dedup();
        self.change_group(id, if_match, Some(&ids), |_, _| {
            Ok(DocChange::Replace(content.clone()))
        })
    }

    pub(crate) fn patch_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> ScimResult<Value> {
        let rs = self.schema(Kind::Group);
        let ops = patch::parse_request(body, rs)?;
        self.change_group(id, if_match, None, |current, delta| {
            let mut doc = current.doc.clone();
            let mut doc_changed = false;
            for op in &ops {
                let (doc_op, member_op) = match (&op.path, is_members_path(&op.path)) {
                    (_, Some(_)) => (None, Some(op.clone())),
                    (None, None) if op.op != OpKind::Remove => split_members(op),
                    _ => (Some(op.clone()), None),
                };
                if let Some(d) = doc_op {
                    doc_changed |= patch::apply(&mut doc, std::slice::from_ref(&d), rs)?;
                }
                if let Some(mop) = member_op {
                    let (filter, sub) = is_members_path(&mop.path).unwrap_or((None, None));
                    delta.apply(&mop, filter, sub, rs)?;
                }
            }
            if !doc_changed {
                return Ok(DocChange::Keep);
            }
            Ok(DocChange::Replace(resource::normalize_input(
                &doc,
                rs,
                self.rules(),
            )?))
        })
    }

    /// DELETE /Groups/{id}: deletes the team and its edges, or under an unlink policy only
    /// unlinks it (the team and its members stay).
    pub(crate) fn delete_group(&self, id: &str, if_match: Option<&str>) -> ScimResult<()> {
        let repo = self.groups_repo();
        let m = Membership::new(self.store());
        let unlink = self.policy.group_delete == GroupDelete::Unlink;
        repo.mutate(id, |current| {
            let stamp = m.stamp(id)?;
            check_if_match(if_match, &Self::group_etag(&current.doc, stamp.as_ref()))?;
            if unlink {
                let mut c = object_of(&current.doc);
                c.remove("externalId");
                if !is_linked(&current.doc) {
                    return Ok(Plan::keep());
                }
                return Ok(Plan {
                    doc: DocChange::Replace(c),
                    internal: Some(linked(false)),
                    ..Plan::keep()
                });
            }
            let mut plan = Plan::delete();
            for user in m.members(id)? {
                plan.writes.extend(members::unlink(id, &user));
                plan.writes.push(members::stamp(keys::user_stamp(&user)));
            }
            plan.checks
                .push(Check::unchanged(keys::group_stamp(id), stamp.as_ref()));
            plan.writes.push(Write::Delete(keys::group_stamp(id)));
            Ok(plan)
        })?;
        Ok(())
    }

    /// Whether a filter needs members materialised to be evaluated.
    pub(crate) fn filter_needs_members(f: &Filter) -> bool {
        match f {
            Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => {
                p.name.eq_ignore_ascii_case("members")
            }
            Filter::And(a, b) | Filter::Or(a, b) => {
                Self::filter_needs_members(a) || Self::filter_needs_members(b)
            }
            Filter::Not(a) => Self::filter_needs_members(a),
        }
    }

    /// A group document with its members, for filters on `members`; with their `display` only
    /// if the filter reads it.
    pub(crate) fn with_members(&self, doc: &Value, f: &Filter) -> ScimResult<Value> {
        let fields = MemberFields {
            display: filter_reads_display(f),
            ..MemberFields::ALL
        };
        self.present_group(doc, None, Some(fields))
    }

    /// Groups whose members include `user` (for `members.value eq` / `members[value eq]`).
    pub(crate) fn groups_with_member(&self, user: &str) -> ScimResult<Vec<String>> {
        Membership::new(self.store()).groups_of(user)
    }

    pub(crate) fn filter_matches_group(&self, f: &Filter, doc: &Value) -> ScimResult<bool> {
        let rs = self.schema(Kind::Group);
        if Self::filter_needs_members(f) {
            return Ok(filter::matches(f, &self.with_members(doc, f)?, rs));
        }
        Ok(filter::matches(f, doc, rs))
    }
}

/// Whether a filter reads members' `display` (`members.display eq "Ada"`,
/// `members[display sw "A"]`).
fn filter_reads_display(f: &Filter) -> bool {
    fn is(name: &str, wanted: &str) -> bool {
        name.eq_ignore_ascii_case(wanted)
    }
    fn inner_reads(f: &Filter) -> bool {
        match f {
            Filter::Present(p) | Filter::Compare(p, _, _) => is(&p.name, "display"),
            Filter::ValuePath(_, inner) | Filter::Not(inner) => inner_reads(inner),
            Filter::And(a, b) | Filter::Or(a, b) => inner_reads(a) || inner_reads(b),
        }
    }
    match f {
        Filter::Present(p) | Filter::Compare(p, _, _) => {
            is(&p.name, "members") && p.sub.as_deref().is_some_and(|s| is(s, "display"))
        }
        Filter::ValuePath(p, inner) => is(&p.name, "members") && inner_reads(inner),
        Filter::And(a, b) | Filter::Or(a, b) => filter_reads_display(a) || filter_reads_display(b),
        Filter::Not(a) => filter_reads_display(a),
    }
}

fn object_of(doc: &Value) -> Map<String, Value> {
    let mut m = doc.as_object().cloned().unwrap_or_default();
    for k in ["id", "meta", "schemas", INTERNAL] {
        m.remove(k);
    }
    m
}
