//! PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` message, parsing PATCH paths against a resource
//! type's schemas, and applying the operations to a resource document, all or nothing.
//!
//! The resource document is the stored form (see [`crate::resource`]): core attributes at the top
//! level under their canonical names, extension attributes inside the object keyed by the
//! extension URN, plus `id`, `externalId`, `meta` and `schemas`. [`apply`] works on a clone and
//! swaps it in only when every operation succeeded and the document really changed, so a no-op
//! PATCH (re-adding a member, renaming a group to its own name) reports `Ok(false)` and leaves
//! the document byte-for-byte as it was.
//!
//! Beyond the RFC, the engine accepts the request shapes identity providers really send
//! (`scim-field-guide.md` §2.2, §3.2–3.4), each a strict superset of valid RFC input:
//!
//! * `op` values in any case (`"Replace"` from Entra); attribute names in any case, in paths
//!   and in value objects (`{"Active": false}`).
//! * pathless values whose keys are attribute *paths*: dotted (`"name.givenName"`),
//!   URN-qualified (`"urn:…:enterprise:2.0:User:employeeNumber"`) or extension containers
//!   (`"urn:…:enterprise:2.0:User": {…}`) (Entra with `aadOptscim062020`).
//! * read-only attributes inside a pathless value when they carry the current value (Okta sends
//!   the group `id` with every rename); `meta`, `groups` and `schemas` there are ignored.
//! * `remove` of a multi-valued attribute with a `value` list and no filter (Entra's default
//!   member removal) removes exactly the listed values. It never removes everything: that reading
//!   is what wipes whole groups in other servers (MicrosoftDocs/azure-docs#30826).
//! * a bare string for a complex attribute that has a `value` sub-attribute (`manager: "271"`,
//!   `members: "id"`) means `{"value": …}`.
//! * `add` with a value-filter path that matches nothing (`phoneNumbers[type eq "work"].value`)
//!   creates the element from the filter's `eq` terms (upsert), as UnboundID and SCIM-SDK do.
//! * a value filter on a single-valued complex attribute (`manager[value eq "x"]`).
//!
//! Shapes are checked here (an object where a simple value belongs is `invalidValue`); value
//! types are checked afterwards by the caller's validator ([`crate::resource::normalize_input`]).

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::filter::{self, CompareOp, Filter};
use crate::schema::{urn, AttrPath, AttrType, Attribute, Container, Mutability, ResourceSchema};

type Obj = Map<String, Value>;

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }
}

/// A parsed PATCH path (RFC 7644 §3.5.2, Figure 7).
// The filter is held inline, as the module contract specifies; paths are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPath {
    /// attr[.sub] possibly URN-qualified, optionally with a value filter: `emails[type eq "work"].value`, `members[value eq "x"]`
    ///
    /// As produced by [`parse_path`], `attr` is canonical: the attribute's schema spelling, `uri`
    /// set only for extension attributes (to that extension's canonical URN), and `attr.sub`
    /// always `None`: the sub-attribute, with or without a filter, is in `sub`
    /// (`name.familyName` is `attr: name, sub: Some("familyName")`). [`apply`] also accepts a
    /// sub-attribute in `attr.sub`.
    Attr {
        attr: AttrPath,
        filter: Option<Filter>,
        sub: Option<String>,
    },
    /// a whole extension container, e.g. path "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    Extension(String),
}

/// One operation of a PatchOp message.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    /// The value as sent. `Some(Value::Null)` on add is a no-op and on replace unassigns the
    /// target (RFC 7643 §2.5). A `remove` keeps a value only if the client sent one (Entra).
    pub value: Option<Value>,
}

/// Parses a PatchOp message body. `schemas` must contain urn:ietf:params:scim:api:messages:2.0:PatchOp
/// (else 400 invalidSyntax), `Operations` (key case-insensitive) a non-empty array (else 400
/// invalidSyntax); `op` case-insensitive ("Add"/"Replace"/"Remove" from Entra); unknown op → 400
/// invalidSyntax; remove without path → 400 noTarget; add/replace without value → 400
/// invalidSyntax; bad path syntax or an unknown attribute → 400 invalidPath (see [`parse_path`]).
/// A missing, `null` or blank `path` counts as no path.
pub fn parse_request(body: &Value, schema: &ResourceSchema) -> ScimResult<Vec<PatchOperation>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
    let is_patch_op = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(urn::PATCH_OP))
    };
    let declared = match get_ci(obj, "schemas") {
        Some(Value::Array(list)) => list.iter().any(is_patch_op),
        Some(other) => is_patch_op(other),
        None => false,
    };
    if !declared {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {}",
            urn::PATCH_OP
        )));
    }
    let ops = match get_ci(obj, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => {
            return Err(ScimError::invalid_syntax(
                "'Operations' must hold at least one operation",
            ))
        }
        _ => {
            return Err(ScimError::invalid_syntax(
                "'Operations' must be an array of operations",
            ))
        }
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op, schema).map_err(|e| at(i, e)))
        .collect()
}

fn parse_operation(op: &Value, schema: &ResourceSchema) -> ScimResult<PatchOperation> {
    let obj = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("an operation must be a JSON object"))?;
    let kind = match get_ci(obj, "op") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("add") => OpKind::Add,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("remove") => OpKind::Remove,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("replace") => OpKind::Replace,
        Some(Value::String(s)) => {
            return Err(ScimError::invalid_syntax(format!(
                "unknown op '{s}': expected add, remove or replace"
            )))
        }
        Some(_) => return Err(ScimError::invalid_syntax("'op' must be a string")),
        None => return Err(ScimError::invalid_syntax("an operation needs an 'op'")),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(s, schema)?),
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    let value = get_ci(obj, "value").cloned();
    match kind {
        OpKind::Remove if path.is_none() => {
            Err(ScimError::no_target("a remove operation needs a 'path'"))
        }
        OpKind::Add | OpKind::Replace if value.is_none() => Err(ScimError::invalid_syntax(
            format!("an {} operation needs a 'value'", kind.as_str()),
        )),
        _ => Ok(PatchOperation {
            op: kind,
            path,
            value,
        }),
    }
}

/// Parses a PATCH path against `schema`. A path equal (case-insensitively) to an extension URN is
/// [`PatchPath::Extension`]; otherwise `attr[filter].sub`, where `attr` is an attribute path
/// (URN-qualified or not; the URN ends at the last `:`, so the `.` of `2.0` never splits it) and
/// the bracket part a filter relative to `attr`'s sub-attributes. Every error is 400 invalidPath.
pub fn parse_path(text: &str, schema: &ResourceSchema) -> ScimResult<PatchPath> {
    let text = text.trim();
    if let Some(ext) = schema.extension(text) {
        return Ok(PatchPath::Extension(ext.id.clone()));
    }
    let bad = |why: &str| ScimError::invalid_path(format!("invalid path '{text}': {why}"));
    let (attr_text, filter_text, sub_text) =
        split_path(text).ok_or_else(|| bad("expected attribute[filter].subAttribute"))?;
    let path = AttrPath::parse(attr_text).ok_or_else(|| bad("not an attribute path"))?;
    if filter_text.is_some() && path.sub.is_some() {
        return Err(bad(
            "a value filter must follow the attribute, not a sub-attribute",
        ));
    }
    let resolved = schema.resolve(&path)?;
    let attr = resolved.attr;
    let filter = match filter_text {
        None => None,
        Some(ft) => {
            if !attr.multi_valued && attr.ty != AttrType::Complex {
                return Err(bad(&format!(
                    "'{}' is a single simple value and takes no filter",
                    attr.name
                )));
            }
            let f = filter::parse(ft).map_err(|e| bad(&e.detail))?;
            check_filter(&f, attr).map_err(|why| bad(&why))?;
            Some(f)
        }
    };
    let sub = match sub_text {
        Some(s) => Some(
            attr.sub(s)
                .ok_or_else(|| bad(&format!("'{}' has no sub-attribute '{s}'", attr.name)))?,
        ),
        None => resolved.sub,
    };
    let uri = match resolved.container {
        Container::Core => None,
        Container::Extension(u) => Some(u.to_string()),
    };
    Ok(PatchPath::Attr {
        attr: AttrPath {
            uri,
            name: attr.name.clone(),
            sub: None,
        },
        filter,
        sub: sub.map(|s| s.name.clone()),
    })
}

/// Splits `attr[filter].sub` into its three parts; `None` when the brackets are malformed.
fn split_path(text: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let Some(open) = text.find('[') else {
        return (!text.contains(']')).then_some((text, None, None));
    };
    let rest = &text[open + 1..];
    let (mut in_string, mut escaped, mut close) = (false, false, None);
    for (i, c) in rest.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            ']' => {
                close = Some(i);
                break;
            }
            '[' => return None,
            _ => {}
        }
    }
    let close = close?;
    let inner = &rest[..close];
    let after = &rest[close + 1..];
    if inner.trim().is_empty() {
        return None;
    }
    let sub = if after.is_empty() {
        None
    } else {
        Some(after.strip_prefix('.')?)
    };
    Some((&text[..open], Some(inner), sub))
}

