//! Dialect rules on query parameters rather than bodies.
//!
//! RFC 7644 §3.4.2.5 makes `attributes` a list of attribute names in the notation of §3.10
//! (`emails`, `name.givenName`, `urn:…:User:userName`); a value filter has no place there.
//! Microsoft's SCIM validator and its reference Postman collection nevertheless send
//! `attributes=emails[type eq "work"]`. Under [`Rule::FilteredAttributes`] such an entry names
//! the attribute it filters (`emails`, or `emails.value` for `emails[type eq "work"].value`):
//! the response carries every value of the attribute, a superset of what the filter picks,
//! which the client can narrow itself. Switched off, it is the strict 400 `invalidValue`.
//!
//! Only `attributes` is rewritten: widening an `excludedAttributes` entry the same way would
//! hide values the client did not ask to hide, and no identity provider is known to send one.

use super::{log, permit, Fired, Rule};
use crate::model::error::{ScimError, ScimResult};
use crate::model::policy::Policy;
use crate::model::schema::AttrPath;
use crate::rules::filter::{self, ParseOptions};

/// The `attributes` parameter with each value-filtered entry replaced by the attribute it
/// filters (when the rule is on for `policy`), every rewrite logged.
pub fn attributes(text: &str, policy: &Policy) -> ScimResult<String> {
    let (out, fired) = rewrite_attributes(text, policy)?;
    log(&fired);
    Ok(out)
}

/// [`attributes`] without logging: the rewritten parameter and what fired. Entries of another
/// shape are left for the projection parser to judge.
pub fn rewrite_attributes(text: &str, policy: &Policy) -> ScimResult<(String, Vec<Fired>)> {
    if !text.contains('[') {
        return Ok((text.to_string(), Vec::new()));
    }
    let mut fired = Vec::new();
    let mut entries = Vec::new();
    for (i, entry) in split_entries(text).into_iter().enumerate() {
        let entry = entry.trim();
        let Some((name, inner, sub)) = value_filtered(entry) else {
            entries.push(entry.to_string());
            continue;
        };
        // The place names the attribute, never the filter: its values may be personal data.
        let at = format!("attributes[{i}] ({name})");
        permit(Rule::FilteredAttributes, policy, &mut fired, &at, || {
            ScimError::invalid_value(format!(
                "'{entry}' is not an attribute path: RFC 7644 §3.4.2.5 takes attribute names, not value filters"
            ))
        })?;
        let opts = ParseOptions {
            lenient_unquoted: policy.lenient_filter_values,
        };
        filter::parse_with(inner, opts).map_err(|e| {
            ScimError::invalid_value(format!(
                "'{entry}' is not an attribute path: its value filter is invalid ({})",
                e.detail
            ))
        })?;
        entries.push(format!("{name}{sub}"));
    }
    Ok((entries.join(","), fired))
}

/// Splits a comma-separated list at the commas outside brackets and quoted strings (a filter
/// value may hold a comma: `emails[value eq "a,b"]`).
fn split_entries(text: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut scan = Scanner::default();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ',' && scan.at_top() {
            entries.push(&text[start..i]);
            start = i + 1;
        }
        scan.step(c);
    }
    entries.push(&text[start..]);
    entries
}

/// `name[filter]` or `name[filter].sub` as (`name`, `filter`, `.sub` or empty), where `name` is
/// an attribute path without a sub-attribute; `None` for any other shape.
fn value_filtered(entry: &str) -> Option<(&str, &str, &str)> {
    let open = entry.find('[')?;
    let name = &entry[..open];
    AttrPath::parse(name).filter(|p| p.sub.is_none())?;
    let mut scan = Scanner::default();
    let mut close = None;
    for (i, c) in entry[open..].char_indices() {
        scan.step(c);
        if scan.at_top() {
            close = Some(open + i);
            break;
        }
    }
    let close = close?;
    let (inner, sub) = (&entry[open + 1..close], &entry[close + 1..]);
    let sub_ok = sub.is_empty()
        || sub
            .strip_prefix('.')
            .is_some_and(|s| !s.is_empty() && !s.contains(['[', ']', '"', '.']));
    (!inner.trim().is_empty() && sub_ok).then_some((name, inner, sub))
}

