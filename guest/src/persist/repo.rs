//! Persistence of resources through the [`Store`]: secondary indexes kept in the same atomic
//! commit as the resource, optimistic retries, ETags. The keys are laid out in
//! [`crate::persist::keys`].
//!
//! Indexed values are identifiers: [`crate::model::identifiers`] refuses control characters in them
//! and bounds their length before any key is built. Case-insensitive attributes are indexed
//! lower-cased; index hits are always re-checked against
//! the resource, so an index is a way to find candidates, never the answer itself.

use serde_json::{json, Map, Value};

use crate::model::clock;
use crate::model::error::{ScimError, ScimResult};
use crate::model::identifiers;
use crate::model::resource_type::Kind;
use crate::model::schema::ResourceSchema;
use crate::persist::events;
use crate::persist::keys::IndexDef;
use crate::persist::store::{prefix_end, Check, Entry, Event, Scan, Store, StoreError, Write};

/// How many times a read-modify-write is retried when a concurrent request wins the commit.
const MAX_ATTEMPTS: usize = 64;
/// A resource as read from the store.
#[derive(Debug, Clone)]
pub struct Stored {
    pub doc: Value,
    pub entry: Entry,
}

impl Stored {
    pub fn id(&self) -> &str {
        self.doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    /// The resource's ETag (`meta.version`).
    pub fn etag(&self) -> &str {
        etag_of(&self.doc)
    }
    /// When the resource was created (`meta.created`), which a replacement keeps.
    fn created(&self) -> String {
        self.doc
            .pointer("/meta/created")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

pub fn etag_of(doc: &Value) -> &str {
    doc.pointer("/meta/version")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Resources of one type in one tenant's store.
pub struct Repo<'a> {
    pub store: &'a dyn Store,
    pub kind: Kind,
    pub rs: &'a ResourceSchema,
    /// The SCIM base URL, for the resources change events show.
    pub base_url: &'a str,
}

pub use crate::persist::keys::INTERNAL;

/// What happens to the document itself in a mutation.
pub enum DocChange {
    Keep,
    /// New client-visible content (id, meta and schemas are managed here).
    Replace(Map<String, Value>),
    Delete,
}

/// One attempt's plan: the document change plus other keys checked and written atomically.
pub struct Plan {
    pub doc: DocChange,
    /// Replaces the internal state (`None`: carried over from the current document).
    pub internal: Option<Value>,
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
}

impl Plan {
    pub fn keep() -> Plan {
        Plan {
            doc: DocChange::Keep,
            internal: None,
            checks: Vec::new(),
            writes: Vec::new(),
        }
    }
    pub fn replace(content: Map<String, Value>) -> Plan {
        Plan {
            doc: DocChange::Replace(content),
            ..Plan::keep()
        }
    }
    pub fn delete() -> Plan {
        Plan {
            doc: DocChange::Delete,
            ..Plan::keep()
        }
    }
}

/// A new document with the checks and writes that store it in place of the current one.
pub type Replacement = (Value, Vec<Check>, Vec<Write>);

/// What a mutation did.
pub struct Outcome {
    /// The document after the mutation (`None` once deleted).
    pub doc: Option<Value>,
    /// The document it started from (of the successful attempt).
    #[cfg_attr(not(test), allow(dead_code))] // read only by the test-only `delete`
    pub before: Value,
}

/// What an update function decided.
pub enum Change {
    /// Nothing to write; answer the current resource.
    Unchanged,
    /// Write this client-visible content (id, meta and schemas are managed here).
    Replace(Map<String, Value>),
}

impl<'a> Repo<'a> {
    pub fn new(
        store: &'a dyn Store,
        kind: Kind,
        rs: &'a ResourceSchema,
        base_url: &'a str,
    ) -> Self {
        Repo {
            store,
            kind,
            rs,
            base_url,
        }
    }

    /// The change event of this type's resource going from `before` to `after`.
    pub fn event(&self, before: Option<&Value>, after: Option<&Value>) -> Option<Event> {
        events::resource(self.kind, self.rs, self.base_url, before, after)
    }

    /// Every event of a commit that moves one resource from `before` to `after` with
    /// `writes` (its membership edges among them).
    fn commit_events(
        &self,
        before: Option<&Value>,
        after: Option<&Value>,
        writes: &[Write],
    ) -> ScimResult<Vec<Event>> {
        let own = match self.kind {
            Kind::Group => after.or(before).into_iter().collect(),
            _ => Vec::new(),
        };
        let members = events::memberships(self.store, writes, &own)?;
        Ok(events::ordered(self.event(before, after), members))
    }

    pub fn get(&self, id: &str) -> ScimResult<Option<Stored>> {
        let Some(entry) = self.store.get(&self.kind.resource_key(id))? else {
            return Ok(None);
        };
        Ok(Some(decode(entry)?))
    }

    pub fn get_existing(&self, id: &str) -> ScimResult<Stored> {
        self.get(id)?.ok_or_else(|| self.not_found(id))
    }

    pub fn not_found(&self, id: &str) -> ScimError {
        ScimError::not_found(format!("{} '{id}' not found", self.kind.name()))
    }

    /// Reads several resources by id, skipping ids that no longer exist.
    pub fn get_many(&self, ids: &[String]) -> ScimResult<Vec<Stored>> {
        let keys: Vec<String> = ids.iter().map(|id| self.kind.resource_key(id)).collect();
        self.store
            .get_many(&keys)?
            .into_iter()
            .flatten()
            .map(decode)
            .collect()
    }

    /// Creates a resource from validated content.
    #[cfg(test)]
    pub fn create(&self, content: Map<String, Value>) -> ScimResult<Value> {
        self.create_with(content, None, |_| Ok((Vec::new(), Vec::new())))
    }

    /// Creates a resource; `extra` runs on every attempt with the new id and returns further
    /// checks and writes for the same commit (membership edges, a default team, ...).
    pub fn create_with(
        &self,
        content: Map<String, Value>,
        internal: Option<Value>,
        extra: impl Fn(&str) -> ScimResult<(Vec<Check>, Vec<Write>)>,
    ) -> ScimResult<Value> {
        self.create_beside(content, internal, |id| {
            let (checks, writes) = extra(id)?;
            Ok((checks, writes, None))
        })
    }

    /// [`Repo::create_with`] for a user whose `extra` may also create a group in the same
    /// commit (the default team, on first use): that group's document and creation event, so
    /// that the commit reports the group's creation and its membership events show it.
    pub fn create_beside(
        &self,
        content: Map<String, Value>,
        internal: Option<Value>,
        extra: impl Fn(&str) -> ScimResult<(Vec<Check>, Vec<Write>, Option<(Value, Event)>)>,
    ) -> ScimResult<Value> {
        let (id, doc) = self.new_document(content, internal);
        for _ in 0..MAX_ATTEMPTS {
            let (mut checks, mut writes) = self.creation(&id, &doc)?;
            let (more_checks, more_writes, beside) = extra(&id)?;
            checks.extend(more_checks);
            writes.extend(more_writes);
            let events = match &beside {
                None => self.commit_events(None, Some(&doc), &writes)?,
                Some((group, created)) => {
                    let members = events::memberships(self.store, &writes, &[group])?;
                    let mut all: Vec<Event> = self.event(None, Some(&doc)).into_iter().collect();
                    all.push(created.clone());
                    all.extend(members);
                    all
                }
            };
            match self.store.commit_events(checks, writes, events) {
                Ok(_) => return Ok(doc),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(contended())
    }

    /// A new id and the document a creation stores.
    pub fn new_document(
        &self,
        content: Map<String, Value>,
        internal: Option<Value>,
    ) -> (String, Value) {
        let now = clock::rfc3339(clock::now_millis());
        let id = clock::new_id();
        let mut content = content;
        if let Some(v) = internal {
            content.insert(INTERNAL.into(), v);
        }
        let doc = self.document(&id, content, &now, &now, 1);
        (id, doc)
    }

    /// The document and the checks and writes that replace `current`'s content (uncommitted),
    /// or `None` when the content is what is stored already.
    pub fn replacement(
        &self,
        current: &Stored,
        content: Map<String, Value>,
    ) -> ScimResult<Option<Replacement>> {
        let id = current.id().to_string();
        let mut content = content;
        if let Some(v) = current.doc.get(INTERNAL) {
            content.insert(INTERNAL.into(), v.clone());
        }
        let created = current.created();
        let now = clock::rfc3339(clock::now_millis());
        let doc = self.document(&id, content, &created, &now, revision(current.etag()) + 1);
        if without_meta(&doc) == without_meta(&current.doc) {
            return Ok(None);
        }
        let (mut checks, mut writes) = self.index_changes(&id, Some(&current.doc), Some(&doc))?;
        checks.push(Check::unchanged(
            current.entry.key.clone(),
            Some(&current.entry),
        ));
        writes.push(Write::Put(current.entry.key.clone(), encode(&doc)));
        Ok(Some((doc, checks, writes)))
    }

    /// The checks and writes that store a new document and its index entries (uncommitted, so
    /// that another creation can join the same commit).
    pub fn creation(&self, id: &str, doc: &Value) -> ScimResult<(Vec<Check>, Vec<Write>)> {
        let key = self.kind.resource_key(id);
        let (mut checks, mut writes) = self.index_changes(id, None, Some(doc))?;
        checks.push(Check {
            key: key.clone(),
            version: None,
        });
        writes.push(Write::Put(key, encode(doc)));
        Ok((checks, writes))
    }

    /// Read-modify-write of one resource with optimistic retries: `change` sees the current
    /// document on every attempt, so concurrent updates are never lost.
    pub fn update(
        &self,
        id: &str,
        if_match: Option<&str>,
        change: impl Fn(&Value) -> ScimResult<Change>,
    ) -> ScimResult<Value> {
        let outcome = self.mutate(id, |current| {
            check_if_match(if_match, current.etag())?;
            Ok(match change(&current.doc)? {
                Change::Unchanged => Plan::keep(),
                Change::Replace(content) => Plan::replace(content),
            })
        })?;
        Ok(outcome.doc.unwrap_or_default())
    }

    #[cfg(test)]
    pub fn delete(&self, id: &str, if_match: Option<&str>) -> ScimResult<Value> {
        let mut deleted = Value::Null;
        self.mutate(id, |current| {
            check_if_match(if_match, current.etag())?;
            Ok(Plan::delete())
        })
        .map(|o| deleted = o.before)?;
        Ok(deleted)
    }

    /// The general read-plan-commit loop: `plan` runs on a fresh read on every attempt and
    /// returns the document change plus any other keys to check and write in the same commit.
    pub fn mutate(
        &self,
        id: &str,
        plan: impl Fn(&Stored) -> ScimResult<Plan>,
    ) -> ScimResult<Outcome> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.get_existing(id)?;
            let Plan {
                doc: change,
                internal,
                mut checks,
                mut writes,
            } = plan(&current)?;
            let key = current.entry.key.clone();
            let new_doc = match change {
                DocChange::Keep => None,
                DocChange::Delete => {
                    let (c, w) = self.index_changes(id, Some(&current.doc), None)?;
                    checks.extend(c);
                    writes.extend(w);
                    writes.push(Write::Delete(key.clone()));
                    None
                }
                DocChange::Replace(mut content) => {
                    match internal.or_else(|| current.doc.get(INTERNAL).cloned()) {
                        Some(v) if !v.is_null() => {
                            content.insert(INTERNAL.into(), v);
                        }
                        _ => {}
                    }
                    let created = current.created();
                    let now = clock::rfc3339(clock::now_millis());
                    let doc =
                        self.document(id, content, &created, &now, revision(current.etag()) + 1);
                    if without_meta(&doc) == without_meta(&current.doc) {
                        None
                    } else {
                        let (c, w) = self.index_changes(id, Some(&current.doc), Some(&doc))?;
                        checks.extend(c);
                        writes.extend(w);
                        writes.push(Write::Put(key.clone(), encode(&doc)));
                        Some(doc)
                    }
                }
            };
            let deleted = writes
                .iter()
                .any(|w| matches!(w, Write::Delete(k) if *k == key));
            if writes.is_empty() {
                return Ok(Outcome {
                    doc: Some(current.doc.clone()),
                    before: current.doc,
                });
            }
            checks.push(Check::unchanged(key.clone(), Some(&current.entry)));
            let after = if deleted {
                None
            } else {
                Some(new_doc.as_ref().unwrap_or(&current.doc))
            };
            let events = self.commit_events(Some(&current.doc), after, &writes)?;
            match self.store.commit_events(checks, writes, events) {
                Ok(_) => {
                    let doc = if deleted {
                        None
                    } else {
                        Some(new_doc.unwrap_or_else(|| current.doc.clone()))
                    };
                    return Ok(Outcome {
                        doc,
                        before: current.doc,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(contended())
    }

    /// Ids whose indexed attribute `attr` may equal `value` (candidates; re-check them).
    pub fn lookup(&self, index: &IndexDef, value: &str) -> ScimResult<Vec<String>> {
        if index.unique {
            let hit = self.store.get(&index.unique_key(self.kind, value))?;
            return Ok(hit
                .map(|e| String::from_utf8_lossy(&e.value).into_owned())
                .into_iter()
                .collect());
        }
        let prefix = index.multi_prefix(self.kind, value);
        let hits = self.store.scan(&Scan::prefix(&prefix).keys_only())?;
        Ok(hits
            .into_iter()
            .filter_map(|e| e.key.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Number of resources of this type.
    pub fn count(&self) -> ScimResult<u64> {
        let prefix = self.kind.resource_prefix();
        Ok(self.store.count(&prefix, &prefix_end(&prefix))?)
    }

    /// A page of resources in key (creation) order.
    pub fn page(&self, skip: u64, limit: u32) -> ScimResult<Vec<Stored>> {
        let scan = Scan::prefix(&self.kind.resource_prefix()).page(skip, limit);
        self.store.scan(&scan)?.into_iter().map(decode).collect()
    }

    /// Up to `limit` resources in key (id) order, starting after the id `after` (from the
    /// first when `None`); the id need not exist any more.
    pub fn page_after(&self, after: Option<&str>, limit: u32) -> ScimResult<Vec<Stored>> {
        let prefix = self.kind.resource_prefix();
        let scan = Scan {
            // No key lies between a key and itself followed by NUL, the smallest char.
            start: match after {
                Some(id) => format!("{prefix}{id}\u{0}"),
                None => prefix.clone(),
            },
            end: prefix_end(&prefix),
            skip: 0,
            limit,
            descending: false,
            keys_only: false,
        };
        self.store.scan(&scan)?.into_iter().map(decode).collect()
    }

    /// Calls `visit` for every resource in key order, reading in batches.
    pub fn for_each(&self, mut visit: impl FnMut(Stored) -> ScimResult<()>) -> ScimResult<()> {
        const BATCH: u32 = 500;
        let prefix = self.kind.resource_prefix();
        let mut start = prefix.clone();
        loop {
            let scan = Scan {
                start: start.clone(),
                end: prefix_end(&prefix),
                skip: 0,
                limit: BATCH,
                descending: false,
                keys_only: false,
            };
            let batch = self.store.scan(&scan)?;
            let done = batch.len() < BATCH as usize;
            if let Some(last) = batch.last() {
                start = format!("{}\u{0}", last.key);
            }
            for entry in batch {
                visit(decode(entry)?)?;
            }
            if done {
                return Ok(());
            }
        }
    }

    fn document(
        &self,
        id: &str,
        content: Map<String, Value>,
        created: &str,
        modified: &str,
        rev: u64,
    ) -> Value {
        let mut schemas = vec![Value::from(self.rs.core.id.clone())];
        schemas.extend(
            self.rs
                .extensions
                .iter()
                .filter(|e| content.contains_key(&e.id))
                .map(|e| Value::from(e.id.clone())),
        );
        let mut doc = Map::new();
        doc.insert("schemas".into(), Value::Array(schemas));
        doc.insert("id".into(), id.into());
        doc.extend(content);
        doc.insert(
            "meta".into(),
            json!({"resourceType": self.rs.name, "created": created, "lastModified": modified, "version": format!("W/\"{rev}\"")}),
        );
        Value::Object(doc)
    }

    /// Checks and writes that move the indexes from `old` to `new`, refusing duplicates.
    fn index_changes(
        &self,
        id: &str,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> ScimResult<(Vec<Check>, Vec<Write>)> {
        // Every write of a document passes here (POST, PUT, PATCH in any dialect, import, teams
        // made by the product), so this is where identifiers are held to their rules: nothing
        // is stored, and no index key built, from a value they refuse.
        if let Some(doc) = new {
            identifiers::check_document(self.kind, old, doc)?;
        }
        let (mut checks, mut writes) = (Vec::new(), Vec::new());
        for index in self.kind.indexes() {
            let norm = |doc: Option<&Value>| -> Vec<String> {
                doc.map(|d| index.normalized_values(d)).unwrap_or_default()
            };
            let (before, after) = (norm(old), norm(new));
            for gone in before.iter().filter(|v| !after.contains(v)) {
                writes.push(Write::Delete(self.index_key(index, id, gone)));
            }
            for added in after.iter().filter(|v| !before.contains(v)) {
                let key = self.index_key(index, id, added);
                if index.unique {
                    if let Some(owner) = self.store.get(&key)? {
                        if owner.value != id.as_bytes() {
                            return Err(ScimError::uniqueness(format!(
                                "a {} with {} '{added}' already exists",
                                self.kind.name(),
                                index.attr
                            )));
                        }
                    }
                    checks.push(Check {
                        key: key.clone(),
                        version: None,
                    });
                    writes.push(Write::Put(key, id.as_bytes().to_vec()));
                } else {
                    writes.push(Write::Put(key, Vec::new()));
                }
            }
        }
        Ok((checks, writes))
    }

    fn index_key(&self, index: &IndexDef, id: &str, normalized: &str) -> String {
        index.key(self.kind, id, normalized)
    }
}

fn contended() -> ScimError {
    ScimError::unavailable("too many concurrent changes to this resource; retry later")
}

fn revision(etag: &str) -> u64 {
    etag.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap_or(0)
}

fn without_meta(doc: &Value) -> Value {
    let mut d = doc.clone();
    if let Value::Object(m) = &mut d {
        m.remove("meta");
    }
    d
}

/// RFC 7232 `If-Match` with weak comparison (SCIM versions are weak ETags).
pub fn check_if_match(if_match: Option<&str>, etag: &str) -> ScimResult<()> {
    let Some(header) = if_match else {
        return Ok(());
    };
    if etag_list_matches(header, etag) {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "the resource's version is {etag}, not {header}"
        )))
    }
}

/// Whether an `If-Match` / `If-None-Match` list names `etag` (or is `*`).
pub fn etag_list_matches(header: &str, etag: &str) -> bool {
    let opaque = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    header
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == opaque(etag))
}

fn encode(doc: &Value) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap_or_default()
}

fn decode(entry: Entry) -> ScimResult<Stored> {
    let doc = serde_json::from_slice(&entry.value).map_err(|e| {
        ScimError::internal(format!("stored resource {} is corrupt: {e}", entry.key))
    })?;
    Ok(Stored { doc, entry })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::Policy;
    use crate::persist::store::MemStore;

    fn content(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn create_indexes_and_refuses_duplicates_case_insensitively() {
        let store = MemStore::new();
        let rs = Policy::default().user_schema();
        let repo = Repo::new(&store, Kind::User, &rs, "");
        let doc = repo
            .create(content(
                json!({"userName": "Ada@X.com", "emails": [{"value": "ada@x.com"}]}),
            ))
            .unwrap();
        assert_eq!(doc["meta"]["version"], "W/\"1\"");
        let err = repo
            .create(content(json!({"userName": "ada@x.COM"})))
            .unwrap_err();
        assert_eq!(
            (err.status, err.scim_type),
            (409, Some(crate::model::error::ScimType::Uniqueness))
        );
        let id = doc["id"].as_str().unwrap();
        assert_eq!(
            repo.lookup(Kind::User.index("userName").unwrap(), "ADA@x.com")
                .unwrap(),
            [id]
        );
        assert_eq!(
            repo.lookup(Kind::User.index("emails.value").unwrap(), "Ada@X.Com")
                .unwrap(),
            [id]
        );
    }

    #[test]
    fn update_moves_indexes_and_bumps_version_only_on_change() {
        let store = MemStore::new();
        let rs = Policy::default().user_schema();
        let repo = Repo::new(&store, Kind::User, &rs, "");
        let id = repo.create(content(json!({"userName": "a"}))).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let same = repo
            .update(&id, None, |_| {
                Ok(Change::Replace(content(json!({"userName": "a"}))))
            })
            .unwrap();
        assert_eq!(same["meta"]["version"], "W/\"1\"");
        let renamed = repo
            .update(&id, Some("W/\"1\""), |_| {
                Ok(Change::Replace(content(json!({"userName": "b"}))))
            })
            .unwrap();
        assert_eq!(renamed["meta"]["version"], "W/\"2\"");
        assert!(repo
            .lookup(Kind::User.index("userName").unwrap(), "a")
            .unwrap()
            .is_empty());
        repo.create(content(json!({"userName": "a"}))).unwrap();
        let err = repo
            .update(&id, Some("W/\"1\""), |_| Ok(Change::Unchanged))
            .unwrap_err();
        assert_eq!(err.status, 412);
        repo.delete(&id, None).unwrap();
        assert!(repo.get(&id).unwrap().is_none());
        assert_eq!(
            store.keys().iter().filter(|k| k.contains("/b")).count(),
            0,
            "index of deleted user removed"
        );
    }
}