/// Checks that every attribute a value filter names is an element attribute of `parent` (the
/// form [`filter::matches_element`] evaluates), so a typo is `invalidPath`, not a silent no-op.
fn check_filter(f: &Filter, parent: &Attribute) -> Result<(), String> {
    let mut pending = vec![f];
    while let Some(f) = pending.pop() {
        match f {
            Filter::Present(p) | Filter::Compare(p, _, _) => {
                if element_attribute(p, parent).is_none() {
                    return Err(format!("'{p}' is not a sub-attribute of '{}'", parent.name));
                }
            }
            Filter::And(a, b) | Filter::Or(a, b) => {
                pending.push(a);
                pending.push(b);
            }
            Filter::Not(a) => pending.push(a),
            Filter::ValuePath(..) => return Err("value filters cannot nest".into()),
        }
    }
    Ok(())
}

/// The element attribute a value-filter path names: a sub-attribute of a complex `parent`, or
/// `value` for the elements of a simple multi-valued one.
fn element_attribute<'a>(p: &AttrPath, parent: &'a Attribute) -> Option<&'a Attribute> {
    if p.uri.is_some() || p.sub.is_some() {
        return None;
    }
    if parent.ty == AttrType::Complex {
        parent.sub(&p.name)
    } else {
        p.name.eq_ignore_ascii_case("value").then_some(parent)
    }
}

/// Applies all operations to `resource` (a JSON object: core attrs at top level with canonical
/// names, extension attrs under their URN key, plus "id", "externalId", "meta", "schemas").
/// Atomic: on any error `resource` is left exactly as it was (the work happens on a clone that
/// is swapped in at the end). Returns Ok(true) if the document changed, Ok(false) if the patch
/// was a no-op (then `resource` is untouched). "Changed" compares documents with attribute names
/// case-insensitively and null, `[]` and `{}` counting as absent (RFC 7643 §2.5).
pub fn apply(
    resource: &mut Value,
    ops: &[PatchOperation],
    schema: &ResourceSchema,
) -> ScimResult<bool> {
    let mut doc = resource.clone();
    let Value::Object(root) = &mut doc else {
        return Err(ScimError::internal(
            "the resource document is not a JSON object",
        ));
    };
    let mut engine = Engine {
        schema,
        touched: Vec::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        engine.apply_op(root, op).map_err(|e| at(i, e))?;
    }
    engine.finish(root);
    if semantic_eq(&doc, resource) {
        return Ok(false);
    }
    *resource = doc;
    Ok(true)
}

/// Prefixes an error's detail with the index of the operation that caused it.
fn at(i: usize, mut e: ScimError) -> ScimError {
    e.detail = format!("Operations[{i}]: {}", e.detail);
    e
}

/// What one operation (or one member of a pathless value) designates.
#[derive(Clone, Copy)]
struct Target<'s, 'f> {
    container: Container<'s>,
    attr: &'s Attribute,
    filter: Option<&'f Filter>,
    sub: Option<&'s Attribute>,
}

impl Target<'_, '_> {
    fn label(&self) -> String {
        let mut s = self.attr.name.clone();
        if let Some(f) = self.filter {
            s.push_str(&format!("[{f}]"));
        }
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(&sub.name);
        }
        s
    }
}

struct Engine<'s> {
    schema: &'s ResourceSchema,
    /// Extension containers the patch wrote to or removed from; [`Engine::finish`] keeps their
    /// URNs in `schemas` in step with them.
    touched: Vec<&'s str>,
}

impl<'s> Engine<'s> {
    fn apply_op(&mut self, root: &mut Obj, op: &PatchOperation) -> ScimResult<()> {
        let value = op.value.as_ref();
        match &op.path {
            None => match (op.op, value) {
                (OpKind::Remove, _) => {
                    Err(ScimError::no_target("a remove operation needs a 'path'"))
                }
                (kind, Some(Value::Object(members))) => {
                    for (key, v) in members {
                        self.apply_member(root, None, key, v, kind)?;
                    }
                    Ok(())
                }
                (_, Some(_)) => Err(ScimError::invalid_value(
                    "without a 'path', the value must be an object of attributes",
                )),
                (kind, None) => Err(ScimError::invalid_syntax(format!(
                    "an {} operation needs a 'value'",
                    kind.as_str()
                ))),
            },
            Some(PatchPath::Extension(uri)) => {
                let ext = self.schema.extension(uri).ok_or_else(|| {
                    ScimError::invalid_path(format!("unknown schema extension '{uri}'"))
                })?;
                self.apply_extension(root, ext.id.as_str(), op.op, value)
            }
            Some(PatchPath::Attr { attr, filter, sub }) => {
                let t = self.target(attr, filter.as_ref(), sub.as_deref())?;
                if t.attr.mutability == Mutability::ReadOnly
                    || t.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
                {
                    return Err(ScimError::mutability(format!(
                        "'{}' is readOnly",
                        t.label()
                    )));
                }
                self.apply_target(root, t, op.op, value)
            }
        }
    }