/// Bracket depth and string state while walking a filter's characters.
#[derive(Default)]
struct Scanner {
    depth: usize,
    quoted: bool,
    escaped: bool,
}

impl Scanner {
    fn at_top(&self) -> bool {
        self.depth == 0 && !self.quoted
    }

    fn step(&mut self, c: char) {
        if self.quoted {
            match c {
                _ if self.escaped => self.escaped = false,
                '\\' => self.escaped = true,
                '"' => self.quoted = false,
                _ => {}
            }
            return;
        }
        match c {
            '"' => self.quoted = true,
            '[' => self.depth += 1,
            ']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;

    fn policy(json: &str) -> Policy {
        Policy::from_json(json).unwrap()
    }

    fn rewrite(text: &str) -> (String, Vec<String>) {
        let (out, fired) = rewrite_attributes(text, &policy("")).unwrap();
        assert!(fired.iter().all(|f| f.rule == Rule::FilteredAttributes));
        (out, fired.into_iter().map(|f| f.at).collect())
    }

    #[test]
    fn a_value_filter_names_the_attribute_it_filters() {
        assert_eq!(
            rewrite(r#"emails[type eq "work"]"#),
            ("emails".into(), vec!["attributes[0] (emails)".into()])
        );
        assert_eq!(
            rewrite(r#"userName,emails[value eq "a,b]"].value, name.givenName"#),
            (
                "userName,emails.value,name.givenName".into(),
                vec!["attributes[1] (emails)".into()]
            )
        );
        let urn = "urn:ietf:params:scim:schemas:core:2.0:User:emails";
        assert_eq!(
            rewrite(&format!(r#"{urn}[type eq "work" and primary eq true]"#)).0,
            urn
        );
        assert_eq!(
            rewrite("emails[type eq work]").0,
            "emails",
            "lenient values"
        );
    }

    #[test]
    fn plain_lists_and_other_shapes_are_left_alone() {
        for text in [
            "userName,emails",
            "",
            "emails[]",
            "emails[type eq \"work\"",
            "name.givenName[value eq \"x\"]",
            "emails[type eq \"work\"]x",
            "emails[type eq \"work\"].value[type eq \"x\"]",
            "[type eq \"work\"]",
        ] {
            let (out, fired) = rewrite_attributes(text, &policy("")).unwrap();
            assert!(fired.is_empty(), "{text}: {fired:?}");
            let same: Vec<&str> = text.split(',').map(str::trim).collect();
            assert_eq!(out, same.join(","), "{text}");
        }
    }

    #[test]
    fn an_invalid_filter_or_the_rule_off_is_a_400() {
        let e = rewrite_attributes("emails[type zz \"work\"]", &policy("")).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        let strict = policy(r#"{"dialect.filtered-attributes": false}"#);
        let e = rewrite_attributes(r#"emails[type eq "work"]"#, &strict).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.detail
                .contains("'filtered-attributes' dialect rule is off")
                && e.detail.contains("dialect.filtered-attributes is false"),
            "{}",
            e.detail
        );
        assert_eq!(
            rewrite_attributes("userName", &strict).unwrap().0,
            "userName"
        );
    }

    #[test]
    fn the_rewrite_is_logged_by_rule_without_the_filter() {
        let log = crate::model::diag::capture(|| {
            attributes(r#"emails[value eq "secret@x"]"#, &policy("")).unwrap();
        });
        assert_eq!(
            log,
            ["dialect rule 'filtered-attributes' rewrote attributes[0] (emails) to the RFC 7644 form"]
        );
    }
}
