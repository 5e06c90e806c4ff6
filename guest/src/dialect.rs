//! The dialect normaliser: turns the request shapes identity providers really send, but RFC 7644
//! does not allow, into the RFC operations they mean, before any validation
//! (`scim-field-guide.md` §2.2, §3.2–3.4, §5.2).
//!
//! Each shape is a named [`Rule`] with a per-tenant switch (`dialect.*` in the tenant policy,
//! except string booleans, which keep their older key `coerce-boolean-strings`). Every rule is on
//! by default; when one fires it is logged at debug level with the places it rewrote (never the
//! values: bodies carry personal data and passwords). A rule switched off gives the strict RFC
//! answer, a 400 naming the rule and its policy key, rather than passing the shape on to the
//! more tolerant PATCH engine and validator behind it. One rule, [`Rule::FilteredAttributes`],
//! rewrites a query parameter rather than a body ([`query`]).
//!
//! What is deliberately *not* here, because RFC 7643/7644 already allow it and the engine and
//! validator handle it for every tenant: attribute names in any case (`UserName`, `Active`, in
//! bodies, PATCH values, paths and filters), extension URNs in any case, read-only or unknown
//! attributes in POST/PUT bodies (Okta's `password`, `groups: []`, Microsoft's and Okta's extra
//! group schemas), Okta's `{id, displayName}` replace with the current values (a no-op), and
//! unknown query parameters such as `aadOptscim062020`.

use serde_json::{Map, Value};

use crate::diag::{self, Level};
use crate::error::{ScimError, ScimResult};
use crate::patch::{self, PatchPath};
use crate::policy::Policy;
use crate::schema::{AttrType, Attribute, Mutability, ResourceSchema, Schema};

pub mod query;

type Obj = Map<String, Value>;

/// A dialect rule: one documented non-RFC request shape and the RFC operation it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `"op": "Replace"` → `"replace"` (Entra).
    CapitalisedOps,
    /// `"True"` / `"false"` where the schema says boolean → `true` / `false` (Entra).
    BooleanStrings,
    /// `remove` of `members` (or another multi-valued attribute) with a `value` list →
    /// one `members[value eq "id"]` removal per listed value (Entra's default mode).
    RemoveWithValue,
    /// Pathless add/replace whose value keys are paths (`name.givenName`,
    /// `urn:…:enterprise:2.0:User:employeeNumber`) or schema containers → one operation per
    /// path (Entra with `aadOptscim062020`).
    PathKeys,
    /// `manager: "271"` → `manager: {"value": "271"}` (Entra), in PATCH and POST/PUT bodies.
    BareManager,
    /// `roles` sent as JSON text inside a string → the parsed values (Entra app roles).
    JsonStringRoles,
    /// `add` with a value-filter path → update the matching value, or create it (upsert).
    AddFilterUpsert,
    /// A pathless PATCH value holding the container of a schema this resource type does not
    /// have (Okta's `urn:okta:custom:group:1.0`) → that container is ignored, as POST and PUT
    /// bodies ignore it.
    UnknownExtensions,
    /// An `attributes` query entry with a value filter (`emails[type eq "work"]`, Microsoft's
    /// validator) → the attribute it filters (`emails`); see [`query`].
    FilteredAttributes,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::CapitalisedOps,
        Rule::BooleanStrings,
        Rule::RemoveWithValue,
        Rule::PathKeys,
        Rule::BareManager,
        Rule::JsonStringRoles,
        Rule::AddFilterUpsert,
        Rule::UnknownExtensions,
        Rule::FilteredAttributes,
    ];

    /// The name logs use.
    pub fn name(self) -> &'static str {
        match self {
            Rule::CapitalisedOps => "capitalised-ops",
            Rule::BooleanStrings => "boolean-strings",
            Rule::RemoveWithValue => "remove-with-value",
            Rule::PathKeys => "path-keys",
            Rule::BareManager => "bare-manager",
            Rule::JsonStringRoles => "json-string-roles",
            Rule::AddFilterUpsert => "add-filter-upsert",
            Rule::UnknownExtensions => "unknown-extensions",
            Rule::FilteredAttributes => "filtered-attributes",
        }
    }

    /// The tenant policy key that switches the rule.
    pub fn policy_key(self) -> &'static str {
        match self {
            Rule::CapitalisedOps => "dialect.capitalised-ops",
            // Older than the normaliser; kept so existing tenant policies keep working.
            Rule::BooleanStrings => "coerce-boolean-strings",
            Rule::RemoveWithValue => "dialect.remove-with-value",
            Rule::PathKeys => "dialect.path-keys",
            Rule::BareManager => "dialect.bare-manager",
            Rule::JsonStringRoles => "dialect.json-string-roles",
            Rule::AddFilterUpsert => "dialect.add-filter-upsert",
            Rule::UnknownExtensions => "dialect.unknown-extensions",
            Rule::FilteredAttributes => "dialect.filtered-attributes",
        }
    }

    pub fn enabled(self, policy: &Policy) -> bool {
        let d = &policy.dialect;
        match self {
            Rule::CapitalisedOps => d.capitalised_ops,
            Rule::BooleanStrings => policy.coerce_boolean_strings,
            Rule::RemoveWithValue => d.remove_with_value,
            Rule::PathKeys => d.path_keys,
            Rule::BareManager => d.bare_manager,
            Rule::JsonStringRoles => d.json_string_roles,
            Rule::AddFilterUpsert => d.add_filter_upsert,
            Rule::UnknownExtensions => d.unknown_extensions,
            Rule::FilteredAttributes => d.filtered_attributes,
        }
    }
}

/// One rewrite: the rule and where in the body it applied (`Operations[0].active`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub rule: Rule,
    pub at: String,
}

/// Normalises a request body for `rs` (a resource body for POST/PUT, a `PatchOp` for PATCH;
/// `None` for `.search` bodies, which no IdP sends in a dialect) and logs the rules that fired.
pub fn normalize(
    body: Value,
    method: &str,
    rs: Option<&ResourceSchema>,
    policy: &Policy,
) -> ScimResult<Value> {
    let (body, fired) = rewrite(body, method, rs, policy)?;
    log(&fired);
    Ok(body)
}

/// Logs the rules that fired, one line per rule with the places it rewrote.
fn log(fired: &[Fired]) {
    for rule in Rule::ALL {
        let places: Vec<&str> = fired
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| f.at.as_str())
            .collect();
        if !places.is_empty() {
            diag::emit(
                Level::Debug,
                &format!(
                    "dialect rule '{}' rewrote {} to the RFC 7644 form",
                    rule.name(),
                    places.join(", ")
                ),
            );
        }
    }
}

/// Records a non-RFC shape at `at` in `fired` when its rule is on for `policy`; else the strict
/// error `refuse` gives, naming the rule and its policy key.
fn permit(
    rule: Rule,
    policy: &Policy,
    fired: &mut Vec<Fired>,
    at: &str,
    refuse: impl FnOnce() -> ScimError,
) -> ScimResult<()> {
    if !rule.enabled(policy) {
        let mut e = refuse();
        e.detail = format!(
            "{} (the '{}' dialect rule is off for this organization: {} is false)",
            e.detail,
            rule.name(),
            rule.policy_key()
        );
        return Err(e);
    }
    fired.push(Fired {
        rule,
        at: at.to_string(),
    });
    Ok(())
}