    fn target<'f>(
        &self,
        attr: &AttrPath,
        filter: Option<&'f Filter>,
        sub: Option<&str>,
    ) -> ScimResult<Target<'s, 'f>> {
        if attr.sub.is_some() && sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{attr}' has two sub-attributes"
            )));
        }
        let r = self.schema.resolve(attr)?;
        let sub = match sub {
            Some(s) => Some(r.attr.sub(s).ok_or_else(|| {
                ScimError::invalid_path(format!("'{}' has no sub-attribute '{s}'", r.attr.name))
            })?),
            None => r.sub,
        };
        if let Some(f) = filter {
            if attr.sub.is_some() || (!r.attr.multi_valued && r.attr.ty != AttrType::Complex) {
                return Err(ScimError::invalid_path(format!(
                    "'{attr}' takes no value filter"
                )));
            }
            check_filter(f, r.attr).map_err(ScimError::invalid_path)?;
        }
        Ok(Target {
            container: r.container,
            attr: r.attr,
            filter,
            sub,
        })
    }

    /// One member of a pathless add/replace value (or of an extension container's value, when
    /// `scope` is that extension's URN). The key is an attribute path in its own right.
    fn apply_member(
        &mut self,
        root: &mut Obj,
        scope: Option<&'s str>,
        key: &str,
        v: &Value,
        kind: OpKind,
    ) -> ScimResult<()> {
        // `schemas` is message structure, also inside an extension object (scim2-models sends it).
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        if scope.is_none() && key.eq_ignore_ascii_case(&self.schema.core.id) {
            return match v {
                Value::Object(members) => {
                    let core = self.schema.core.id.as_str();
                    for (k, x) in members {
                        self.apply_member(root, Some(core), k, x, kind)?;
                    }
                    Ok(())
                }
                Value::Null => Ok(()),
                _ => Err(ScimError::invalid_value(format!(
                    "'{key}' must be an object of attributes"
                ))),
            };
        }
        let qualified;
        let text = match scope {
            Some(uri) => {
                qualified = format!("{uri}:{key}");
                qualified.as_str()
            }
            None => key,
        };
        let unknown = |e: ScimError| {
            ScimError::invalid_value(format!(
                "unknown attribute '{key}' in the value ({})",
                e.detail
            ))
        };
        match parse_path(text, self.schema).map_err(unknown)? {
            PatchPath::Extension(uri) => match self.schema.extension(&uri) {
                Some(ext) => self.apply_extension(root, ext.id.as_str(), kind, Some(v)),
                None => Err(ScimError::invalid_value(format!(
                    "unknown attribute '{key}' in the value"
                ))),
            },
            PatchPath::Attr { attr, filter, sub } => {
                let t = self
                    .target(&attr, filter.as_ref(), sub.as_deref())
                    .map_err(unknown)?;
                let read_only_sub = t.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly);
                if t.attr.mutability == Mutability::ReadOnly || read_only_sub {
                    return self.read_only_member(root, t, v);
                }
                self.apply_target(root, t, kind, Some(v))
            }
        }
    }

    /// A read-only attribute inside a pathless value: accepted and ignored when it carries the
    /// current value (Okta's `{"id": "<same id>", "displayName": …}`), a mutability error when it
    /// tries to change it. `meta`, `groups` (derived from memberships, possibly not even stored)
    /// and read-only sub-attributes are ignored outright.
    fn read_only_member(&self, root: &Obj, t: Target<'s, '_>, v: &Value) -> ScimResult<()> {
        let plain =
            t.sub.is_none() && t.filter.is_none() && t.attr.mutability == Mutability::ReadOnly;
        if !plain || t.attr.name == "meta" || t.attr.name == "groups" {
            return Ok(());
        }
        let cont = match t.container {
            Container::Core => Some(root),
            Container::Extension(uri) => get_ci(root, uri).and_then(Value::as_object),
        };
        let current = cont.and_then(|c| get_ci(c, &t.attr.name));
        let same = match current {
            Some(c) => semantic_eq(c, v),
            None => is_absent(v),
        };
        if same {
            Ok(())
        } else {
            Err(ScimError::mutability(format!(
                "'{}' is readOnly and cannot be changed",
                t.attr.name
            )))
        }
    }

    /// add/replace/remove on a whole extension container.
    fn apply_extension(
        &mut self,
        root: &mut Obj,
        uri: &'s str,
        kind: OpKind,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        match (kind, value) {
            (OpKind::Remove, _) | (OpKind::Replace, Some(Value::Null)) => {
                self.remove_extension(root, uri)
            }
            (OpKind::Add, Some(Value::Null)) => Ok(()),
            (_, Some(Value::Object(members))) => {
                for (k, v) in members {
                    self.apply_member(root, Some(uri), k, v, kind)?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "the value for '{uri}' must be an object of its attributes"
            ))),
        }
    }

    fn remove_extension(&mut self, root: &mut Obj, uri: &'s str) -> ScimResult<()> {
        let Some(ext) = self.schema.extension(uri) else {
            return Err(ScimError::invalid_path(format!(
                "unknown schema extension '{uri}'"
            )));
        };
        if let Some(Value::Object(current)) = get_ci(root, uri) {
            for attr in &ext.attributes {
                let value = get_ci(current, &attr.name).filter(|v| !is_absent(v));
                if attr.required && value.is_some() {
                    return Err(ScimError::mutability(format!(
                        "'{}' is required and cannot be removed",
                        attr.name
                    )));
                }
                check_immutable(&attr.name, attr, value, None)?;
            }
        }
        remove_all(root, uri);
        self.touch(uri);
        Ok(())
    }

    fn touch(&mut self, uri: &'s str) {
        if !self.touched.contains(&uri) {
            self.touched.push(uri);
        }
    }

    fn apply_target(
        &mut self,
        root: &mut Obj,
        t: Target<'s, '_>,
        kind: OpKind,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        if let Container::Extension(uri) = t.container {
            self.touch(uri);
        }
        let (kind, value) = match (kind, value) {
            (OpKind::Add | OpKind::Replace, None) => {
                return Err(ScimError::invalid_syntax(format!(
                    "an {} operation needs a 'value'",
                    kind.as_str()
                )))
            }
            // RFC 7643 §2.5: null is "unassigned": adding it adds nothing, replacing with it
            // unassigns, and a filter must still match something.
            (OpKind::Add, Some(Value::Null)) => return Ok(()),
            (OpKind::Replace, Some(Value::Null)) => {
                check_removable(&t)?;
                return match container_mut(root, t.container, false) {
                    Some(cont) => remove(cont, &t, None, true),
                    None if t.filter.is_some() => Err(no_match(&t)),
                    None => Ok(()),
                };
            }
            other => other,
        };
        if kind == OpKind::Remove {
            check_removable(&t)?;
            return match container_mut(root, t.container, false) {
                Some(cont) => remove(cont, &t, value, false),
                None => Ok(()),
            };
        }
        let Some(v) = value else { return Ok(()) };
        let Some(cont) = container_mut(root, t.container, true) else {
            return Err(ScimError::internal(
                "could not create the extension container",
            ));
        };
        let written = if kind == OpKind::Add {
            add(cont, &t, v)?
        } else {
            replace(cont, &t, v)?
        };
        fix_primary(cont, t.attr, &written);
        Ok(())
    }

    /// Keeps extension objects and `schemas` in step: an extension left empty disappears with
    /// its URN; one holding attributes has its URN listed.
    fn finish(&self, root: &mut Obj) {
        for &uri in &self.touched {
            let empty = match get_ci(root, uri) {
                None => true,
                Some(Value::Object(m)) => m.values().all(is_absent),
                Some(other) => is_absent(other),
            };
            if empty {
                remove_all(root, uri);
                if let Some(Value::Array(list)) = get_ci_mut(root, "schemas") {
                    list.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(uri)));
                }
                continue;
            }
            let _ = slot(root, uri);
            match get_ci_mut(root, "schemas") {
                Some(Value::Array(list)) => {
                    if !list
                        .iter()
                        .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(uri)))
                    {
                        list.push(Value::String(uri.to_string()));
                    }
                }
                _ => {
                    let core = Value::String(self.schema.core.id.clone());
                    *slot(root, "schemas") =
                        Value::Array(vec![core, Value::String(uri.to_string())]);
                }
            }
        }
    }
}

/// The object holding the target's attribute: the document itself or an extension object
/// (created, under the canonical URN, when `create`).
fn container_mut<'d>(root: &'d mut Obj, c: Container<'_>, create: bool) -> Option<&'d mut Obj> {
    match c {
        Container::Core => Some(root),
        Container::Extension(uri) => {
            let exists = get_ci(root, uri).is_some_and(Value::is_object);
            if !exists && !create {
                return None;
            }
            let s = slot(root, uri);
            if !s.is_object() {
                *s = Value::Object(Map::new());
            }
            s.as_object_mut()
        }
    }
}

/// RFC 7644 §3.5.2.2: removing a required attribute (or sub-attribute) would leave the resource
/// invalid; "each operation ... MUST be compatible with the attribute's mutability and schema".
fn check_removable(t: &Target<'_, '_>) -> ScimResult<()> {
    if t.filter.is_some() {
        return Ok(());
    }
    let a = t.sub.unwrap_or(t.attr);
    if a.required {
        return Err(ScimError::mutability(format!(
            "'{}' is required and cannot be removed",
            t.label()
        )));
    }
    Ok(())
}

/// RFC 7643 §2.2 `immutable`: may be set when absent, never changed or removed afterwards.
fn check_immutable(
    label: &str,
    a: &Attribute,
    current: Option<&Value>,
    new: Option<&Value>,
) -> ScimResult<()> {
    if a.mutability != Mutability::Immutable {
        return Ok(());
    }
    let Some(current) = current.filter(|c| !is_absent(c)) else {
        return Ok(());
    };
    if new.is_some_and(|n| semantic_eq(current, n)) {
        return Ok(());
    }
    Err(ScimError::mutability(format!(
        "'{label}' is immutable and already has a value"
    )))
}

fn no_match(t: &Target<'_, '_>) -> ScimError {
    ScimError::no_target(format!(
        "no value of '{}' matches the path '{}'",
        t.attr.name,
        t.label()
    ))
}

/// RFC 7644 §3.5.2.1. Returns the indices of the multi-valued elements it wrote.
fn add(cont: &mut Obj, t: &Target<'_, '_>, v: &Value) -> ScimResult<Vec<usize>> {
    let attr = t.attr;
    match (t.filter, t.sub) {
        (Some(f), _) => set_filtered(cont, t, f, v, OpKind::Add),
        (None, Some(sub)) if attr.multi_valued => {
            // A new element holding just this sub-attribute, unless an equal one exists.
            check_simple(&t.label(), sub, v)?;
            let mut item = Map::new();
            item.insert(sub.name.clone(), v.clone());
            append(cont, attr, vec![Value::Object(item)])
        }
        (None, Some(sub)) => {
            set_sub_single(cont, t, sub, v)?;
            Ok(Vec::new())
        }
        (None, None) if attr.multi_valued => {
            let items = items(attr, v)?;
            append(cont, attr, items)
        }
        (None, None) if attr.ty == AttrType::Complex => {
            let m = complex_value(attr, v, false)?;
            merge_complex(cont, attr, m)?;
            Ok(Vec::new())
        }
        (None, None) => {
            set_simple(cont, attr, v)?;
            Ok(Vec::new())
        }
    }
}

/// RFC 7644 §3.5.2.3. Returns the indices of the multi-valued elements it wrote.
fn replace(cont: &mut Obj, t: &Target<'_, '_>, v: &Value) -> ScimResult<Vec<usize>> {
    let attr = t.attr;
    match (t.filter, t.sub) {
        (Some(f), _) => set_filtered(cont, t, f, v, OpKind::Replace),
        (None, Some(sub)) if attr.multi_valued => {
            // Every element's sub-attribute; with no element yet, "treated as add".
            check_simple(&t.label(), sub, v)?;
            let mut arr = take_array(cont, &attr.name);
            if arr.is_empty() {
                let mut item = Map::new();
                item.insert(sub.name.clone(), v.clone());
                arr.push(Value::Object(item));
            } else {
                for e in arr.iter_mut() {
                    if let Value::Object(o) = e {
                        set_in(o, &t.label(), sub, v)?;
                    }
                }
            }
            let written = (0..arr.len()).collect();
            put(cont, &attr.name, Value::Array(arr));
            Ok(written)
        }
        (None, Some(sub)) => {
            set_sub_single(cont, t, sub, v)?;
            Ok(Vec::new())
        }
        (None, None) if attr.multi_valued => {
            let mut new: Vec<Value> = Vec::new();
            for item in items(attr, v)? {
                if !new.iter().any(|e| same_element(attr, e, &item)) {
                    new.push(item);
                }
            }
            if new.is_empty() && attr.required {
                return Err(ScimError::mutability(format!(
                    "'{}' is required and cannot be emptied",
                    attr.name
                )));
            }
            if attr.mutability == Mutability::Immutable {
                check_immutable(
                    &attr.name,
                    attr,
                    get_ci(cont, &attr.name),
                    Some(&Value::Array(new.clone())),
                )?;
            }
            let written = (0..new.len()).collect();
            put(cont, &attr.name, Value::Array(new));
            Ok(written)
        }
        (None, None) if attr.ty == AttrType::Complex => {
            let m = complex_value(attr, v, true)?;
            merge_complex(cont, attr, m)?;
            Ok(Vec::new())
        }
        (None, None) => {
            set_simple(cont, attr, v)?;
            Ok(Vec::new())
        }
    }
}

