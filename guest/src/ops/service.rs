//! SCIM operations on Users and Groups (RFC 7644 §3.3–3.6), independent of HTTP: used by the
//! HTTP handler and by the typed WIT exports alike.

use std::cell::{OnceCell, RefCell};
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value;

use crate::model::error::{ScimError, ScimResult};
use crate::model::policy::Policy;
use crate::model::resource_type::Kind;
use crate::model::schema::{AttrPath, AttrType, Container, Resolved, ResourceSchema};
use crate::persist::repo::{Change, Repo, Stored};
use crate::persist::store::Store;
use crate::rules::filter::{self, Filter};
use crate::rules::group_input::GroupInput;
use crate::rules::patch;
use crate::rules::resource::{self, InputRules, Projection};

/// One request's view of a tenant: its store, policy and schemas.
pub struct Service<'a> {
    store: &'a dyn Store,
    /// The SCIM base URL, for `meta.location` and `Location` headers.
    pub base_url: String,
    /// The tenant's policy.
    pub policy: Rc<Policy>,
    schemas: Rc<Schemas>,
}

/// The resource schemas a policy compiles to. Each is built on first use: a request that needs
/// no schema (discovery of one document, a 404) does not pay for building all of them.
#[derive(Default)]
struct Schemas {
    users: OnceCell<ResourceSchema>,
    groups: OnceCell<ResourceSchema>,
    roles: OnceCell<ResourceSchema>,
}

/// Policies parsed recently, with their schemas, by policy text: a warm component instance
/// serves one tenant request after request, so its policy is parsed and compiled once.
struct Compiled {
    text: String,
    policy: Rc<Policy>,
    schemas: Rc<Schemas>,
}

const COMPILED_KEPT: usize = 8;

thread_local! {
    static COMPILED: RefCell<Vec<Compiled>> = const { RefCell::new(Vec::new()) };
}

fn compiled(policy_json: &str) -> ScimResult<(Rc<Policy>, Rc<Schemas>)> {
    let hit = COMPILED.with_borrow(|kept| {
        kept.iter()
            .find(|c| c.text == policy_json)
            .map(|c| (c.policy.clone(), c.schemas.clone()))
    });
    if let Some(hit) = hit {
        return Ok(hit);
    }
    let policy = Rc::new(Policy::from_json(policy_json)?);
    let schemas = Rc::new(Schemas::default());
    COMPILED.with_borrow_mut(|kept| {
        if kept.len() >= COMPILED_KEPT {
            kept.remove(0);
        }
        kept.push(Compiled {
            text: policy_json.to_string(),
            policy: policy.clone(),
            schemas: schemas.clone(),
        });
    });
    Ok((policy, schemas))
}

/// Parameters of a list or search request, as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `filter` (RFC 7644 §3.4.2.2).
    pub filter: Option<String>,
    /// `startIndex`, 1-based (RFC 7644 §3.4.2.4); unparsed text.
    pub start_index: Option<String>,
    /// `count`, the page size (RFC 7644 §3.4.2.4); unparsed text.
    pub count: Option<String>,
    /// `sortBy` (RFC 7644 §3.4.2.3).
    pub sort_by: Option<String>,
    /// `sortOrder`: `ascending` or `descending`.
    pub sort_order: Option<String>,
    /// `attributes` (RFC 7644 §3.4.2.5).
    pub attributes: Option<String>,
    /// `excludedAttributes` (RFC 7644 §3.4.2.5).
    pub excluded_attributes: Option<String>,
}

/// A page of results before rendering.
pub struct Page {
    /// `totalResults`: every match, not just this page.
    pub total: u64,
    /// `startIndex` of this page, 1-based.
    pub start_index: u64,
    /// The stored documents of this page, with their types (not yet rendered).
    pub resources: Vec<(Kind, Value)>,
}

impl<'a> Service<'a> {
    /// A tenant's service: its store, its SCIM base URL and its policy JSON (refused if invalid).
    pub fn new(store: &'a dyn Store, base_url: &str, policy_json: &str) -> ScimResult<Self> {
        let (policy, schemas) = compiled(policy_json)?;
        Ok(Service {
            store,
            base_url: base_url.trim_end_matches('/').to_string(),
            policy,
            schemas,
        })
    }