/// [`normalize`] without logging: the rewritten body and what fired.
pub fn rewrite(
    mut body: Value,
    method: &str,
    rs: Option<&ResourceSchema>,
    policy: &Policy,
) -> ScimResult<(Value, Vec<Fired>)> {
    let Some(rs) = rs else {
        return Ok((body, Vec::new()));
    };
    let mut n = Normaliser {
        rs,
        policy,
        fired: Vec::new(),
    };
    if method.eq_ignore_ascii_case("PATCH") {
        n.patch_op(&mut body)?;
    } else if let Value::Object(obj) = &mut body {
        n.members(obj, None, "")?;
    }
    Ok((body, n.fired))
}

struct Normaliser<'a> {
    rs: &'a ResourceSchema,
    policy: &'a Policy,
    fired: Vec<Fired>,
}

/// What a PATCH path designates, as far as value shapes are concerned.
enum Target<'a> {
    Extension(&'a Schema),
    Attr {
        attr: &'a Attribute,
        filtered: bool,
        sub: Option<&'a Attribute>,
    },
}

/// A pathless value member, sorted for [`Rule::PathKeys`].
enum Key<'a> {
    /// An attribute name, `schemas`, or something the engine should judge (unknown, read-only).
    Plain,
    /// A path: dotted or URN-qualified.
    Path,
    /// A schema container (an extension URN or the core schema URN).
    Container(&'a str),
    /// The container of a schema this resource type does not have.
    Foreign,
}

impl<'a> Normaliser<'a> {
    /// Records a non-RFC shape: allowed when its rule is on, else the strict error.
    fn allow(
        &mut self,
        rule: Rule,
        at: &str,
        refuse: impl FnOnce() -> ScimError,
    ) -> ScimResult<()> {
        permit(rule, self.policy, &mut self.fired, at, refuse)
    }

    // ---- attribute values (POST/PUT bodies and PATCH values) ----

    /// The members of a resource-shaped object: top-level attributes and extension containers
    /// (`scope` `None`), or the attributes of one schema.
    fn members(&mut self, obj: &mut Obj, scope: Option<&'a Schema>, at: &str) -> ScimResult<()> {
        let rs = self.rs;
        for (key, v) in obj.iter_mut() {
            let label = join(at, key);
            let attr = match scope {
                Some(schema) => schema.attribute(key),
                None => {
                    let container = rs
                        .extension(key)
                        .or_else(|| key.eq_ignore_ascii_case(&rs.core.id).then_some(&rs.core));
                    if let Some(schema) = container {
                        if let Value::Object(inner) = v {
                            self.members(inner, Some(schema), &label)?;
                        }
                        continue;
                    }
                    rs.core.attribute(key)
                }
            };
            if let Some(attr) = attr {
                self.value(attr, v, &label)?;
            }
        }
        Ok(())
    }

    /// One attribute's value, by its schema type.
    fn value(&mut self, attr: &'a Attribute, v: &mut Value, at: &str) -> ScimResult<()> {
        match attr.ty {
            AttrType::Boolean if !attr.multi_valued => self.boolean(v, at),
            AttrType::Complex if attr.multi_valued => {
                self.json_text(attr, v, at)?;
                if let Value::Array(items) = v {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.element(attr, item, &format!("{at}[{i}]"))?;
                    }
                    return Ok(());
                }
                self.element(attr, v, at)
            }
            AttrType::Complex => {
                self.bare_complex(attr, v, at)?;
                match v {
                    Value::Object(m) => self.subs(attr, m, at),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// One element of a multi-valued complex attribute.
    fn element(&mut self, attr: &'a Attribute, item: &mut Value, at: &str) -> ScimResult<()> {
        if item.is_string() {
            self.json_text(attr, item, at)?;
        }
        self.json_role_value(attr, item, at);
        match item {
            Value::Object(m) => self.subs(attr, m, at),
            _ => Ok(()),
        }
    }

    fn subs(&mut self, attr: &'a Attribute, m: &mut Obj, at: &str) -> ScimResult<()> {
        for (k, x) in m.iter_mut() {
            if let Some(sub) = attr.sub(k) {
                self.value(sub, x, &format!("{at}.{}", sub.name))?;
            }
        }
        Ok(())
    }

    /// [`Rule::BooleanStrings`]. Other strings are left for the validator to refuse.
    fn boolean(&mut self, v: &mut Value, at: &str) -> ScimResult<()> {
        let Value::String(s) = v else { return Ok(()) };
        let b = if s.eq_ignore_ascii_case("true") {
            true
        } else if s.eq_ignore_ascii_case("false") {
            false
        } else {
            return Ok(());
        };
        let text = s.clone();
        self.allow(Rule::BooleanStrings, at, || {
            ScimError::invalid_value(format!(
                "{at}: must be a boolean (true or false), not the string \"{text}\""
            ))
        })?;
        *v = Value::Bool(b);
        Ok(())
    }

    /// [`Rule::BareManager`]: a scalar for a single-valued complex attribute with a `value`
    /// sub-attribute (in the schemas scimlet has, only the enterprise `manager`).
    fn bare_complex(&mut self, attr: &Attribute, v: &mut Value, at: &str) -> ScimResult<()> {
        let Some(value_attr) = attr.sub("value") else {
            return Ok(());
        };
        if !matches!(v, Value::String(_) | Value::Number(_)) {
            return Ok(());
        }
        self.allow(Rule::BareManager, at, || {
            ScimError::invalid_value(format!(
                "{at}: must be an object such as {{\"value\": \"<id>\"}}, not a bare value"
            ))
        })?;
        let mut wrapped = Map::new();
        wrapped.insert(value_attr.name.clone(), v.take());
        *v = Value::Object(wrapped);
        Ok(())
    }

    /// [`Rule::JsonStringRoles`]: `roles` (or one of its elements) given as JSON text, e.g.
    /// `"[{\"value\":\"admin\",\"primary\":true}]"`. RFC-wise a string is not a role object,
    /// so with the rule off this is refused.
    fn json_text(&mut self, attr: &Attribute, v: &mut Value, at: &str) -> ScimResult<()> {
        if !is_roles(attr) {
            return Ok(());
        }
        let Some(parsed) = v.as_str().and_then(json_in_string) else {
            return Ok(());
        };
        self.allow(Rule::JsonStringRoles, at, || {
            ScimError::invalid_value(format!(
                "{at}: must be role objects such as [{{\"value\": \"admin\"}}], not JSON text inside a string"
            ))
        })?;
        *v = parsed;
        Ok(())
    }

    /// [`Rule::JsonStringRoles`] for Entra's app-role element
    /// `{"value": "{\"id\":\"…\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}`: the inner
    /// object is the role. A string `value` is RFC-valid, so with the rule off it stays a string.
    fn json_role_value(&mut self, attr: &Attribute, item: &mut Value, at: &str) {
        if !is_roles(attr) || !Rule::JsonStringRoles.enabled(self.policy) {
            return;
        }
        let Value::Object(m) = item else { return };
        let Some(key) = m.keys().find(|k| k.eq_ignore_ascii_case("value")).cloned() else {
            return;
        };
        let inner = match m.get(&key).and_then(Value::as_str).and_then(json_in_string) {
            Some(Value::Object(inner)) if inner.keys().any(|k| k.eq_ignore_ascii_case("value")) => {
                inner
            }
            _ => return,
        };
        m.remove(&key);
        for (k, x) in inner {
            m.retain(|existing, _| !existing.eq_ignore_ascii_case(&k));
            m.insert(k, x);
        }
        self.fired.push(Fired {
            rule: Rule::JsonStringRoles,
            at: format!("{at}.value"),
        });
    }

    // ---- PATCH ----

    fn patch_op(&mut self, body: &mut Value) -> ScimResult<()> {
        let Some(Value::Array(ops)) = body
            .as_object_mut()
            .and_then(|o| get_ci_mut(o, "Operations"))
        else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in std::mem::take(ops).into_iter().enumerate() {
            out.extend(self.operation(op, &format!("Operations[{i}]"))?);
        }
        *ops = out;
        Ok(())
    }

    /// One operation, as one or more RFC operations. Shapes the engine must judge (a missing or
    /// unknown op, a path that is not a string or does not parse) pass through untouched.
    fn operation(&mut self, op: Value, at: &str) -> ScimResult<Vec<Value>> {
        let Value::Object(mut o) = op else {
            return Ok(vec![op]);
        };
        let Some(kind) = self.op_name(&mut o, at)? else {
            return Ok(vec![Value::Object(o)]);
        };
        let path = match get_ci(&o, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Ok(vec![Value::Object(o)]),
        };
        // Taken, not cloned: Entra sends member lists of thousands; the op is rebuilt below.
        let value = take_ci(&mut o, "value");
        let parts = match (&path, value) {
            (None, Some(Value::Object(v))) if kind != "remove" => self.split_path_keys(v, at)?,
            (_, value) => vec![(path.clone(), value)],
        };
        let mut out = Vec::with_capacity(parts.len());
        for (path, mut value) in parts {
            let target = path.as_deref().and_then(|p| self.target(p));
            // Logs and errors name the attribute, never a filter: its literals are user data.
            let label = match &path {
                Some(p) => format!("{at} ({})", p.split('[').next().unwrap_or_default()),
                None => at.to_string(),
            };
            if let Some(v) = value.as_mut() {
                self.op_value(path.is_some(), target.as_ref(), v, &label)?;
            }
            if let (Some(p), Some(t)) = (&path, &target) {
                if let Some(ops) = self.remove_with_value(kind, p, t, value.as_ref(), &label)? {
                    out.extend(ops);
                    continue;
                }
                self.add_filter(kind, p, t, &label)?;
            }
            out.push(make_op(kind, path, value));
        }
        Ok(out)
    }

    /// [`Rule::CapitalisedOps`]. Returns the op in canonical form, or `None` when it is not one
    /// (then the engine reports it).
    fn op_name(&mut self, o: &mut Obj, at: &str) -> ScimResult<Option<&'static str>> {
        let Some(Value::String(name)) = get_ci_mut(o, "op") else {
            return Ok(None);
        };
        let kind = ["add", "remove", "replace"]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k));
        let Some(kind) = kind else { return Ok(None) };
        if name != kind {
            let sent = name.clone();
            self.allow(Rule::CapitalisedOps, &format!("{at}.op"), || {
                ScimError::invalid_syntax(format!(
                    "{at}: unknown op '{sent}': expected add, remove or replace"
                ))
            })?;
            *name = kind.to_string();
        }
        Ok(Some(kind))
    }

