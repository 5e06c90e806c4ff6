//! Dialect rules on attribute values, wherever they appear: POST/PUT bodies and PATCH values
//! (RFC 7643 §2.3 data types, §2.4 multi-valued attributes). [`Rule::BooleanStrings`] turns
//! `"True"` into `true` where the schema says boolean; [`Rule::BareManager`] wraps a bare id for a
//! complex attribute with a `value` sub-attribute; [`Rule::JsonStringRoles`] parses roles sent
//! as JSON text.

use serde_json::{Map, Value};

use super::{join, Fired, Normaliser, Obj, Rule};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::{AttrType, Attribute, Schema};

impl<'a> Normaliser<'a> {
    /// The members of a resource-shaped object: top-level attributes and extension containers
    /// (`scope` `None`), or the attributes of one schema.
    pub(super) fn members(
        &mut self,
        obj: &mut Obj,
        scope: Option<&'a Schema>,
        at: &str,
    ) -> ScimResult<()> {
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
    pub(super) fn value(&mut self, attr: &'a Attribute, v: &mut Value, at: &str) -> ScimResult<()> {
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
    pub(super) fn element(
        &mut self,
        attr: &'a Attribute,
        item: &mut Value,
        at: &str,
    ) -> ScimResult<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use crate::model::schema::urn;
    use crate::rules::dialect::tests::*;
    use serde_json::json;

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
}