    /// The schemas (core and extensions) this tenant enforces for a resource type.
    pub fn schema(&self, kind: Kind) -> &ResourceSchema {
        match kind {
            Kind::User => self.schemas.users.get_or_init(|| self.policy.user_schema()),
            Kind::Group => self
                .schemas
                .groups
                .get_or_init(|| self.policy.group_schema()),
        }
    }

    /// The read-only Role resource type.
    pub fn role_schema(&self) -> &ResourceSchema {
        self.schemas.roles.get_or_init(|| {
            let description = "Roles users of this organization can hold";
            ResourceSchema::new(
                "Role",
                "/Roles",
                description,
                crate::model::schema::role_schema(),
                Vec::new(),
            )
        })
    }

    fn repo(&self, kind: Kind) -> Repo<'_> {
        Repo::new(self.store, kind, self.schema(kind), &self.base_url)
    }

    pub(crate) fn store(&self) -> &'a dyn Store {
        self.store
    }

    pub(crate) fn rules(&self) -> InputRules {
        InputRules {
            coerce_boolean_strings: self.policy.coerce_boolean_strings,
        }
    }

    /// The projection of a request's `attributes` / `excludedAttributes` (RFC 7644
    /// §3.4.2.5), `attributes` read through the dialect rule for value filters
    /// ([`crate::rules::dialect::query`]).
    pub fn projection(
        &self,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> ScimResult<Projection> {
        let attributes = attributes
            .map(|a| crate::rules::dialect::query::attributes(a, &self.policy))
            .transpose()?;
        Projection::parse(attributes.as_deref(), excluded)
    }

    /// Applies the projection to a presentable document.
    pub fn render(&self, kind: Kind, doc: &Value, proj: &Projection) -> Value {
        resource::render(doc, self.schema(kind), proj, &self.base_url)
    }

    /// Creates a resource (RFC 7644 §3.3) and returns it rendered under `proj`.
    pub fn create(&self, kind: Kind, body: &Value, proj: &Projection) -> ScimResult<Value> {
        match kind {
            Kind::User => {
                let doc = self.create_user(body)?;
                self.present_user(&doc, proj.wants(self.schema(Kind::User), "groups"))
            }
            Kind::Group => {
                let rules = self.group_rules("POST");
                self.create_group(GroupInput::from_value(body.clone(), rules))
            }
        }
    }

    /// Reads one resource (RFC 7644 §3.4.1), rendered under `proj`.
    pub fn get(&self, kind: Kind, id: &str, proj: &Projection) -> ScimResult<Value> {
        match kind {
            Kind::User => {
                let doc = self.repo(kind).get_existing(id)?.doc;
                self.present_user(&doc, proj.wants(self.schema(Kind::User), "groups"))
            }
            Kind::Group => self.get_group(id),
        }
    }

    /// PUT: the body replaces every client-writable attribute (RFC 7644 §3.5.1).
    pub fn replace(
        &self,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> ScimResult<Value> {
        if kind == Kind::Group {
            let input = GroupInput::from_value(body.clone(), self.group_rules("PUT"));
            return self.replace_group(id, input, if_match);
        }
        let content = resource::normalize_input(body, self.schema(Kind::User), self.rules())?;
        if let Some(other) = body.get("id").and_then(Value::as_str) {
            if other != id {
                return Err(ScimError::mutability(format!(
                    "'id' is immutable: the body says '{other}', the URL '{id}'"
                )));
            }
        }
        let doc = self.repo(kind).update(id, if_match, |current| {
            let mut c = content.clone();
            self.sync_roles_keeping(Some(current), &mut c)?;
            Ok(Change::Replace(c))
        })?;
        self.present_user(&doc, proj.wants(self.schema(Kind::User), "groups"))
    }

    /// PATCH: all operations apply, or none (RFC 7644 §3.5.2).
    pub fn patch(
        &self,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> ScimResult<Value> {
        if kind == Kind::Group {
            return self.patch_group(id, body, if_match);
        }
        let rs = self.schema(Kind::User);
        let ops = patch::parse_request(body, rs)?;
        let doc = self.repo(kind).update(id, if_match, |current| {
            let mut doc = current.clone();
            if !patch::apply(&mut doc, &ops, rs)? {
                return Ok(Change::Unchanged);
            }
            let mut c = resource::normalize_input(&doc, rs, self.rules())?;
            self.sync_roles(Some(current), &mut c)?;
            Ok(Change::Replace(c))
        })?;
        self.present_user(&doc, proj.wants(self.schema(Kind::User), "groups"))
    }

    /// Deletes a resource (RFC 7644 §3.6), honouring `If-Match`.
    pub fn delete(&self, kind: Kind, id: &str, if_match: Option<&str>) -> ScimResult<()> {
        match kind {
            Kind::User => self.delete_user(id, if_match),
            Kind::Group => self.delete_group(id, if_match),
        }
    }

    /// Lists resources of the given kinds (two for the root `/.search`).
    pub fn query(&self, kinds: &[Kind], params: &ListParams) -> ScimResult<Page> {
        let start_index = parse_start_index(params.start_index.as_deref())?;
        let count = self.parse_count(params.count.as_deref())?;
        let opts = filter::ParseOptions {
            lenient_unquoted: self.policy.lenient_filter_values,
        };
        let filter = params
            .filter
            .as_deref()
            .map(|f| filter::parse_with(f, opts))
            .transpose()?;
        let sort = params
            .sort_by
            .as_deref()
            .map(|s| SortKey::parse(s, params.sort_order.as_deref()))
            .transpose()?;
        let mut applicable = Vec::new();
        for &kind in kinds {
            match &filter {
                Some(f) => match filter::validate(f, self.schema(kind)) {
                    Ok(()) => applicable.push(kind),
                    Err(e) if kinds.len() == 1 => return Err(e),
                    Err(_) => {}
                },
                None => applicable.push(kind),
            }
        }
        if applicable.is_empty() {
            return Err(ScimError::invalid_filter(
                "the filter names attributes no resource type has",
            ));
        }
        if let ([kind], None, None) = (applicable.as_slice(), &filter, &sort) {
            return self.plain_page(*kind, start_index, count);
        }
        let mut matches = Vec::new();
        for kind in applicable {
            for stored in self.matching(kind, filter.as_ref())? {
                matches.push((kind, stored.doc));
            }
        }
        if let Some(sort) = &sort {
            sort.apply(&mut matches, self);
        }
        let total = matches.len() as u64;
        let resources = matches
            .into_iter()
            .skip((start_index - 1) as usize)
            .take(count as usize)
            .collect();
        Ok(Page {
            total,
            start_index,
            resources,
        })
    }

    /// An unfiltered, unsorted page straight from the store, without reading other resources.
    fn plain_page(&self, kind: Kind, start_index: u64, count: u32) -> ScimResult<Page> {
        let repo = self.repo(kind);
        let total = repo.count()?;
        let docs = if count == 0 {
            Vec::new()
        } else {
            repo.page(start_index - 1, count)?
        };
        Ok(Page {
            total,
            start_index,
            resources: docs.into_iter().map(|s| (kind, s.doc)).collect(),
        })
    }

    /// Resources matching `filter`, through an index when the filter pins an indexed attribute.
    fn matching(&self, kind: Kind, filter: Option<&Filter>) -> ScimResult<Vec<Stored>> {
        let repo = self.repo(kind);
        let rs = self.schema(kind);
        let Some(filter) = filter else {
            let mut all = Vec::new();
            repo.for_each(|s| {
                all.push(s);
                Ok(())
            })?;
            return Ok(all);
        };
        let matches = |s: &Stored| -> ScimResult<bool> {
            match kind {
                Kind::Group => self.filter_matches_group(filter, &s.doc),
                Kind::User => Ok(filter::matches(filter, &s.doc, rs)),
            }
        };
        if let Some(ids) = self.index_candidates(&repo, filter)? {
            let mut found = Vec::new();
            for s in repo.get_many(&ids)? {
                if matches(&s)? {
                    found.push(s);
                }
            }
            found.sort_by(|a, b| a.entry.key.cmp(&b.entry.key));
            found.dedup_by(|a, b| a.entry.key == b.entry.key);
            return Ok(found);
        }
        let mut hits = Vec::new();
        repo.for_each(|s| {
            if matches(&s)? {
                hits.push(s);
            }
            Ok(())
        })?;
        Ok(hits)
    }

    fn index_candidates(
        &self,
        repo: &Repo<'_>,
        filter: &Filter,
    ) -> ScimResult<Option<Vec<String>>> {
        for (attr, value) in filter::eq_conjuncts(filter, repo.rs) {
            if attr == "id" {
                return Ok(Some(vec![value]));
            }
            if let Some(index) = repo.kind.index(&attr) {
                return Ok(Some(repo.lookup(index, &value)?));
            }
            if repo.kind == Kind::Group && attr.eq_ignore_ascii_case("members.value") {
                return Ok(Some(self.groups_with_member(&value)?));
            }
        }
        Ok(None)
    }

    fn parse_count(&self, text: Option<&str>) -> ScimResult<u32> {
        let Some(text) = text else {
            return Ok(self.policy.default_page_size);
        };
        let n: i64 = text
            .trim()
            .parse()
            .map_err(|_| ScimError::invalid_value(format!("count '{text}' is not an integer")))?;
        Ok(n.clamp(0, i64::from(self.policy.max_page_size)) as u32)
    }
}

/// RFC 7644 §3.4.2.4: a `startIndex` below 1 is taken as 1.
fn parse_start_index(text: Option<&str>) -> ScimResult<u64> {
    let Some(text) = text else { return Ok(1) };
    let n: i64 = text
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value(format!("startIndex '{text}' is not an integer")))?;
    Ok(n.max(1) as u64)
}

/// `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3).
struct SortKey {
    path: AttrPath,
    descending: bool,
}

impl SortKey {
    fn parse(by: &str, order: Option<&str>) -> ScimResult<SortKey> {
        let path = AttrPath::parse(by.trim()).ok_or_else(|| {
            ScimError::invalid_value(format!("sortBy '{by}' is not an attribute path"))
        })?;
        let descending = match order.map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder '{o}' must be ascending or descending"
                )))
            }
        };
        Ok(SortKey { path, descending })
    }

    fn apply(&self, items: &mut [(Kind, Value)], svc: &Service<'_>) {
        let key = |(kind, doc): &(Kind, Value)| -> Option<SortValue> {
            let rs = svc.schema(*kind);
            let r = rs.resolve(&self.path).ok()?;
            let value = sort_value(doc, &r)?;
            Some((r.target().ty, r.target().case_exact, value))
        };
        let mut keyed: Vec<(Option<SortValue>, (Kind, Value))> =
            items.iter().map(|i| (key(i), i.clone())).collect();
        keyed.sort_by(|(a, _), (b, _)| {
            let ord = match (a, b) {
                (Some(a), Some(b)) => compare_sort(a, b),
                // Unassigned values sort last in either order.
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if self.descending {
                ord.reverse()
            } else {
                ord
            }
        });
        for (slot, (_, item)) in items.iter_mut().zip(keyed) {
            *slot = item;
        }
    }
}

/// A sort key: the attribute's type, whether it is case-exact, and the value.
type SortValue = (AttrType, bool, Value);

fn compare_sort(a: &SortValue, b: &SortValue) -> Ordering {
    match (&a.2, &b.2) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) if !a.1 => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// The value a resource sorts by: for a multi-valued attribute, the primary (else first) value.
fn sort_value(doc: &Value, r: &Resolved<'_>) -> Option<Value> {
    let container = match r.container {
        Container::Core => doc,
        Container::Extension(urn) => doc.get(urn)?,
    };
    let mut v = container.get(&r.attr.name)?;
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|i| i.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    let leaf = match (r.sub, v) {
        (Some(sub), Value::Object(m)) => m.get(&sub.name)?,
        (None, Value::Object(m)) => m.get("value")?,
        (_, other) => other,
    };
    (!leaf.is_null()).then(|| leaf.clone())
}