    fn target(&self, path: &str) -> Option<Target<'a>> {
        let rs = self.rs;
        match patch::parse_path(path, rs).ok()? {
            PatchPath::Extension(uri) => Some(Target::Extension(rs.extension(&uri)?)),
            PatchPath::Attr { attr, filter, sub } => {
                let r = rs.resolve(&attr).ok()?;
                let sub = match sub {
                    Some(s) => Some(r.attr.sub(&s)?),
                    None => r.sub,
                };
                Some(Target::Attr {
                    attr: r.attr,
                    filtered: filter.is_some(),
                    sub,
                })
            }
        }
    }

    /// Value fixes for what the operation targets.
    fn op_value(
        &mut self,
        has_path: bool,
        target: Option<&Target<'a>>,
        v: &mut Value,
        at: &str,
    ) -> ScimResult<()> {
        match (has_path, target) {
            (false, _) => match v {
                Value::Object(m) => self.members(m, None, at),
                _ => Ok(()),
            },
            (true, None) => Ok(()),
            (true, Some(Target::Extension(ext))) => match v {
                Value::Object(m) => self.members(m, Some(ext), at),
                _ => Ok(()),
            },
            (true, Some(Target::Attr { sub: Some(sub), .. })) => self.value(sub, v, at),
            (
                true,
                Some(Target::Attr {
                    attr,
                    filtered: true,
                    sub: None,
                }),
            ) if attr.multi_valued => self.element(attr, v, at),
            (true, Some(Target::Attr { attr, .. })) => self.value(attr, v, at),
        }
    }

    /// [`Rule::PathKeys`]: splits a pathless value into a pathless part (attribute names) and
    /// one operation per path key and per container attribute. Containers are RFC-valid, so
    /// with the rule off only path keys are refused.
    fn split_path_keys(
        &mut self,
        v: Obj,
        at: &str,
    ) -> ScimResult<Vec<(Option<String>, Option<Value>)>> {
        let kinds: Vec<Key<'a>> = v.iter().map(|(k, x)| self.key_kind(k, x)).collect();
        let (v, kinds) = self.drop_foreign(v, kinds, at);
        let has_path = kinds.iter().any(|k| matches!(k, Key::Path));
        let has_container = kinds.iter().any(|k| matches!(k, Key::Container(_)));
        if has_path {
            let keys: Vec<&str> = v
                .keys()
                .zip(&kinds)
                .filter(|(_, k)| matches!(k, Key::Path))
                .map(|(k, _)| k.as_str())
                .collect();
            let list = keys.join("', '");
            self.allow(Rule::PathKeys, at, || {
                ScimError::invalid_value(format!(
                    "{at}: '{list}' in a pathless value is a path, not an attribute name; send one operation per path"
                ))
            })?;
        } else if has_container && Rule::PathKeys.enabled(self.policy) {
            self.fired.push(Fired {
                rule: Rule::PathKeys,
                at: at.to_string(),
            });
        } else {
            return Ok(vec![(None, Some(Value::Object(v)))]);
        }
        let mut plain = Map::new();
        let mut ops = Vec::new();
        for ((key, x), kind) in v.into_iter().zip(kinds) {
            match kind {
                Key::Plain | Key::Foreign => {
                    plain.insert(key, x);
                }
                Key::Path => ops.push((Some(key), Some(x))),
                Key::Container(uri) => match x {
                    Value::Object(inner) => {
                        for (k, y) in inner {
                            if k.eq_ignore_ascii_case("schemas") {
                                continue;
                            }
                            ops.push((Some(format!("{uri}:{k}")), Some(y)));
                        }
                    }
                    other => ops.push((Some(uri.to_string()), Some(other))),
                },
            }
        }
        if !plain.is_empty() {
            ops.insert(0, (None, Some(Value::Object(plain))));
        }
        Ok(ops)
    }

    /// [`Rule::UnknownExtensions`]; with the rule off the engine refuses the unknown key.
    fn drop_foreign(&mut self, v: Obj, kinds: Vec<Key<'a>>, at: &str) -> (Obj, Vec<Key<'a>>) {
        if !kinds.iter().any(|k| matches!(k, Key::Foreign))
            || !Rule::UnknownExtensions.enabled(self.policy)
        {
            return (v, kinds);
        }
        let mut kept = (Map::new(), Vec::new());
        for ((key, x), kind) in v.into_iter().zip(kinds) {
            if matches!(kind, Key::Foreign) {
                self.fired.push(Fired {
                    rule: Rule::UnknownExtensions,
                    at: join(at, &key),
                });
                continue;
            }
            kept.0.insert(key, x);
            kept.1.push(kind);
        }
        kept
    }

    fn key_kind(&self, key: &str, value: &Value) -> Key<'a> {
        let rs = self.rs;
        if let Some(ext) = rs.extension(key) {
            return Key::Container(ext.id.as_str());
        }
        if key.eq_ignore_ascii_case(&rs.core.id) {
            return Key::Container(rs.core.id.as_str());
        }
        if !key.contains(['.', ':', '[']) {
            return Key::Plain;
        }
        if value.is_object() && looks_like_schema_uri(key) && self.target(key).is_none() {
            return Key::Foreign;
        }
        // Read-only and unknown targets stay in the pathless value, where the engine accepts a
        // read-only attribute carrying its current value and names an unknown one.
        match self.target(key) {
            Some(Target::Attr { attr, sub, .. })
                if attr.mutability != Mutability::ReadOnly
                    && sub.is_none_or(|s| s.mutability != Mutability::ReadOnly) =>
            {
                Key::Path
            }
            _ => Key::Plain,
        }
    }

    /// [`Rule::RemoveWithValue`]: a `remove` without a filter on a multi-valued attribute, with
    /// a value, becomes one filtered removal per listed value. Never "remove all": with the rule
    /// off it is refused. `None` when the operation is not of that shape.
    fn remove_with_value(
        &mut self,
        kind: &str,
        path: &str,
        t: &Target<'a>,
        value: Option<&Value>,
        at: &str,
    ) -> ScimResult<Option<Vec<Value>>> {
        let Target::Attr {
            attr,
            filtered: false,
            sub: None,
        } = *t
        else {
            return Ok(None);
        };
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        if kind != "remove" || !attr.multi_valued {
            return Ok(None);
        }
        self.allow(Rule::RemoveWithValue, at, || {
            ScimError::invalid_syntax(format!(
                "{at}: a 'remove' of '{path}' carries a 'value'; name what to remove with a filter path such as {path}[value eq \"…\"] (a remove without one would remove every value)"
            ))
        })?;
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().filter(|x| !x.is_null()).collect(),
            other => vec![other],
        };
        if items.is_empty() {
            // Nothing listed: the engine removes nothing; there is no RFC op for "nothing".
            return Ok(Some(vec![make_op(
                kind,
                Some(path.to_string()),
                Some(value.clone()),
            )]));
        }
        let mut ops = Vec::with_capacity(items.len());
        for item in items {
            let filter = element_filter(attr, item).ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "{at}: each value to remove needs a 'value' (for members: the user's id)"
                ))
            })?;
            ops.push(make_op(kind, Some(format!("{path}[{filter}]")), None));
        }
        Ok(Some(ops))
    }

    /// [`Rule::AddFilterUpsert`]: the engine updates the matching value or creates it from the
    /// filter's `eq` terms; with the rule off, RFC 7644 §3.5.2.1 add takes no filter.
    fn add_filter(&mut self, kind: &str, path: &str, t: &Target<'a>, at: &str) -> ScimResult<()> {
        let Target::Attr {
            attr,
            filtered: true,
            ..
        } = *t
        else {
            return Ok(());
        };
        if kind != "add" {
            return Ok(());
        }
        let name = attr.name.clone();
        self.allow(Rule::AddFilterUpsert, at, || {
            ScimError::invalid_path(format!(
                "{at}: 'add' with a value filter ('{path}') is not an RFC 7644 operation; use 'replace' for an existing value or 'add' to '{name}'"
            ))
        })
    }
}