/// Appends the values not already present; returns the indices of those appended.
fn append(cont: &mut Obj, attr: &Attribute, items: Vec<Value>) -> ScimResult<Vec<usize>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut arr = take_array(cont, &attr.name);
    let mut written = Vec::new();
    for item in items {
        if !arr.iter().any(|e| same_element(attr, e, &item)) {
            arr.push(item);
            written.push(arr.len() - 1);
        }
    }
    put(cont, &attr.name, Value::Array(arr));
    Ok(written)
}

/// add/replace through a value filter. Replace needs a match (else noTarget); add with no match
/// creates the element from the filter's `eq` terms when it has only those (upsert).
fn set_filtered(
    cont: &mut Obj,
    t: &Target<'_, '_>,
    f: &Filter,
    v: &Value,
    kind: OpKind,
) -> ScimResult<Vec<usize>> {
    let attr = t.attr;
    let label = t.label();
    // What to do to each matching element.
    let patch: Option<Obj> = match t.sub {
        Some(sub) => {
            check_simple(&label, sub, v)?;
            None
        }
        None if attr.ty == AttrType::Complex => {
            Some(complex_value(attr, v, kind == OpKind::Replace)?)
        }
        None => {
            check_simple(&label, attr, v)?;
            None
        }
    };
    let update = |element: &mut Value| -> ScimResult<()> {
        match (element, t.sub, &patch) {
            (Value::Object(o), Some(sub), _) => set_in(o, &label, sub, v),
            (Value::Object(o), None, Some(p)) => merge_into(o, attr, p.clone()),
            (e, None, None) => {
                check_immutable(&label, attr, Some(e), Some(v))?;
                *e = v.clone();
                Ok(())
            }
            _ => Ok(()),
        }
    };
    let matches = |e: &Value| {
        (attr.ty != AttrType::Complex || e.is_object()) && filter::matches_element(f, e, attr)
    };

    if !attr.multi_valued {
        // A single-valued complex attribute filtered like a one-element list (`manager[value eq "x"]`).
        let mut current = Value::Object(take_object(cont, &attr.name));
        if !is_absent(&current) && matches(&current) {
            update(&mut current)?;
        } else if kind == OpKind::Add && is_absent(&current) {
            current = seed(f, attr).ok_or_else(|| no_match(t))?;
            update(&mut current)?;
            if !matches(&current) {
                return Err(no_match(t));
            }
        } else {
            return Err(no_match(t));
        }
        put(cont, &attr.name, current);
        return Ok(Vec::new());
    }

    let mut arr = take_array(cont, &attr.name);
    let hits: Vec<usize> = arr
        .iter()
        .enumerate()
        .filter(|(_, e)| matches(e))
        .map(|(i, _)| i)
        .collect();
    if hits.is_empty() {
        if kind == OpKind::Replace {
            return Err(no_match(t));
        }
        let mut element = seed(f, attr).ok_or_else(|| no_match(t))?;
        update(&mut element)?;
        if !matches(&element) {
            return Err(no_match(t));
        }
        arr.push(element);
        let written = vec![arr.len() - 1];
        put(cont, &attr.name, Value::Array(arr));
        return Ok(written);
    }
    for &i in &hits {
        if let Some(e) = arr.get_mut(i) {
            update(e)?;
        }
    }
    put(cont, &attr.name, Value::Array(arr));
    Ok(hits)
}

/// The element a filter made only of `eq` terms (joined by `and`) describes, for an upserting add.
fn seed(f: &Filter, attr: &Attribute) -> Option<Value> {
    let mut out = Map::new();
    let mut scalar = None;
    let mut pending = vec![f];
    while let Some(f) = pending.pop() {
        match f {
            Filter::And(a, b) => {
                pending.push(a);
                pending.push(b);
            }
            Filter::Compare(p, CompareOp::Eq, lit) if !lit.is_null() => {
                let sub = element_attribute(p, attr)?;
                if attr.ty == AttrType::Complex {
                    out.insert(sub.name.clone(), lit.clone());
                } else {
                    scalar = Some(lit.clone());
                }
            }
            _ => return None,
        }
    }
    match scalar {
        Some(s) => Some(s),
        None => Some(Value::Object(out)),
    }
}

/// Sets a sub-attribute of a single-valued complex attribute (`name.familyName`).
fn set_sub_single(
    cont: &mut Obj,
    t: &Target<'_, '_>,
    sub: &Attribute,
    v: &Value,
) -> ScimResult<()> {
    let label = t.label();
    check_simple(&label, sub, v)?;
    let mut obj = take_object(cont, &t.attr.name);
    set_in(&mut obj, &label, sub, v)?;
    put(cont, &t.attr.name, Value::Object(obj));
    Ok(())
}

/// Sets `sub` inside one complex value, honouring immutability.
fn set_in(o: &mut Obj, label: &str, sub: &Attribute, v: &Value) -> ScimResult<()> {
    check_immutable(label, sub, get_ci(o, &sub.name), Some(v))?;
    *slot(o, &sub.name) = v.clone();
    Ok(())
}

/// Removes `sub` from one complex value, honouring `required` and immutability.
fn unset_in(o: &mut Obj, label: &str, sub: &Attribute) -> ScimResult<()> {
    let current = get_ci(o, &sub.name).filter(|c| !is_absent(c));
    if current.is_some() && sub.required {
        return Err(ScimError::mutability(format!(
            "'{label}' is required and cannot be removed"
        )));
    }
    check_immutable(label, sub, current, None)?;
    remove_all(o, &sub.name);
    Ok(())
}

fn set_simple(cont: &mut Obj, attr: &Attribute, v: &Value) -> ScimResult<()> {
    check_simple(&attr.name, attr, v)?;
    check_immutable(&attr.name, attr, get_ci(cont, &attr.name), Some(v))?;
    *slot(cont, &attr.name) = v.clone();
    Ok(())
}

/// Merges sub-attributes into a single-valued complex attribute (RFC 7644 §3.5.2.1/3: given
/// sub-attributes replace, others stay). A null member unassigns that sub-attribute.
fn merge_complex(cont: &mut Obj, attr: &Attribute, m: Obj) -> ScimResult<()> {
    let mut obj = take_object(cont, &attr.name);
    merge_into(&mut obj, attr, m)?;
    put(cont, &attr.name, Value::Object(obj));
    Ok(())
}

fn merge_into(obj: &mut Obj, attr: &Attribute, m: Obj) -> ScimResult<()> {
    for (k, x) in m {
        let Some(sub) = attr.sub(&k) else { continue };
        let label = format!("{}.{}", attr.name, sub.name);
        if x.is_null() {
            unset_in(obj, &label, sub)?;
        } else {
            set_in(obj, &label, sub, &x)?;
        }
    }
    Ok(())
}

/// RFC 7644 §3.5.2.2. `strict`: a filter matching nothing is noTarget (replace with null);
/// otherwise it is a successful no-op, so that removing an absent member is idempotent the way
/// IdP retries need.
fn remove(
    cont: &mut Obj,
    t: &Target<'_, '_>,
    value: Option<&Value>,
    strict: bool,
) -> ScimResult<()> {
    let attr = t.attr;
    let label = t.label();
    match (t.filter, t.sub) {
        (None, None) => {
            if attr.multi_valued {
                if let Some(v) = value.filter(|v| !v.is_null()) {
                    return remove_listed(cont, attr, v);
                }
            }
            check_immutable(&label, attr, get_ci(cont, &attr.name), None)?;
            remove_all(cont, &attr.name);
            Ok(())
        }
        (None, Some(sub)) => {
            if attr.multi_valued {
                let mut arr = take_array(cont, &attr.name);
                for e in arr.iter_mut() {
                    if let Value::Object(o) = e {
                        unset_in(o, &label, sub)?;
                    }
                }
                arr.retain(|e| !is_absent(e));
                put(cont, &attr.name, Value::Array(arr));
            } else {
                let mut obj = take_object(cont, &attr.name);
                unset_in(&mut obj, &label, sub)?;
                put(cont, &attr.name, Value::Object(obj));
            }
            Ok(())
        }
        (Some(f), sub) => {
            let matches = |e: &Value| {
                (attr.ty != AttrType::Complex || e.is_object())
                    && filter::matches_element(f, e, attr)
            };
            if !attr.multi_valued {
                let mut current = Value::Object(take_object(cont, &attr.name));
                let hit = !is_absent(&current) && matches(&current);
                if hit {
                    match (sub, &mut current) {
                        (Some(s), Value::Object(o)) => unset_in(o, &label, s)?,
                        _ => {
                            if attr.required {
                                return Err(ScimError::mutability(format!(
                                    "'{}' is required and cannot be removed",
                                    attr.name
                                )));
                            }
                            current = Value::Null;
                        }
                    }
                }
                put(cont, &attr.name, current);
                return if hit || !strict {
                    Ok(())
                } else {
                    Err(no_match(t))
                };
            }
            let mut arr = take_array(cont, &attr.name);
            let hits: Vec<bool> = arr.iter().map(matches).collect();
            let any = hits.iter().any(|h| *h);
            match sub {
                None => {
                    let mut flags = hits.iter();
                    arr.retain(|_| !flags.next().copied().unwrap_or(false));
                    if arr.is_empty() && any && attr.required {
                        return Err(ScimError::mutability(format!(
                            "'{}' is required and cannot be emptied",
                            attr.name
                        )));
                    }
                }
                Some(s) => {
                    for (e, hit) in arr.iter_mut().zip(&hits) {
                        if let (true, Value::Object(o)) = (*hit, e) {
                            unset_in(o, &label, s)?;
                        }
                    }
                    arr.retain(|e| !is_absent(e));
                }
            }
            put(cont, &attr.name, Value::Array(arr));
            if any || !strict {
                Ok(())
            } else {
                Err(no_match(t))
            }
        }
    }
}

