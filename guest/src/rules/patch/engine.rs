//! Applying a parsed `PatchOp` to a resource document (RFC 7644 §3.5.2): resolving each
//! operation's target, the mutability rules of RFC 7643 §2.2 (`readOnly`, `immutable`,
//! `required`), pathless values and whole extension containers, and keeping `schemas` in step
//! with the extension objects present. All or nothing: the work happens on a clone.

use serde_json::{Map, Value};

use super::json::{get_ci, get_ci_mut, is_absent, remove_all, semantic_eq, slot};
use super::message::at;
use super::path::{check_filter, parse_path};
use super::remove::remove;
use super::values::fix_primary;
use super::write::{add, replace};
use super::{Obj, OpKind, PatchOperation, PatchPath};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrPath, AttrType, Attribute, Container, Mutability, ResourceSchema};
use crate::rules::filter::Filter;

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

/// What one operation (or one member of a pathless value) designates.
#[derive(Clone, Copy)]
pub(super) struct Target<'s, 'f> {
    pub(super) container: Container<'s>,
    pub(super) attr: &'s Attribute,
    pub(super) filter: Option<&'f Filter>,
    pub(super) sub: Option<&'s Attribute>,
}

impl Target<'_, '_> {
    pub(super) fn label(&self) -> String {
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
pub(super) fn check_immutable(
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

pub(super) fn no_match(t: &Target<'_, '_>) -> ScimError {
    ScimError::no_target(format!(
        "no value of '{}' matches the path '{}'",
        t.attr.name,
        t.label()
    ))
}
