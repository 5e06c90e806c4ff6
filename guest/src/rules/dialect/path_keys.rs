//! Dialect rules on the keys of a pathless PATCH value (RFC 7644 §3.5.2.1, §3.5.2.3: without a
//! `path`, the value is a set of attributes). [`Rule::PathKeys`] splits keys that are paths
//! (`name.givenName`, `urn:…:enterprise:2.0:User:employeeNumber`) and schema containers into
//! one operation each (Entra with `aadOptscim062020`); [`Rule::UnknownExtensions`] drops the
//! container of a schema the resource type does not have (Okta's custom group schema).

use serde_json::{Map, Value};

use super::operation::Target;
use super::{join, Fired, Normaliser, Obj, Rule};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::Mutability;

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
    /// [`Rule::PathKeys`]: splits a pathless value into a pathless part (attribute names) and
    /// one operation per path key and per container attribute. Containers are RFC-valid, so
    /// with the rule off only path keys are refused.
    pub(super) fn split_path_keys(
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
}

/// A schema id: a URN (`urn:okta:custom:group:1.0`) or Microsoft's URL-style ids.
fn looks_like_schema_uri(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("urn:") || k.starts_with("http://") || k.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use crate::model::schema::urn;
    use crate::rules::dialect::tests::*;
    use serde_json::json;

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
        let rs = policy(off).group_schema();
        let mut group = json!({"schemas": [urn::GROUP], "id": "g1", "displayName": "Eng"});
        let e = crate::rules::patch::parse_request(&patch(ops), &rs)
            .and_then(|parsed| crate::rules::patch::apply(&mut group, &parsed, &rs))
            .unwrap_err();
        assert_eq!(e.status, 400, "{e}");
    }
}
