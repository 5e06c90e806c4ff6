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
//!
//! The rules, grouped by what they normalise:
//!
//! * `operation`: the PATCH message and each operation's `op` ([`Rule::CapitalisedOps`]).
//! * `values`: attribute values, in POST/PUT bodies and PATCH values ([`Rule::BooleanStrings`],
//!   [`Rule::BareManager`], [`Rule::JsonStringRoles`]).
//! * `path_keys`: the keys of a pathless PATCH value ([`Rule::PathKeys`],
//!   [`Rule::UnknownExtensions`]).
//! * `filters`: value filters in PATCH paths ([`Rule::RemoveWithValue`],
//!   [`Rule::AddFilterUpsert`]).
//! * [`query`]: query parameters ([`Rule::FilteredAttributes`]).

use serde_json::{Map, Value};

use crate::model::diag::{self, Level};
use crate::model::error::{ScimError, ScimResult};
use crate::model::policy::Policy;
use crate::model::schema::ResourceSchema;

mod filters;
mod operation;
mod path_keys;
pub mod query;
#[cfg(test)]
mod tests;
mod values;

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
