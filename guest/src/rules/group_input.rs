//! A group as `POST /Groups` and `PUT /Groups/{id}` send it (RFC 7644 §3.3, §3.5.1): the document
//! and its members as a typed list of user ids.
//!
//! Okta's App Integration Wizard replaces the whole group on every membership change, so a PUT
//! may carry 100 000 members (about 7 MB). As a `serde_json::Value` tree that is 100 000 maps,
//! several times the body's size, in a guest that has 64 MiB in all. [`GroupInput::parse`]
//! therefore reads `members` while parsing, a batch of values at a time: each batch goes
//! through the same dialect rules ([`crate::rules::dialect`]) and schema checks
//! ([`resource::check_value`]) as the whole document would, and only the ids are kept. The rest
//! of the document is an ordinary `Value`, normalised by the caller; `members` stays in it as
//! `null` at its place, which the normaliser and the validator skip, so that the audit record
//! still lists the attribute.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::model::error::{ScimError, ScimResult};
use crate::model::policy::Policy;
use crate::model::schema::ResourceSchema;
use crate::rules::json::strict::NoDuplicateKeys;
use crate::rules::patch::{PatchOperation, PatchPath};
use crate::rules::resource::{self, InputRules};

/// A group document with its members apart.
#[derive(Debug)]
pub struct GroupInput {
    /// The document, `members` (if sent) as `null`.
    pub doc: Value,
    /// The member ids in the order sent, or why they are refused. The refusal waits until the
    /// rest of the document has been checked, so that an error there is reported first.
    pub members: ScimResult<Vec<String>>,
}

/// How member values are checked.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    pub method: &'a str,
    pub rs: &'a ResourceSchema,
    pub policy: &'a Policy,
    pub input: InputRules,
}

/// Member values checked together: large enough to make the per-batch work negligible, small
/// enough to hold as `Value`s.
const BATCH: usize = 1000;

impl GroupInput {
    /// Parses a request body (strictly: no repeated keys, see [`crate::rules::json`]). A body that is
    /// not a JSON object is returned as it is, without members, for the validator to refuse.
    pub fn parse(body: &[u8], rules: Rules<'_>) -> serde_json::Result<GroupInput> {
        let is_object = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if !is_object {
            return Ok(GroupInput {
                doc: crate::rules::json::parse(body)?,
                members: Ok(Vec::new()),
            });
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let input = Top(rules).deserialize(&mut de)?;
        de.end()?;
        Ok(input)
    }

    /// Takes `members` out of a normalised document (callers that already hold a `Value`).
    pub fn from_value(mut doc: Value, rules: Rules<'_>) -> GroupInput {
        let members = match doc.as_object_mut().and_then(take_members) {
            Some(v) => ids_of(vec![v], rules, false),
            None => Ok(Vec::new()),
        };
        GroupInput { doc, members }
    }
}

/// Replaces a `members` value (any case) with `null`, answering the value.
fn take_members(obj: &mut Map<String, Value>) -> Option<Value> {
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case("members"))?
        .clone();
    obj.insert(key, Value::Null).filter(|v| !v.is_null())
}

/// The ids that `values` (elements of `members`; `spread`: an array is one element, not the
/// whole list) name, after the dialect rules and schema checks the document would get.
fn ids_of(values: Vec<Value>, rules: Rules<'_>, spread: bool) -> ScimResult<Vec<String>> {
    let members = match (spread, values.len()) {
        (false, 1) => values.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(values),
    };
    let mut doc = Map::new();
    doc.insert("members".into(), members);
    let doc = crate::rules::dialect::normalize(
        Value::Object(doc),
        rules.method,
        Some(rules.rs),
        rules.policy,
    )?;
    let Some(attr) = rules.rs.core.attribute("members") else {
        return Ok(Vec::new());
    };
    let value = doc.get("members").unwrap_or(&Value::Null);
    if value.is_null() {
        return Ok(Vec::new());
    }
    let checked = resource::check_value(attr, value, rules.input)?;
    member_ids(&checked)
}

