//! The PATCH message (RFC 7644 §3.5.2): each operation is read, its `op` canonicalised
//! ([`Rule::CapitalisedOps`]: Entra's `"Replace"`), its value handed to the value rules for what
//! its path designates, and the PATCH rules of [`super::path_keys`] and [`super::filters`]
//! applied, so that one IdP operation may become several RFC ones.

use serde_json::Value;

use super::{get_ci, get_ci_mut, make_op, take_ci, Normaliser, Obj, Rule};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{Attribute, Schema};
use crate::rules::patch::{self, PatchPath};

/// What a PATCH path designates, as far as value shapes are concerned.
pub(super) enum Target<'a> {
    Extension(&'a Schema),
    Attr {
        attr: &'a Attribute,
        filtered: bool,
        sub: Option<&'a Attribute>,
    },
}

impl<'a> Normaliser<'a> {
    pub(super) fn patch_op(&mut self, body: &mut Value) -> ScimResult<()> {
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

    pub(super) fn target(&self, path: &str) -> Option<Target<'a>> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use crate::rules::dialect::tests::*;
    use serde_json::json;

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
}