/// Entra's default member removal, `{"op":"Remove","path":"members","value":[{"value":"id"}]}`:
/// removes the listed values only (members by `value`; other elements when every given
/// sub-attribute matches). An empty list removes nothing.
fn remove_listed(cont: &mut Obj, attr: &Attribute, v: &Value) -> ScimResult<()> {
    let wanted = items(attr, v)?;
    if wanted.is_empty() {
        return Ok(());
    }
    let mut arr = take_array(cont, &attr.name);
    arr.retain(|e| !wanted.iter().any(|w| selects(attr, e, w)));
    if arr.is_empty() && attr.required {
        return Err(ScimError::mutability(format!(
            "'{}' is required and cannot be emptied",
            attr.name
        )));
    }
    put(cont, &attr.name, Value::Array(arr));
    Ok(())
}

fn selects(attr: &Attribute, stored: &Value, given: &Value) -> bool {
    if identity_by_value(attr) {
        return same_element(attr, stored, given);
    }
    match (stored, given) {
        (Value::Object(s), Value::Object(g)) => g
            .iter()
            .all(|(k, gv)| get_ci(s, k).is_some_and(|sv| semantic_eq(sv, gv))),
        _ => semantic_eq(stored, given),
    }
}

/// Whether elements of `attr` are identified by their `value` alone: group `members` (a member
/// is a user or group id; `display`, `$ref` and `type` only describe it).
fn identity_by_value(attr: &Attribute) -> bool {
    attr.name == "members"
}

/// Whether two elements of a multi-valued attribute are the same value (RFC 7644 §3.5.2.1:
/// adding a value already present changes nothing).
fn same_element(attr: &Attribute, a: &Value, b: &Value) -> bool {
    if identity_by_value(attr) {
        let value_of = |e: &Value| {
            e.as_object()
                .and_then(|o| get_ci(o, "value"))
                .filter(|v| !is_absent(v))
                .cloned()
        };
        if let (Some(x), Some(y)) = (value_of(a), value_of(b)) {
            return semantic_eq(&x, &y);
        }
    }
    semantic_eq(a, b)
}

/// After an add/replace wrote elements of a multi-valued attribute: if one of them is primary,
/// no other element stays primary (RFC 7643 §2.4; the last written primary wins).
fn fix_primary(cont: &mut Obj, attr: &Attribute, written: &[usize]) {
    if written.is_empty() || !attr.multi_valued || attr.sub("primary").is_none() {
        return;
    }
    let Some(Value::Array(arr)) = cont.get_mut(&attr.name) else {
        return;
    };
    let Some(keep) = written
        .iter()
        .rev()
        .copied()
        .find(|&i| arr.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, e) in arr.iter_mut().enumerate() {
        if i == keep || !is_primary(e) {
            continue;
        }
        if let Value::Object(o) = e {
            *slot(o, "primary") = Value::Bool(false);
        }
    }
}

fn is_primary(e: &Value) -> bool {
    match e.as_object().and_then(|o| get_ci(o, "primary")) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The values of a multi-valued attribute given as an array or a single value, normalised;
/// nulls and empty elements are dropped.
fn items(attr: &Attribute, v: &Value) -> ScimResult<Vec<Value>> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(list.len());
    for x in list {
        if x.is_null() {
            continue;
        }
        if attr.ty == AttrType::Complex {
            let m = complex_value(attr, x, false)?;
            if !m.is_empty() {
                out.push(Value::Object(m));
            }
        } else {
            if x.is_object() || x.is_array() {
                return Err(ScimError::invalid_value(format!(
                    "the values of '{}' must be simple values",
                    attr.name
                )));
            }
            out.push(x.clone());
        }
    }
    Ok(out)
}

/// One incoming value of a complex attribute: sub-attributes under their canonical names;
/// read-only ones (`members.display`, `manager.displayName`) and unknown ones dropped, as the
/// resource validator drops them on POST/PUT; nulls kept only when `keep_nulls` (replace, where
/// null unassigns). A bare scalar stands for `{"value": scalar}` when the attribute has a `value`
/// sub-attribute (Entra's `manager: "271"`).
fn complex_value(attr: &Attribute, v: &Value, keep_nulls: bool) -> ScimResult<Obj> {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let Some(sub) = attr.sub(k) else { continue };
                if sub.mutability == Mutability::ReadOnly || (x.is_null() && !keep_nulls) {
                    continue;
                }
                check_simple(&format!("{}.{}", attr.name, sub.name), sub, x)?;
                out.insert(sub.name.clone(), x.clone());
            }
            Ok(out)
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => match attr.sub("value") {
            Some(value_attr) => {
                let mut out = Map::new();
                out.insert(value_attr.name.clone(), v.clone());
                Ok(out)
            }
            None => Err(ScimError::invalid_value(format!(
                "'{}' takes an object of sub-attributes",
                attr.name
            ))),
        },
        _ => Err(ScimError::invalid_value(format!(
            "'{}' takes an object of sub-attributes",
            attr.name
        ))),
    }
}

/// An object or array where a single simple value belongs is structurally impossible.
fn check_simple(label: &str, a: &Attribute, v: &Value) -> ScimResult<()> {
    if a.ty == AttrType::Complex || a.multi_valued || !(v.is_object() || v.is_array()) {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "'{label}' takes a single {} value",
        a.ty.as_str()
    )))
}

// ---- JSON object helpers: attribute names are case-insensitive, written canonically ----

fn get_ci<'a>(m: &'a Obj, name: &str) -> Option<&'a Value> {
    m.get(name).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn get_ci_mut<'a>(m: &'a mut Obj, name: &str) -> Option<&'a mut Value> {
    let key = if m.contains_key(name) {
        name.to_string()
    } else {
        m.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone()
    };
    m.get_mut(&key)
}

/// The slot of `name`, under its canonical spelling: a member spelled otherwise is moved there
/// (other stray spellings are dropped); an absent one is created as null.
fn slot<'a>(m: &'a mut Obj, name: &str) -> &'a mut Value {
    let strays: Vec<String> = m
        .keys()
        .filter(|k| k.as_str() != name && k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    for k in strays {
        if let Some(v) = m.shift_remove(&k) {
            if !m.contains_key(name) {
                m.insert(name.to_string(), v);
            }
        }
    }
    m.entry(name.to_string()).or_insert(Value::Null)
}

/// Removes `name` in every spelling.
fn remove_all(m: &mut Obj, name: &str) {
    let keys: Vec<String> = m
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    for k in keys {
        m.shift_remove(&k);
    }
}