/// The top-level object.
struct Top<'a>(Rules<'a>);

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = GroupInput;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<GroupInput, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = GroupInput;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupInput, A::Error> {
        let (mut object, mut seen) = (Map::new(), HashSet::new());
        let mut members = Ok(Vec::new());
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_lowercase()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            if key.eq_ignore_ascii_case("members") {
                members = map.next_value_seed(MembersSeed(self.0))?;
                object.insert(key, Value::Null);
            } else {
                let value = map.next_value_seed(NoDuplicateKeys)?;
                object.insert(key, value);
            }
        }
        Ok(GroupInput {
            doc: Value::Object(object),
            members,
        })
    }
}

/// The `members` value: checked and reduced to ids a batch at a time.
struct MembersSeed<'a>(Rules<'a>);

impl<'de> DeserializeSeed<'de> for MembersSeed<'_> {
    type Value = ScimResult<Vec<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl MembersSeed<'_> {
    fn one(self, v: Value) -> ScimResult<Vec<String>> {
        ids_of(vec![v], self.0, false)
    }
}

impl<'de> Visitor<'de> for MembersSeed<'_> {
    type Value = ScimResult<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Ok(Vec::new()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.one(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.one(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.one(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.one(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.one(Value::String(v.to_owned())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = NoDuplicateKeys.visit_map(map)?;
        Ok(self.one(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        let mut refused = None;
        // A refused value ends the checking, not the parsing: a syntax error later in the
        // body is still a syntax error.
        while let Some(v) = seq.next_element_seed(NoDuplicateKeys)? {
            if refused.is_some() {
                continue;
            }
            batch.push(v);
            if batch.len() == BATCH {
                match ids_of(std::mem::take(&mut batch), self.0, true) {
                    Ok(more) => ids.extend(more),
                    Err(e) => refused = Some(e),
                }
            }
        }
        if let Some(e) = refused {
            return Ok(Err(e));
        }
        if !batch.is_empty() {
            match ids_of(batch, self.0, true) {
                Ok(more) => ids.extend(more),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(ids))
    }
}

/// The ids a `members` value names (an array, one object, or Entra's bare id strings).
pub fn member_ids(value: &Value) -> ScimResult<Vec<String>> {
    let items: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::String(s) => s.as_str(),
            Value::Object(m) => {
                let field = |name: &str| {
                    m.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                };
                if let Some(t) = field("type").and_then(Value::as_str) {
                    if !t.eq_ignore_ascii_case("User") {
                        return Err(ScimError::invalid_value(format!(
                            "member type '{t}' is not supported: members are users"
                        )));
                    }
                }
                match field("value") {
                    Some(Value::String(s)) => s.as_str(),
                    _ => {
                        return Err(ScimError::invalid_value(
                            "each member needs a string 'value' (the user's id)",
                        ))
                    }
                }
            }
            Value::Null => continue,
            _ => {
                return Err(ScimError::invalid_value(
                    "members must be objects with a 'value'",
                ))
            }
        };
        if id.is_empty() {
            return Err(ScimError::invalid_value(
                "a member 'value' must not be empty",
            ));
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// Splits a pathless add/replace whose value carries `members` into a document part and a
/// members part.
pub(crate) fn split_members(
    op: &PatchOperation,
) -> (Option<PatchOperation>, Option<PatchOperation>) {
    let Some(Value::Object(obj)) = &op.value else {
        return (Some(op.clone()), None);
    };
    let Some((key, members)) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")) else {
        return (Some(op.clone()), None);
    };
    let mut rest = obj.clone();
    rest.remove(key.as_str());
    let members_op = PatchOperation {
        op: op.op,
        path: Some(PatchPath::Attr {
            attr: crate::model::schema::AttrPath::parse("members").expect("valid"),
            filter: None,
            sub: None,
        }),
        value: Some(members.clone()),
    };
    let doc_op = (!rest.is_empty()).then(|| PatchOperation {
        op: op.op,
        path: None,
        value: Some(Value::Object(rest)),
    });
    (doc_op, Some(members_op))
}