/// The filter that selects one listed value: `value eq "id"` for members (a member is its id),
/// else every simple sub-attribute given, joined by `and`.
fn element_filter(attr: &Attribute, item: &Value) -> Option<String> {
    let literal = |v: &Value| serde_json::to_string(v).ok();
    match item {
        Value::Object(m) => {
            let mut terms = Vec::new();
            for (k, x) in m {
                let Some(sub) = attr.sub(k) else { continue };
                let identity_only = attr.name == "members" && sub.name != "value";
                if identity_only || !(x.is_string() || x.is_number() || x.is_boolean()) {
                    continue;
                }
                terms.push(format!("{} eq {}", sub.name, literal(x)?));
            }
            (!terms.is_empty()).then(|| terms.join(" and "))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            if attr.ty == AttrType::Complex && attr.sub("value").is_none() {
                return None;
            }
            Some(format!("value eq {}", literal(item)?))
        }
        _ => None,
    }
}

/// A schema id: a URN (`urn:okta:custom:group:1.0`) or Microsoft's URL-style ids.
fn looks_like_schema_uri(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("urn:") || k.starts_with("http://") || k.starts_with("https://")
}

fn is_roles(attr: &Attribute) -> bool {
    attr.multi_valued && attr.ty == AttrType::Complex && attr.name == "roles"
}