/// Takes a multi-valued attribute's elements out of its slot (a lone value counts as one);
/// callers give them back with [`put`].
fn take_array(m: &mut Obj, name: &str) -> Vec<Value> {
    match std::mem::take(slot(m, name)) {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Takes a complex attribute's object out of its slot (anything else counts as absent).
fn take_object(m: &mut Obj, name: &str) -> Obj {
    match std::mem::take(slot(m, name)) {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// Stores a value under the canonical `name`, or removes the attribute when the value is
/// unassigned (null, `[]`, `{}`).
fn put(m: &mut Obj, name: &str, v: Value) {
    if is_absent(&v) {
        remove_all(m, name);
    } else {
        *slot(m, name) = v;
    }
}

/// RFC 7643 §2.5: null, an empty array and an empty object all mean "unassigned".
fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Deepest level [`semantic_eq`] descends to; below it values compare exactly. Documents are
/// at most five levels deep (extension, attribute, element, sub-attribute).
const MAX_COMPARE_DEPTH: usize = 16;

/// JSON equality with object keys compared case-insensitively and unassigned members ignored.
fn semantic_eq(a: &Value, b: &Value) -> bool {
    eq_at(a, b, 0)
}

fn eq_at(a: &Value, b: &Value, depth: usize) -> bool {
    if is_absent(a) && is_absent(b) {
        return true;
    }
    if depth >= MAX_COMPARE_DEPTH {
        return a == b;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let present = |m: &Obj| m.values().filter(|v| !is_absent(v)).count();
            present(x) == present(y)
                && x.iter()
                    .filter(|(_, v)| !is_absent(v))
                    .all(|(k, v)| get_ci(y, k).is_some_and(|w| eq_at(v, w, depth + 1)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| eq_at(v, w, depth + 1))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{core_group, core_user, enterprise_user, role_extension};
    use serde_json::json;

    fn users() -> ResourceSchema {
        let roles = role_extension(urn::WRITER_USER, "role", &["member".into(), "admin".into()]);
        ResourceSchema::new(
            "User",
            "/Users",
            "User Account",
            core_user(),
            vec![enterprise_user(), roles],
        )
    }

    fn groups() -> ResourceSchema {
        ResourceSchema::new("Group", "/Groups", "Group", core_group(), vec![])
    }

    fn user_doc() -> Value {
        json!({
            "schemas": [urn::USER],
            "id": "2819c223",
            "externalId": "00ujl29u",
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "displayName": "Ada Lovelace",
            "active": true,
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": true},
                {"value": "ada@home.example", "type": "home"}
            ],
            "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
        })
    }

    fn group_doc() -> Value {
        json!({
            "schemas": [urn::GROUP],
            "id": "abf4dd94",
            "displayName": "Test SCIMv2",
            "members": [{"value": "u1", "display": "one"}, {"value": "u2"}],
            "meta": {"resourceType": "Group", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
        })
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [urn::PATCH_OP], "Operations": ops})
    }

    /// Parses and applies; the document is untouched on error.
    fn run(doc: &mut Value, rs: &ResourceSchema, ops: Value) -> ScimResult<bool> {
        let before = doc.clone();
        let parsed = parse_request(&body(ops), rs)?;
        let out = apply(doc, &parsed, rs);
        if out.is_err() {
            assert_eq!(
                *doc, before,
                "a failed PATCH must leave the document as it was"
            );
        }
        out
    }

    fn kind(e: &ScimError) -> Option<ScimType> {
        assert_eq!(e.status, 400, "{e}");
        e.scim_type
    }

    #[test]
    fn okta_deactivate_is_a_pathless_replace() {
        let mut doc = user_doc();
        let changed = run(
            &mut doc,
            &users(),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .unwrap();
        assert!(changed);
        let mut expected = user_doc();
        expected["active"] = json!(false);
        assert_eq!(doc, expected);
        // Deactivating again changes nothing.
        assert!(!run(
            &mut doc,
            &users(),
            json!([{"op": "replace", "value": {"active": false}}])
        )
        .unwrap());
        assert_eq!(doc, expected);
    }

    #[test]
    fn pascal_case_names_and_capitalised_ops() {
        let mut doc = user_doc();
        let ops = json!([
            {"op": "Replace", "value": {"Active": false, "DisplayName": "Ada L.", "NAME": {"GivenName": "Augusta"}}},
            {"Op": "Add", "Path": "NickName", "Value": "Ada"}
        ]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(doc["active"], json!(false));
        assert_eq!(doc["displayName"], json!("Ada L."));
        assert_eq!(
            doc["name"],
            json!({"givenName": "Augusta", "familyName": "Lovelace"})
        );
        assert_eq!(doc["nickName"], json!("Ada"));
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            !keys
                .iter()
                .any(|k| ["Active", "DisplayName", "NAME", "NickName"].contains(k)),
            "{keys:?}"
        );
    }

    #[test]
    fn okta_group_rename_carries_the_same_id() {
        let mut doc = group_doc();
        let ops = json!([{"op": "replace", "value": {"id": "abf4dd94", "displayName": "New"}}]);
        assert!(run(&mut doc, &groups(), ops.clone()).unwrap());
        let mut expected = group_doc();
        expected["displayName"] = json!("New");
        assert_eq!(doc, expected);
        // Okta repeats the rename with every membership update: a no-op.
        assert!(!run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(doc, expected);
    }

    #[test]
    fn a_different_id_in_a_pathless_replace_is_a_mutability_error() {
        let mut doc = group_doc();
        let ops = json!([{"op": "replace", "value": {"id": "other", "displayName": "New"}}]);
        let e = run(&mut doc, &groups(), ops).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        assert_eq!(doc, group_doc());
        // meta and schemas in a value are ignored.
        let ops = json!([{"op": "replace", "value": {"meta": {"resourceType": "X"}, "schemas": ["x"], "displayName": "Test SCIMv2"}}]);
        assert!(!run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(doc, group_doc());
    }

    #[test]
    fn okta_membership_delta() {
        let mut doc = group_doc();
        let ops = json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u3", "display": "x"}]}
        ]);
        assert!(run(&mut doc, &groups(), ops).unwrap());
        let mut expected = group_doc();
        // `display` is readOnly: the server derives it.
        expected["members"] = json!([{"value": "u2"}, {"value": "u3"}]);
        assert_eq!(doc, expected);
    }

    #[test]
    fn re_adding_a_member_is_a_no_op() {
        let mut doc = group_doc();
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": "u1", "display": "someone else"}]}]);
        assert!(!run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(doc, group_doc());
        // Also pathless, as a single value rather than a list, and duplicated in one request.
        let ops = json!([{"op": "add", "value": {"members": [{"value": "u2"}, {"value": "u2", "type": "User"}]}}]);
        assert!(!run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(doc, group_doc());
    }

    #[test]
    fn removing_an_absent_member_is_a_no_op() {
        let mut doc = group_doc();
        let ops = json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]);
        assert!(!run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(doc, group_doc());
        let mut empty = json!({"schemas": [urn::GROUP], "id": "g", "displayName": "Empty"});
        assert!(!run(
            &mut empty,
            &groups(),
            json!([{"op": "remove", "path": "members[value eq \"x\"]"}])
        )
        .unwrap());
        assert_eq!(
            empty,
            json!({"schemas": [urn::GROUP], "id": "g", "displayName": "Empty"})
        );
    }

    #[test]
    fn replace_members_replaces_the_whole_list() {
        let mut doc = group_doc();
        let ops = json!([{"op": "replace", "path": "members",
            "value": [{"value": "u2", "display": "two"}, {"value": "u9"}, {"value": "u9"}]}]);
        assert!(run(&mut doc, &groups(), ops).unwrap());
        let mut expected = group_doc();
        expected["members"] = json!([{"value": "u2"}, {"value": "u9"}]);
        assert_eq!(doc, expected);
        // The pathless variant seen from Okta (jelhub/scimgateway#113): an empty list empties the group.
        let ops = json!([{"op": "replace", "value": {"members": [], "id": "abf4dd94", "displayName": "Test SCIMv2"}}]);
        assert!(run(&mut doc, &groups(), ops).unwrap());
        expected.as_object_mut().unwrap().remove("members");
        assert_eq!(doc, expected);
    }

    #[test]
    fn remove_members_without_filter_removes_all() {
        let mut doc = group_doc();
        assert!(run(
            &mut doc,
            &groups(),
            json!([{"op": "remove", "path": "members"}])
        )
        .unwrap());
        let mut expected = group_doc();
        expected.as_object_mut().unwrap().remove("members");
        assert_eq!(doc, expected);
        assert!(!run(
            &mut doc,
            &groups(),
            json!([{"op": "remove", "path": "members"}])
        )
        .unwrap());
    }

    #[test]
    fn entra_remove_with_a_value_list_removes_only_those_members() {
        let mut doc = group_doc();
        let ops =
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1"}]}]);
        assert!(run(&mut doc, &groups(), ops).unwrap());
        let mut expected = group_doc();
        expected["members"] = json!([{"value": "u2"}]);
        assert_eq!(doc, expected);
        // An empty list removes nothing rather than everything.
        let ops = json!([{"op": "Remove", "path": "members", "value": []}]);
        assert!(!run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(doc, expected);
    }

    #[test]
    fn entra_add_member_as_a_bare_string_and_with_ref_null() {
        let mut doc = group_doc();
        let ops = json!([
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5"}]},
            {"op": "add", "path": "members", "value": "string id 1"}
        ]);
        assert!(run(&mut doc, &groups(), ops).unwrap());
        assert_eq!(
            doc["members"],
            json!([{"value": "u1", "display": "one"}, {"value": "u2"}, {"value": "f648f8d5"}, {"value": "string id 1"}])
        );
    }

    #[test]
    fn entra_replace_through_a_value_filter_and_a_sub_attribute() {
        let mut doc = user_doc();
        let ops = json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@x.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        let mut expected = user_doc();
        expected["emails"][0]["value"] = json!("new@x.com");
        expected["name"]["familyName"] = json!("updatedFamilyName");
        assert_eq!(doc, expected);
    }

    #[test]
    fn entra_dotted_and_urn_keys_in_a_pathless_replace() {
        let mut doc = user_doc();
        let ops = json!([{"op": "replace", "value": {
            "displayName": "Bjfe",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
        }}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        let mut expected = user_doc();
        expected["displayName"] = json!("Bjfe");
        expected["name"] = json!({"givenName": "Kkom", "familyName": "Unua"});
        expected["schemas"] = json!([urn::USER, urn::ENTERPRISE_USER]);
        expected[urn::ENTERPRISE_USER] = json!({"employeeNumber": "Aklq"});
        assert_eq!(doc, expected);
    }

    #[test]
    fn replace_of_a_complex_attribute_merges_sub_attributes() {
        let mut doc = user_doc();
        let ops = json!([{"op": "replace", "path": "name", "value": {"givenName": "Augusta", "middleName": null, "formatted": "A. A. Lovelace"}}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(
            doc["name"],
            json!({"givenName": "Augusta", "familyName": "Lovelace", "formatted": "A. A. Lovelace"})
        );
        let ops = json!([{"op": "replace", "value": {"name": {"familyName": null}}}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(
            doc["name"],
            json!({"givenName": "Augusta", "formatted": "A. A. Lovelace"})
        );
    }

    #[test]
    fn a_new_primary_email_clears_the_old_one() {
        let mut doc = user_doc();
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "ada@new.example", "type": "other", "primary": true}]}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "ada@example.com", "type": "work", "primary": false},
                {"value": "ada@home.example", "type": "home"},
                {"value": "ada@new.example", "type": "other", "primary": true}
            ])
        );
        // Through a filter, too.
        let ops =
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        let primaries: Vec<bool> = doc["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["primary"] == json!(true))
            .collect();
        assert_eq!(primaries, [false, true, false]);
    }

    #[test]
    fn enterprise_urn_path_add() {
        let mut doc = user_doc();
        let ops = json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "701984"}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        let mut expected = user_doc();
        expected["schemas"] = json!([urn::USER, urn::ENTERPRISE_USER]);
        expected[urn::ENTERPRISE_USER] = json!({"employeeNumber": "701984"});
        assert_eq!(doc, expected);
        // Removing its last attribute removes the container and its URN.
        let ops = json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn extension_container_path_with_an_object_value() {
        let mut doc = user_doc();
        let ops = json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
            "value": {"schemas": [urn::ENTERPRISE_USER], "Department": "R&D", "manager": {"value": "m-1", "displayName": "ignored"}}}]);
        assert!(
            run(&mut doc, &users(), ops).unwrap(),
            "an extension object may carry its schemas (scim2-tester does)"
        );
        let mut expected = user_doc();
        expected["schemas"] = json!([urn::USER, urn::ENTERPRISE_USER]);
        expected[urn::ENTERPRISE_USER] = json!({"department": "R&D", "manager": {"value": "m-1"}});
        assert_eq!(doc, expected);
        // Entra's bare-string manager, then removal through a filter on the single-valued attribute.
        let ops = json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "271"}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(
            doc[urn::ENTERPRISE_USER]["manager"],
            json!({"value": "271"})
        );
        let ops = json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value eq \"271\"]"}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(doc[urn::ENTERPRISE_USER], json!({"department": "R&D"}));
        // Removing the container removes its URN.
        let ops = json!([{"op": "remove", "path": urn::ENTERPRISE_USER}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn pathless_extension_container_key() {
        let mut doc = user_doc();
        let ops = json!([{"op": "replace", "value": {urn::WRITER_USER: {"Role": "admin"}, "urn:ietf:params:scim:schemas:core:2.0:User": {"title": "Countess"}}}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(doc[urn::WRITER_USER], json!({"role": "admin"}));
        assert_eq!(doc["title"], json!("Countess"));
        assert_eq!(doc["schemas"], json!([urn::USER, urn::WRITER_USER]));
    }

    #[test]
    fn writer_role_replace_by_urn_path() {
        let mut doc = user_doc();
        let path = "urn:custom:params:scim:schemas:extension:writer:2.0:User:role";
        assert!(run(
            &mut doc,
            &users(),
            json!([{"op": "replace", "path": path, "value": "member"}])
        )
        .unwrap());
        let mut expected = user_doc();
        expected["schemas"] = json!([urn::USER, urn::WRITER_USER]);
        expected[urn::WRITER_USER] = json!({"role": "member"});
        assert_eq!(doc, expected);
        assert!(run(
            &mut doc,
            &users(),
            json!([{"op": "Replace", "path": path, "value": "admin"}])
        )
        .unwrap());
        expected[urn::WRITER_USER] = json!({"role": "admin"});
        assert_eq!(doc, expected);
    }

    #[test]
    fn replace_through_a_filter_matching_nothing_is_no_target() {
        let mut doc = user_doc();
        let e = run(
            &mut doc,
            &users(),
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x@y"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::NoTarget));
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn add_through_a_filter_matching_nothing_creates_the_element() {
        let mut doc = user_doc();
        let ops = json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555-0100"}]);
        assert!(run(&mut doc, &users(), ops.clone()).unwrap());
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"type": "work", "value": "555-0100"}])
        );
        // Again: now it matches and is updated in place.
        let ops = json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555-0199"}]);
        assert!(run(&mut doc, &users(), ops).unwrap());
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"type": "work", "value": "555-0199"}])
        );
        // A filter that is not just `eq` terms cannot describe a new element.
        let ops = json!([{"op": "add", "path": "ims[type ne \"aim\"].value", "value": "x"}]);
        assert_eq!(
            kind(&run(&mut doc, &users(), ops).unwrap_err()),
            Some(ScimType::NoTarget)
        );
    }

    #[test]
    fn atomicity_a_failing_operation_undoes_the_earlier_ones() {
        let rs = users();
        // Fails while parsing: nothing is applied.
        let mut doc = user_doc();
        let e = run(&mut doc, &rs, json!([{"op": "replace", "value": {"active": false}}, {"op": "replace", "path": "nope", "value": 1}])).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
        assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
        assert_eq!(doc, user_doc());
        // Fails while applying, after a successful first operation.
        let ops = vec![
            PatchOperation {
                op: OpKind::Replace,
                path: None,
                value: Some(json!({"active": false})),
            },
            PatchOperation {
                op: OpKind::Replace,
                path: Some(PatchPath::Attr {
                    attr: AttrPath::parse("nope").unwrap(),
                    filter: None,
                    sub: None,
                }),
                value: Some(json!(1)),
            },
        ];
        let e = apply(&mut doc, &ops, &rs).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
        assert_eq!(doc, user_doc());
        let e = run(
            &mut doc,
            &rs,
            json!([
                {"op": "replace", "value": {"active": false}},
                {"op": "add", "path": "members", "value": "x"}
            ]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
        let e = run(
            &mut doc,
            &rs,
            json!([
                {"op": "replace", "value": {"active": false}},
                {"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x"}
            ]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::NoTarget));
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn remove_without_path_is_no_target() {
        let e = parse_request(&body(json!([{"op": "remove"}])), &users()).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::NoTarget));
        let mut doc = user_doc();
        let ops = [PatchOperation {
            op: OpKind::Remove,
            path: None,
            value: None,
        }];
        assert_eq!(
            kind(&apply(&mut doc, &ops, &users()).unwrap_err()),
            Some(ScimType::NoTarget)
        );
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn malformed_messages_are_invalid_syntax() {
        let rs = users();
        let syntax = |b: Value| kind(&parse_request(&b, &rs).unwrap_err());
        let op = json!([{"op": "replace", "value": {"active": false}}]);
        assert_eq!(
            syntax(json!({"Operations": op})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::USER], "Operations": op})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::PATCH_OP], "Operations": []})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::PATCH_OP]})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(json!({"schemas": [urn::PATCH_OP], "Operations": {"op": "add"}})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(syntax(json!([1])), Some(ScimType::InvalidSyntax));
        assert_eq!(
            syntax(body(json!([{"op": "merge", "value": {}}]))),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(body(json!([{"value": {}}]))),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            syntax(body(json!([{"op": "add", "path": "nickName"}]))),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(syntax(body(json!(["add"]))), Some(ScimType::InvalidSyntax));
        // Key and URN case do not matter.
        let ok =
            json!({"SCHEMAS": ["URN:ietf:params:scim:api:messages:2.0:patchop"], "operations": op});
        assert_eq!(parse_request(&ok, &rs).unwrap().len(), 1);
    }

    #[test]
    fn bad_paths_are_invalid_path() {
        let rs = users();
        for path in [
            "nope",
            "emails[type eq \"work\"",
            "emails[type eq]",
            "emails[]",
            "emails[type eq \"work\"]value",
            "emails[type eq \"work\"].nope",
            "emails[nope eq \"work\"]",
            "emails.value[type eq \"work\"]",
            "userName[value eq \"x\"]",
            "name.nope",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope",
            "urn:x:y:employeeNumber",
            "a b",
            "emails[type eq \"a\"][value eq \"b\"]",
        ] {
            let e = parse_request(&body(json!([{"op": "remove", "path": path}])), &rs).unwrap_err();
            assert_eq!(kind(&e), Some(ScimType::InvalidPath), "{path}: {e}");
        }
        let e = parse_request(&body(json!([{"op": "remove", "path": 7}])), &rs).unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    }

    #[test]
    fn paths_parse_to_canonical_form() {
        let rs = users();
        let p = parse_path("Emails[Type eq \"work\" and value co \"]\"].VALUE", &rs).unwrap();
        let PatchPath::Attr { attr, filter, sub } = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            attr,
            AttrPath {
                uri: None,
                name: "emails".into(),
                sub: None
            }
        );
        assert!(filter.is_some());
        assert_eq!(sub.as_deref(), Some("value"));
        let p = parse_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            &rs,
        )
        .unwrap();
        assert_eq!(
            p,
            PatchPath::Attr {
                attr: AttrPath {
                    uri: Some(urn::ENTERPRISE_USER.into()),
                    name: "manager".into(),
                    sub: None
                },
                filter: None,
                sub: Some("value".into()),
            }
        );
        assert_eq!(
            parse_path(
                " URN:ietf:params:scim:schemas:extension:enterprise:2.0:User ",
                &rs
            )
            .unwrap(),
            PatchPath::Extension(urn::ENTERPRISE_USER.into())
        );
        let p = parse_path(
            "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
            &rs,
        )
        .unwrap();
        assert!(
            matches!(p, PatchPath::Attr { ref attr, sub: Some(ref s), .. } if attr.uri.is_none() && attr.name == "name" && s == "familyName")
        );
        let p = parse_path(
            "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
            &groups(),
        )
        .unwrap();
        assert!(
            matches!(p, PatchPath::Attr { ref attr, filter: Some(_), sub: None } if attr.name == "members")
        );
    }

    #[test]
    fn read_only_targets_are_mutability_errors() {
        let mut doc = user_doc();
        for (op, path) in [
            ("replace", "id"),
            ("remove", "meta"),
            ("replace", "meta.lastModified"),
            ("add", "groups"),
            (
                "replace",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
            ),
        ] {
            let e = run(
                &mut doc,
                &users(),
                json!([{"op": op, "path": path, "value": "x"}]),
            )
            .unwrap_err();
            assert_eq!(kind(&e), Some(ScimType::Mutability), "{op} {path}");
        }
        let mut g = group_doc();
        let e = run(
            &mut g,
            &groups(),
            json!([{"op": "replace", "path": "members[value eq \"u1\"].display", "value": "x"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        assert_eq!(doc, user_doc());
        assert_eq!(g, group_doc());
    }

    #[test]
    fn required_and_immutable_attributes_are_protected() {
        let mut doc = user_doc();
        let e = run(
            &mut doc,
            &users(),
            json!([{"op": "remove", "path": "userName"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        let e = run(
            &mut doc,
            &users(),
            json!([{"op": "replace", "value": {"userName": null}}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        let mut g = group_doc();
        let e = run(
            &mut g,
            &groups(),
            json!([{"op": "remove", "path": "displayName"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        // members.value is immutable: set when the member is added, never changed.
        let e = run(
            &mut g,
            &groups(),
            json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u9"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        // ... but may be set where absent.
        let ops = json!([{"op": "add", "path": "members[value eq \"u2\"].type", "value": "User"}]);
        assert!(run(&mut g, &groups(), ops).unwrap());
        assert_eq!(
            g["members"],
            json!([{"value": "u1", "display": "one"}, {"value": "u2", "type": "User"}])
        );
        let e = run(
            &mut g,
            &groups(),
            json!([{"op": "replace", "path": "members[value eq \"u2\"].type", "value": "Group"}]),
        )
        .unwrap_err();
        assert_eq!(kind(&e), Some(ScimType::Mutability));
        assert_eq!(doc, user_doc());
    }

    #[test]
    fn structurally_impossible_values_are_invalid_value() {
        let rs = users();
        for ops in [
            json!([{"op": "replace", "path": "active", "value": {"x": 1}}]),
            json!([{"op": "add", "path": "nickName", "value": ["a"]}]),
            json!([{"op": "replace", "path": "name", "value": "Ada"}]),
            json!([{"op": "add", "path": "emails", "value": [["a"]]}]),
            json!([{"op": "replace", "path": "name.givenName", "value": {"a": 1}}]),
            json!([{"op": "replace", "value": "Ada"}]),
            json!([{"op": "replace", "value": {"nope": 1}}]),
            json!([{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "x"}}]),
            json!([{"op": "add", "path": urn::ENTERPRISE_USER, "value": 5}]),
            json!([{"op": "replace", "value": {urn::ENTERPRISE_USER: {"nope": 1}}}]),
        ] {
            let mut doc = user_doc();
            let e = run(&mut doc, &rs, ops.clone()).unwrap_err();
            assert_eq!(kind(&e), Some(ScimType::InvalidValue), "{ops}: {e}");
            assert_eq!(doc, user_doc());
        }
        let mut doc = user_doc();
        let e = run(
            &mut doc,
            &rs,
            json!([{"op": "replace", "value": {"nope": 1}}]),
        )
        .unwrap_err();
        assert!(e.detail.contains("'nope'"), "{}", e.detail);
    }

    #[test]
    fn remove_semantics() {
        let rs = users();
        let mut doc = user_doc();
        // A sub-attribute of matching elements.
        assert!(run(
            &mut doc,
            &rs,
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}])
        )
        .unwrap());
        assert_eq!(
            doc["emails"][0],
            json!({"value": "ada@example.com", "type": "work"})
        );
        // Matching elements.
        assert!(run(
            &mut doc,
            &rs,
            json!([{"op": "remove", "path": "emails[value ew \"home.example\"]"}])
        )
        .unwrap());
        assert_eq!(
            doc["emails"],
            json!([{"value": "ada@example.com", "type": "work"}])
        );
        // A single-valued attribute and a sub-attribute.
        assert!(run(&mut doc, &rs, json!([{"op": "remove", "path": "displayName"}, {"op": "remove", "path": "name.givenName"}])).unwrap());
        assert!(doc.get("displayName").is_none());
        assert_eq!(doc["name"], json!({"familyName": "Lovelace"}));
        // Absent attributes: success, no change.
        assert!(!run(&mut doc, &rs, json!([{"op": "remove", "path": "nickName"}, {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}])).unwrap());
        // Replace with null unassigns.
        assert!(run(
            &mut doc,
            &rs,
            json!([{"op": "replace", "path": "name.familyName", "value": null}])
        )
        .unwrap());
        assert!(doc.get("name").is_none());
    }

    #[test]
    fn write_only_password_is_accepted() {
        let mut doc = user_doc();
        assert!(run(
            &mut doc,
            &users(),
            json!([{"op": "replace", "path": "password", "value": "1mz050nq"}])
        )
        .unwrap());
        assert_eq!(doc["password"], json!("1mz050nq"));
    }

    #[test]
    fn a_patch_of_nothing_changes_nothing() {
        let mut doc = user_doc();
        let ops = json!([
            {"op": "add", "path": "emails", "value": {"value": "ada@example.com", "type": "work", "primary": true}},
            {"op": "replace", "path": "userName", "value": "ada@example.com"},
            {"op": "add", "path": "nickName", "value": null},
            {"op": "replace", "value": {"id": "2819c223", "name": {"givenName": "Ada"}}}
        ]);
        assert!(!run(&mut doc, &users(), ops).unwrap());
        assert_eq!(doc, user_doc());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn path() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                Just("members".to_string()),
                Just("members[value eq \"u1\"]".to_string()),
                Just("emails[type eq \"work\"].value".to_string()),
                Just("emails[primary eq true]".to_string()),
                Just("name.givenName".to_string()),
                Just("name".to_string()),
                Just("active".to_string()),
                Just(urn::ENTERPRISE_USER.to_string()),
                Just(format!("{}:manager", urn::ENTERPRISE_USER)),
                Just("id".to_string()),
                "[a-zA-Z\\[\\]\". :]{0,24}",
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "[a-z0-9@.]{0,8}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("value".to_string()),
                            Just("primary".to_string()),
                            Just("type".to_string()),
                            Just("members".to_string()),
                            Just("Active".to_string()),
                            Just("name.givenName".to_string()),
                            Just("id".to_string()),
                            Just(urn::ENTERPRISE_USER.to_string()),
                            "[a-z]{1,6}",
                        ],
                        inner,
                        0..4
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn never_panics_and_failures_leave_the_document_alone(
                ops in prop::collection::vec((0..4u8, path(), value()), 1..5)
            ) {
                let rs = users();
                let list: Vec<Value> = ops
                    .iter()
                    .map(|(op, path, value)| {
                        let name = ["add", "remove", "Replace", "bogus"][*op as usize];
                        json!({"op": name, "path": path, "value": value})
                    })
                    .collect();
                for mut doc in [user_doc(), group_doc()] {
                    let before = doc.clone();
                    if let Ok(parsed) = parse_request(&body(Value::Array(list.clone())), &rs) {
                        match apply(&mut doc, &parsed, &rs) {
                            Ok(false) | Err(_) => prop_assert_eq!(&doc, &before),
                            Ok(true) => prop_assert!(!semantic_eq(&doc, &before)),
                        }
                    }
                }
            }
        }
    }
}