/// A JSON array or object written inside a string, else `None`.
fn json_in_string(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if !(t.starts_with('[') || t.starts_with('{')) {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(|v| v.is_array() || v.is_object())
}

fn make_op(kind: &str, path: Option<String>, value: Option<Value>) -> Value {
    let mut o = Map::new();
    o.insert("op".into(), kind.into());
    if let Some(p) = path {
        o.insert("path".into(), p.into());
    }
    if let Some(v) = value {
        o.insert("value".into(), v);
    }
    Value::Object(o)
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn get_ci<'v>(m: &'v Obj, name: &str) -> Option<&'v Value> {
    m.get(name).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn take_ci(m: &mut Obj, name: &str) -> Option<Value> {
    let key = m.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    m.remove(&key)
}

fn get_ci_mut<'v>(m: &'v mut Obj, name: &str) -> Option<&'v mut Value> {
    let key = m.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    m.get_mut(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::http::{handle, Request, Response};
    use crate::schema::urn;
    use crate::store::MemStore;
    use serde_json::json;

    const ENTERPRISE: &str = urn::ENTERPRISE_USER;

    fn policy(overrides: &str) -> Policy {
        Policy::from_json(overrides).unwrap()
    }

    fn users(p: &Policy) -> ResourceSchema {
        p.user_schema()
    }

    fn patch(ops: Value) -> Value {
        json!({"schemas": [urn::PATCH_OP], "Operations": ops})
    }

    /// Rewrites a PATCH for users under `overrides`; the operations and the rules that fired.
    fn user_patch(overrides: &str, ops: Value) -> ScimResult<(Value, Vec<Rule>)> {
        let p = policy(overrides);
        let (body, fired) = rewrite(patch(ops), "PATCH", Some(&users(&p)), &p)?;
        Ok((body["Operations"].clone(), rules(&fired)))
    }

    fn group_patch(overrides: &str, ops: Value) -> ScimResult<(Value, Vec<Rule>)> {
        let p = policy(overrides);
        let (body, fired) = rewrite(patch(ops), "PATCH", Some(&p.group_schema()), &p)?;
        Ok((body["Operations"].clone(), rules(&fired)))
    }

    fn user_body(overrides: &str, method: &str, body: Value) -> ScimResult<(Value, Vec<Rule>)> {
        let p = policy(overrides);
        let (body, fired) = rewrite(body, method, Some(&users(&p)), &p)?;
        Ok((body, rules(&fired)))
    }

    fn rules(fired: &[Fired]) -> Vec<Rule> {
        let mut r: Vec<Rule> = fired.iter().map(|f| f.rule).collect();
        r.dedup();
        r
    }

    fn kind(e: &ScimError) -> Option<ScimType> {
        e.scim_type
    }

    /// The error a switched-off rule gives, checked to name the rule and its policy key.
    fn refused(r: ScimResult<(Value, Vec<Rule>)>, rule: Rule) -> ScimError {
        let e = r.expect_err("the rule is off, so the shape is refused");
        assert_eq!(e.status, 400);
        assert!(e.detail.contains(rule.name()), "{}", e.detail);
        assert!(e.detail.contains(rule.policy_key()), "{}", e.detail);
        e
    }

    // ---- capitalised ops ----

    #[test]
    fn capitalised_ops_are_lowered_when_on() {
        let (ops, fired) = user_patch(
            "",
            json!([
                {"op": "Replace", "path": "displayName", "value": "Ada"},
                {"op": "ADD", "path": "nickName", "value": "Babs"},
                {"op": "remove", "path": "title"}
            ]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "replace", "path": "displayName", "value": "Ada"},
                {"op": "add", "path": "nickName", "value": "Babs"},
                {"op": "remove", "path": "title"}
            ])
        );
        assert_eq!(fired, [Rule::CapitalisedOps]);
    }

    #[test]
    fn capitalised_ops_are_invalid_syntax_when_off() {
        let off = r#"{"dialect":{"capitalised-ops":false}}"#;
        let e = refused(
            user_patch(
                off,
                json!([{"op": "Replace", "path": "displayName", "value": "A"}]),
            ),
            Rule::CapitalisedOps,
        );
        assert_eq!(kind(&e), Some(ScimType::InvalidSyntax));
        // Lower-case ops are RFC 7644 and pass untouched; unknown ops are left to the engine.
        let rfc = json!([{"op": "replace", "path": "displayName", "value": "A"}, {"op": "merge"}]);
        let (ops, fired) = user_patch(off, rfc.clone()).unwrap();
        assert_eq!((ops, fired), (rfc, vec![]));
    }

    // ---- string booleans ----

    #[test]
    fn boolean_strings_become_booleans_only_where_the_schema_says_boolean() {
        let body = json!({
            "schemas": [urn::USER], "userName": "a", "Active": "False", "nickName": "true",
            "emails": [{"value": "a@x", "primary": "True", "type": "work"}],
            "roles": [{"value": "member", "primary": "TRUE", "display": "false"}],
        });
        let (out, fired) = user_body("", "POST", body).unwrap();
        assert_eq!(out["Active"], false);
        assert_eq!(
            out["nickName"], "true",
            "a string attribute keeps its string"
        );
        assert_eq!(out["emails"][0]["primary"], true);
        assert_eq!(out["roles"][0]["primary"], true);
        assert_eq!(out["roles"][0]["display"], "false");
        assert_eq!(fired, [Rule::BooleanStrings]);

        let (ops, fired) = user_patch(
            "",
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "true"},
                {"op": "replace", "value": {"Active": "true", "displayName": "False"}},
                {"op": "add", "path": "emails", "value": [{"value": "b@x", "Primary": "false"}]},
                {"op": "replace", "path": "active", "value": "yes"}
            ]),
        )
        .unwrap();
        assert_eq!(ops[0]["value"], false);
        assert_eq!(ops[1]["value"], true);
        assert_eq!(
            ops[2]["value"],
            json!({"Active": true, "displayName": "False"})
        );
        assert_eq!(ops[3]["value"][0]["Primary"], false);
        assert_eq!(
            ops[4]["value"], "yes",
            "not a boolean string: the validator judges it"
        );
        assert_eq!(fired, [Rule::CapitalisedOps, Rule::BooleanStrings]);
    }

    #[test]
    fn boolean_strings_are_invalid_value_when_off() {
        let off = r#"{"coerce-boolean-strings":false}"#;
        let e = refused(
            user_patch(
                off,
                json!([{"op": "replace", "path": "active", "value": "False"}]),
            ),
            Rule::BooleanStrings,
        );
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        let post = json!({"userName": "a", "emails": [{"value": "a@x", "primary": "True"}]});
        let e = refused(user_body(off, "POST", post), Rule::BooleanStrings);
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        assert!(e.detail.contains("emails[0].primary"), "{}", e.detail);
        let rfc = json!([{"op": "replace", "path": "active", "value": false}]);
        assert_eq!(user_patch(off, rfc.clone()).unwrap(), (rfc, vec![]));
    }

    // ---- remove with value ----

    #[test]
    fn remove_with_value_becomes_one_filtered_removal_per_member() {
        let (ops, fired) = group_patch(
            "",
            json!([{"op": "Remove", "path": "members", "value": [
                {"$ref": null, "value": "f648f8d5ea4e4cd38e9c"},
                {"value": "say \"hi\"", "display": "x"},
                "bare-id"
            ]}]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "remove", "path": "members[value eq \"f648f8d5ea4e4cd38e9c\"]"},
                {"op": "remove", "path": "members[value eq \"say \\\"hi\\\"\"]"},
                {"op": "remove", "path": "members[value eq \"bare-id\"]"}
            ])
        );
        assert_eq!(fired, [Rule::CapitalisedOps, Rule::RemoveWithValue]);
        // Each rewritten path is a valid RFC path that selects exactly that member.
        let rs = policy("").group_schema();
        for op in ops.as_array().unwrap() {
            patch::parse_path(op["path"].as_str().unwrap(), &rs).unwrap();
        }
        // Other multi-valued attributes: every given sub-attribute must match.
        let (ops, _) = user_patch(
            "",
            json!([{"op": "remove", "path": "emails", "value": [{"value": "a@x", "type": "work", "primary": "true"}]}]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([{"op": "remove", "path": "emails[value eq \"a@x\" and type eq \"work\" and primary eq true]"}])
        );
    }

    #[test]
    fn remove_with_value_never_removes_everything() {
        // Off: refused, not read as "remove all".
        let off = r#"{"dialect.remove-with-value":false}"#;
        let ops = json!([{"op": "remove", "path": "members", "value": [{"value": "u1"}]}]);
        let e = refused(group_patch(off, ops), Rule::RemoveWithValue);
        assert_eq!(kind(&e), Some(ScimType::InvalidSyntax));
        // On: an element without an id is refused rather than guessed.
        let bad = json!([{"op": "remove", "path": "members", "value": [{"display": "x"}]}]);
        let e = group_patch("", bad).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        // The RFC forms pass untouched in both settings.
        for p in ["", off] {
            let rfc = json!([{"op": "remove", "path": "members[value eq \"u1\"]"}, {"op": "remove", "path": "members"}]);
            assert_eq!(group_patch(p, rfc.clone()).unwrap(), (rfc, vec![]));
        }
    }

    #[test]
    fn remove_with_value_through_the_handler_removes_exactly_those_members() {
        for (overrides, status) in [("", 200), (r#"{"dialect.remove-with-value":false}"#, 400)] {
            let t = Tenant::new(overrides);
            let ids: Vec<String> = ["a", "b", "c"].iter().map(|n| t.user(n)).collect();
            let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
            let g = t.ok(
                "POST",
                "/Groups",
                json!({"displayName": "Eng", "members": members}),
            );
            let gid = g["id"].as_str().unwrap();
            let body = patch(
                json!([{"op": "remove", "path": "members", "value": [{"$ref": null, "value": ids[1]}]}]),
            );
            let resp = t.call("PATCH", &format!("/Groups/{gid}"), Some(body));
            assert_eq!(resp.status, status, "{}", resp.json_body());
            let stored = t.ok_get(&format!("/Groups/{gid}"));
            let mut left: Vec<&str> = stored["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["value"].as_str().unwrap())
                .collect();
            left.sort();
            let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
            if status == 200 {
                want.retain(|id| *id != ids[1]);
            }
            want.sort();
            assert_eq!(left, want, "policy {overrides}");
        }
    }

    // ---- path keys ----

    #[test]
    fn path_keys_become_one_operation_per_path() {
        let emp = format!("{ENTERPRISE}:employeeNumber");
        let (ops, fired) = user_patch(
            "",
            json!([{"op": "replace", "value": {
                "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua", emp.clone(): "Aklq"
            }}]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "replace", "value": {"displayName": "Bjfe"}},
                {"op": "replace", "path": "name.givenName", "value": "Kkom"},
                {"op": "replace", "path": "name.familyName", "value": "Unua"},
                {"op": "replace", "path": emp, "value": "Aklq"}
            ])
        );
        assert_eq!(fired, [Rule::PathKeys]);
        // Containers, including the core schema's, become per-attribute paths.
        let (ops, fired) = user_patch(
            "",
            json!([{"op": "add", "value": {
                ENTERPRISE: {"department": "R&D", "manager": "271", "schemas": [ENTERPRISE]},
                urn::USER: {"nickName": "Babs"}
            }}]),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"},
                {"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "271"}},
                {"op": "add", "path": format!("{}:nickName", urn::USER), "value": "Babs"}
            ])
        );
        assert_eq!(fired, [Rule::PathKeys, Rule::BareManager]);
        // Read-only and unknown keys stay where the engine can judge them.
        let (ops, _) = user_patch(
            "",
            json!([{"op": "replace", "value": {"meta.lastModified": "x", "nope.x": 1, "name.givenName": "A"}}]),
        )
        .unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "replace", "value": {"meta.lastModified": "x", "nope.x": 1}})
        );
        assert_eq!(ops[1]["path"], "name.givenName");
    }

    #[test]
    fn path_keys_are_invalid_value_when_off_but_containers_stay_rfc() {
        let off = r#"{"dialect":{"path-keys":false}}"#;
        let e = refused(
            user_patch(
                off,
                json!([{"op": "replace", "value": {"name.givenName": "K"}}]),
            ),
            Rule::PathKeys,
        );
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        assert!(e.detail.contains("name.givenName"), "{}", e.detail);
        let container = json!([{"op": "replace", "value": {ENTERPRISE: {"department": "R&D"}}}]);
        assert_eq!(
            user_patch(off, container.clone()).unwrap(),
            (container, vec![])
        );
    }

    #[test]
    fn path_keys_through_the_handler_store_each_attribute() {
        let t = Tenant::new("");
        let id = t.user("bjfe");
        let body = patch(json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x"},
            {"op": "replace", "value": {
                "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
                format!("{ENTERPRISE}:employeeNumber"): "Aklq"
            }}
        ]));
        let out = t.ok("PATCH", &format!("/Users/{id}"), body);
        let stored = t.ok_get(&format!("/Users/{id}"));
        assert_eq!(out, stored);
        assert_eq!(stored["displayName"], "Bjfe");
        assert_eq!(
            stored["name"],
            json!({"givenName": "Kkom", "familyName": "Unua"})
        );
        assert_eq!(stored[ENTERPRISE]["employeeNumber"], "Aklq");
        assert_eq!(stored["emails"][0]["value"], "new@x");
        assert!(stored["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE)));
    }

    // ---- bare manager ----

    #[test]
    fn bare_manager_is_wrapped_in_patch_and_in_bodies() {
        let path = format!("{ENTERPRISE}:manager");
        let (ops, fired) =
            user_patch("", json!([{"op": "Add", "path": path, "value": "271"}])).unwrap();
        assert_eq!(ops[0]["value"], json!({"value": "271"}));
        assert_eq!(fired, [Rule::CapitalisedOps, Rule::BareManager]);
        let body = json!({"userName": "a", ENTERPRISE: {"manager": "271", "department": "R&D"}});
        let (out, fired) = user_body("", "PUT", body).unwrap();
        assert_eq!(out[ENTERPRISE]["manager"], json!({"value": "271"}));
        assert_eq!(out[ENTERPRISE]["department"], "R&D");
        assert_eq!(fired, [Rule::BareManager]);
        // Strings elsewhere are not wrapped: `name` has no `value`, `title` is simple.
        let body = json!({"userName": "a", "name": "Ada", "title": "x"});
        assert_eq!(user_body("", "POST", body.clone()).unwrap(), (body, vec![]));
    }

    #[test]
    fn bare_manager_is_invalid_value_when_off() {
        let off = r#"{"dialect.bare-manager":false}"#;
        let path = format!("{ENTERPRISE}:manager");
        let e = refused(
            user_patch(off, json!([{"op": "add", "path": path, "value": "271"}])),
            Rule::BareManager,
        );
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        let body = json!({"userName": "a", ENTERPRISE: {"manager": "271"}});
        refused(user_body(off, "POST", body), Rule::BareManager);
        let rfc = json!([{"op": "add", "path": path, "value": {"value": "271"}}]);
        assert_eq!(user_patch(off, rfc.clone()).unwrap(), (rfc, vec![]));
    }

    #[test]
    fn bare_manager_through_the_handler_stores_the_manager_object() {
        let t = Tenant::new("");
        let (boss, id) = (t.user("boss"), t.user("ada"));
        let body =
            patch(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}]));
        t.ok("PATCH", &format!("/Users/{id}"), body);
        let stored = t.ok_get(&format!("/Users/{id}"));
        assert_eq!(stored[ENTERPRISE]["manager"]["value"], boss.as_str());
    }

    // ---- roles as JSON text ----

    #[test]
    fn json_string_roles_are_parsed() {
        let (ops, fired) = user_patch(
            "",
            json!([
                {"op": "replace", "path": "roles", "value": "[{\"value\":\"admin\",\"primary\":true}]"},
                {"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"06b07648\",\"value\":\"25\",\"displayName\":\"Role1234\"}", "primary": "False"}]}
            ]),
        )
        .unwrap();
        assert_eq!(
            ops[0]["value"],
            json!([{"value": "admin", "primary": true}])
        );
        assert_eq!(
            ops[1]["value"],
            json!([{"primary": false, "id": "06b07648", "value": "25", "displayName": "Role1234"}])
        );
        assert!(fired.contains(&Rule::JsonStringRoles) && fired.contains(&Rule::BooleanStrings));
        let body = json!({"userName": "a", "roles": "[{\"value\":\"admin\"}]"});
        let (out, fired) = user_body("", "POST", body).unwrap();
        assert_eq!(out["roles"], json!([{"value": "admin"}]));
        assert_eq!(fired, [Rule::JsonStringRoles]);
        // A plain string role value is not JSON and stays.
        let plain = json!([{"op": "add", "path": "roles", "value": [{"value": "admin"}]}]);
        assert_eq!(user_patch("", plain.clone()).unwrap(), (plain, vec![]));
    }

    #[test]
    fn json_string_roles_are_invalid_value_when_off() {
        let off = r#"{"dialect.json-string-roles":false}"#;
        let ops = json!([{"op": "replace", "path": "roles", "value": "[{\"value\":\"admin\"}]"}]);
        let e = refused(user_patch(off, ops), Rule::JsonStringRoles);
        assert_eq!(kind(&e), Some(ScimType::InvalidValue));
        // A string `value` is RFC-valid: it stays a string.
        let element =
            json!([{"op": "add", "path": "roles", "value": [{"value": "{\"value\":\"25\"}"}]}]);
        assert_eq!(user_patch(off, element.clone()).unwrap(), (element, vec![]));
    }

    #[test]
    fn json_string_roles_through_the_handler_set_the_writer_role() {
        let t = Tenant::new(r#"{"profile":"writer"}"#);
        let id = t.user("ada");
        let body = patch(
            json!([{"op": "replace", "path": "roles", "value": "[{\"value\":\"admin\",\"primary\":true}]"}]),
        );
        t.ok("PATCH", &format!("/Users/{id}"), body);
        let stored = t.ok_get(&format!("/Users/{id}"));
        assert_eq!(
            stored["roles"],
            json!([{"value": "admin", "primary": true}])
        );
        assert_eq!(stored[urn::WRITER_USER]["role"], "admin");
    }

    // ---- add with a value filter ----

    #[test]
    fn add_filter_upsert_is_allowed_when_on_and_invalid_path_when_off() {
        let ops =
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555"}]);
        let (out, fired) = user_patch("", ops.clone()).unwrap();
        assert_eq!(out[0]["op"], "add");
        assert_eq!(out[0]["path"], "phoneNumbers[type eq \"work\"].value");
        assert_eq!(fired, [Rule::CapitalisedOps, Rule::AddFilterUpsert]);
        let e = refused(
            user_patch(r#"{"dialect.add-filter-upsert":false}"#, ops),
            Rule::AddFilterUpsert,
        );
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
        // replace through a filter is RFC 7644.
        let rfc = json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "1"}]);
        let off = r#"{"dialect.add-filter-upsert":false}"#;
        assert_eq!(user_patch(off, rfc.clone()).unwrap(), (rfc, vec![]));
    }

    #[test]
    fn add_filter_upsert_through_the_handler_creates_then_updates() {
        let t = Tenant::new("");
        let id = t.user("ada");
        let add = |v: &str| {
            patch(
                json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": v}]),
            )
        };
        t.ok("PATCH", &format!("/Users/{id}"), add("555"));
        t.ok("PATCH", &format!("/Users/{id}"), add("556"));
        let stored = t.ok_get(&format!("/Users/{id}"));
        assert_eq!(
            stored["phoneNumbers"],
            json!([{"type": "work", "value": "556"}])
        );
    }

    // ---- unknown extensions ----

    #[test]
    fn unknown_extension_containers_in_pathless_values_are_ignored_when_on() {
        let ops = json!([{"op": "replace", "value": {
            "displayName": "Eng", "urn:okta:custom:group:1.0": {"description": "d"}
        }}]);
        let (out, fired) = group_patch("", ops.clone()).unwrap();
        assert_eq!(
            out,
            json!([{"op": "replace", "value": {"displayName": "Eng"}}])
        );
        assert_eq!(fired, [Rule::UnknownExtensions]);
        let off = r#"{"dialect.unknown-extensions":false}"#;
        assert_eq!(
            group_patch(off, ops.clone()).unwrap(),
            (ops.clone(), vec![])
        );
        // ... and the engine then refuses the unknown key.
        let t = Tenant::new(off);
        let g = t.ok("POST", "/Groups", json!({"displayName": "Eng"}));
        let resp = t.call(
            "PATCH",
            &format!("/Groups/{}", g["id"].as_str().unwrap()),
            Some(patch(ops)),
        );
        assert_eq!(resp.status, 400, "{}", resp.json_body());
    }

    // ---- RFC shapes, search bodies, logging ----

    #[test]
    fn rfc_bodies_pass_untouched() {
        let body = json!({
            "schemas": [urn::USER, ENTERPRISE], "userName": "a", "active": true,
            "emails": [{"value": "a@x", "primary": true}], ENTERPRISE: {"manager": {"value": "b"}},
            "roles": [{"value": "member"}]
        });
        assert_eq!(user_body("", "POST", body.clone()).unwrap(), (body, vec![]));
        let ops = json!([
            {"op": "replace", "value": {"active": false}},
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "remove", "path": "members[value eq \"u2\"]"},
            {"op": "replace", "value": {"id": "g1", "displayName": "Eng"}}
        ]);
        assert_eq!(group_patch("", ops.clone()).unwrap(), (ops, vec![]));
        // Malformed messages are the engine's to report.
        let p = policy("");
        for bad in [
            json!([1]),
            json!({"Operations": "x"}),
            json!({"Operations": [{"op": 5}, "x"]}),
        ] {
            let (out, fired) = rewrite(bad.clone(), "PATCH", Some(&users(&p)), &p).unwrap();
            assert_eq!((out, fired), (bad, vec![]));
        }
    }

    #[test]
    fn search_bodies_are_not_rewritten() {
        let p = policy("");
        let body = json!({"schemas": [urn::SEARCH_REQUEST], "filter": "active eq \"True\""});
        let (out, fired) = rewrite(body.clone(), "POST", None, &p).unwrap();
        assert_eq!((out, fired), (body, vec![]));
    }

    #[test]
    fn every_firing_rule_is_logged_by_name_without_values() {
        let p = policy("");
        let ops = patch(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "displayName", "value": "Secret Name"},
            {"op": "add", "path": "emails[value eq \"secret@x\"].primary", "value": "True"}
        ]));
        let log = diag::capture(|| {
            normalize(ops, "PATCH", Some(&users(&p)), &p).unwrap();
        });
        assert_eq!(log.len(), 3, "{log:?}");
        assert!(log[0].contains("'capitalised-ops'") && log[0].contains("Operations[0].op"));
        assert!(log[0].contains("Operations[1].op"), "{log:?}");
        assert!(log[1].contains("'boolean-strings'") && log[1].contains("active"));
        assert!(log[1].contains("Operations[2] (emails)"), "{log:?}");
        assert!(log[2].contains("'add-filter-upsert'"), "{log:?}");
        let secret = |l: &String| l.contains("Secret") || l.contains("secret@x");
        assert!(!log.iter().any(secret), "{log:?}");
    }

    // ---- shapes that need no rule (RFC 7643/7644 already allow them) ----

    #[test]
    fn pascal_case_names_work_in_patch_values_paths_and_filters() {
        let t = Tenant::new("");
        let id = t.user("ada");
        let body = json!({"Schemas": [urn::PATCH_OP], "Operations": [
            {"Op": "replace", "Path": "Name.GivenName", "Value": "Augusta"},
            {"op": "replace", "value": {"Active": false, "Name": {"FamilyName": "King"}, "Emails": [{"Value": "a@k", "Type": "work", "Primary": true}]}}
        ]});
        t.ok("PATCH", &format!("/Users/{id}"), body);
        let stored = t.ok_get(&format!("/Users/{id}"));
        assert_eq!(
            stored["name"],
            json!({"givenName": "Augusta", "familyName": "King"})
        );
        assert_eq!(stored["active"], false);
        assert_eq!(
            stored["emails"],
            json!([{"value": "a@k", "type": "work", "primary": true}])
        );
        for filter in [
            "UserName%20eq%20%22ADA%22",
            "Emails%5BType%20eq%20%22work%22%5D.Value%20eq%20%22a@k%22",
            "emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22a@k%22",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName%20eq%20%22ada%22",
        ] {
            let list = t.ok_get(&format!("/Users?filter={filter}"));
            assert_eq!(list["totalResults"], 1, "{filter}");
        }
    }

    #[test]
    fn filters_accept_schema_urns_in_paths() {
        for f in [
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\"",
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq \"Eng\"",
            "schemas eq \"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group\"",
            "externalId eq jyoung",
        ] {
            crate::filter::parse_with(f, crate::filter::ParseOptions { lenient_unquoted: true })
                .unwrap_or_else(|e| panic!("{f}: {e:?}"));
        }
        let t = Tenant::new("");
        let id = t.user("ada");
        let body = patch(
            json!([{"op": "add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "7"}]),
        );
        t.ok("PATCH", &format!("/Users/{id}"), body);
        let f = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber%20eq%20%227%22";
        assert_eq!(t.ok_get(&format!("/Users?filter={f}"))["totalResults"], 1);
    }

    #[test]
    fn okta_and_microsoft_extras_are_accepted_and_ignored() {
        let t = Tenant::new("");
        // Okta create: `password` and `groups: []` accepted, never stored or returned.
        let created = t.ok("POST", "/Users", json!({
            "schemas": [urn::USER], "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"}, "groups": [], "password": "1mz050nq", "active": true
        }));
        let id = created["id"].as_str().unwrap();
        let stored = t.ok_get(&format!("/Users/{id}"));
        assert!(stored.get("password").is_none() && created.get("password").is_none());
        assert!(
            !t.store_text().contains("1mz050nq"),
            "the password is never stored"
        );
        // Microsoft's extra group schema and Okta's custom group extension.
        let g = t.ok("POST", "/Groups", json!({
            "schemas": [urn::GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0", "displayName": "Eng", "meta": {"resourceType": "Group"},
            "urn:okta:custom:group:1.0": {"description": "d"}
        }));
        let gid = g["id"].as_str().unwrap().to_string();
        let stored = t.ok_get(&format!("/Groups/{gid}"));
        assert_eq!(
            (
                stored["displayName"].as_str(),
                stored["externalId"].as_str()
            ),
            (Some("Eng"), Some("8aa1a0c0"))
        );
        assert!(stored.get("urn:okta:custom:group:1.0").is_none());
        // Okta's rename with every membership change: same id and name, a no-op.
        let before = stored["meta"]["version"].clone();
        let same = patch(json!([{"op": "replace", "value": {"id": gid, "displayName": "Eng"}}]));
        t.ok("PATCH", &format!("/Groups/{gid}"), same);
        assert_eq!(
            t.ok_get(&format!("/Groups/{gid}"))["meta"]["version"],
            before
        );
        // Entra's compatibility flag and other unknown query parameters are ignored.
        let list = t.ok_get(
            "/Users?aadOptscim062020&filter=userName%20eq%20%22test.user@okta.local%22&foo=bar",
        );
        assert_eq!(list["totalResults"], 1);
    }

    /// A tenant on the in-memory store, served through the HTTP handler.
    struct Tenant {
        store: MemStore,
        policy: String,
    }

    impl Tenant {
        fn new(policy: &str) -> Tenant {
            Tenant {
                store: MemStore::new(),
                policy: policy.to_string(),
            }
        }

        fn call(&self, method: &str, target: &str, body: Option<Value>) -> Response<'_> {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            handle(
                &self.store,
                &Request {
                    method: method.into(),
                    path: path.into(),
                    query: query.into(),
                    headers: vec![("content-type".into(), "application/scim+json".into())],
                    body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
                    base_url: "https://scim.example.com/scim/v2".into(),
                    policy: self.policy.clone(),
                },
            )
        }

        fn ok(&self, method: &str, target: &str, body: Value) -> Value {
            let resp = self.call(method, target, Some(body));
            assert!(
                resp.status < 300,
                "{method} {target}: {} {}",
                resp.status,
                resp.json_body()
            );
            resp.json_body()
        }

        fn ok_get(&self, target: &str) -> Value {
            let resp = self.call("GET", target, None);
            assert_eq!(resp.status, 200, "GET {target}: {}", resp.json_body());
            resp.json_body()
        }

        fn user(&self, name: &str) -> String {
            let body = json!({"userName": name, "name": {"givenName": "G", "familyName": name},
                "emails": [{"value": format!("{name}@x"), "type": "work", "primary": true}]});
            self.ok("POST", "/Users", body)["id"]
                .as_str()
                .unwrap()
                .to_string()
        }

        /// Every stored value, as text (to prove what is never stored).
        fn store_text(&self) -> String {
            use crate::store::{Scan, Store};
            let all = Scan {
                start: String::new(),
                end: "\u{10ffff}".into(),
                skip: 0,
                limit: u32::MAX,
                descending: false,
                keys_only: false,
            };
            let entries = self.store.scan(&all).unwrap();
            assert!(!entries.is_empty());
            entries
                .iter()
                .map(|e| String::from_utf8_lossy(&e.value).into_owned())
                .collect()
        }
    }
}
