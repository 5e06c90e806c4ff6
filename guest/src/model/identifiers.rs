//! Identifier hygiene: the string attributes that identify a resource or become store index
//! keys refuse control characters and are bounded in length.
//!
//! RFC 7643 makes `userName` the user's unique identifier, "typically used by the user to
//! directly authenticate" (§4.1, §4.1.1), `externalId` the client's identifier of a resource
//! (§3.1), and a group's `displayName` REQUIRED (§4.2; teams are matched by it here). Strings
//! are any sequence of Unicode characters (§2.3.1) and the RFCs set no maximum length, so
//! both rules here are the service provider's own, reported as RFC 7644 §3.12 `invalidValue`
//! (the value "was not compatible with the operation or attribute type ... or resource
//! schema"). They follow PRECIS (RFC 8264), whose IdentifierClass, the base of RFC 8265's user
//! name profiles, disallows control characters. Why they are needed:
//!
//! * **Index keys.** Each of these values becomes part of a store key (`u/User/userName/{value}`,
//!   `n/User/externalId/{value}\u{1f}{id}`, see [`crate::persist::keys`]). U+001F is the separator
//!   between value and id in non-unique index keys, so in `a\u{1f}b` a lookup of `a` finds
//!   `b…` as a bogus id; NUL ends strings in C tooling that shows or copies keys and values
//!   (SQLite's shell, exports opened in other programs), so two names differing after a NUL
//!   look identical there.
//! * **Log and terminal injection.** Identifiers appear in the audit log, the CLI's tables,
//!   CSV exports, diagnostics and error details: CR/LF forge lines or rows, ESC and the C1 CSI
//!   drive terminals. No identity provider sends them in a user or group name.
//! * **Bounded keys.** A 1 MiB body could otherwise store a 1 MiB index key, which every
//!   lookup and uniqueness check then reads and compares.
//!
//! "Control character" is Unicode general category Cc: U+0000–U+001F, U+007F and the C1 range
//! U+0080–U+009F (NEL, CSI; in UTF-8 text they only appear from mis-decoded Latin-1). Lengths
//! count characters (Unicode scalar values), not bytes, so a limit means the same for
//! `ada@example.com` and `阿达@例子.中国`; 1 024 characters are at most 4 KiB of UTF-8.
//!
//! Only values a write *introduces* are checked ([`check_document`] skips values the stored
//! document already had), so a resource stored before these rules existed can still be
//! deactivated, patched or deleted by its identity provider; renaming it to a clean value is
//! what fixes it. Ordinary free text (`name.formatted`, a user's `displayName`, `title`, …) is
//! not an identifier: tabs and newlines there are data and stored exactly.

use serde_json::Value;

use crate::model::error::{ScimError, ScimResult};
use crate::model::resource_type::{attr_values, Kind};

/// One identifier attribute and the longest value it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The resource type the attribute belongs to.
    pub kind: Kind,
    /// The attribute path as the index names it (`userName`, `emails.value`).
    pub attr: &'static str,
    /// Most characters (Unicode scalar values) a value may have.
    pub max_chars: usize,
}

/// Every identifier attribute with its limit: every index key of [`Kind::indexes`] (a unit test
/// keeps the two lists in step).
///
/// 1 024 characters for each: far beyond what identity providers allow themselves, which is a
/// few hundred characters at most (an Entra UPN 113, an Okta login 100, an e-mail address 254
/// octets by RFC 5321, group names about 256; external ids are 20–36 character object ids or
/// GUIDs), and small enough that an index key stays under about 4 KiB.
pub const LIMITS: [Limit; 5] = [
    Limit {
        kind: Kind::User,
        attr: "userName",
        max_chars: 1024,
    },
    Limit {
        kind: Kind::User,
        attr: "externalId",
        max_chars: 1024,
    },
    Limit {
        kind: Kind::User,
        attr: "emails.value",
        max_chars: 1024,
    },
    Limit {
        kind: Kind::Group,
        attr: "displayName",
        max_chars: 1024,
    },
    Limit {
        kind: Kind::Group,
        attr: "externalId",
        max_chars: 1024,
    },
];

/// The range named in error details.
const CONTROLS: &str = "U+0000–U+001F, U+007F–U+009F";

/// The limit of an identifier attribute, or `None` when `attr` is not one.
pub fn limit(kind: Kind, attr: &str) -> Option<&'static Limit> {
    LIMITS
        .iter()
        .find(|l| l.kind == kind && l.attr.eq_ignore_ascii_case(attr))
}

/// Checks one value of an identifier attribute; other attributes accept anything.
///
/// The error names the attribute, the offending character's code point and position, or the
/// length, never the value itself: a hostile value must not reach logs through the error.
pub fn check_value(kind: Kind, attr: &str, value: &str) -> ScimResult<()> {
    let Some(limit) = limit(kind, attr) else {
        return Ok(());
    };
    // Length first: a megabyte-long value gets the length message whatever it contains.
    if value.chars().nth(limit.max_chars).is_some() {
        return Err(ScimError::invalid_value(format!(
            "{} must be at most {} characters long; this one has {}",
            limit.attr,
            limit.max_chars,
            value.chars().count()
        )));
    }
    if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(ScimError::invalid_value(format!(
            "{} must not contain control characters ({CONTROLS}); found U+{:04X} at character {}",
            limit.attr,
            u32::from(c),
            at + 1
        )));
    }
    Ok(())
}

/// Checks every identifier value that `new` introduces: values `old` (the stored document a
/// write replaces, `None` for a creation) already had for the same attribute are accepted as
/// they are, so that resources stored before these rules can still be updated.
pub fn check_document(kind: Kind, old: Option<&Value>, new: &Value) -> ScimResult<()> {
    for limit in LIMITS.iter().filter(|l| l.kind == kind) {
        let before = old.map(|d| attr_values(d, limit.attr)).unwrap_or_default();
        for value in attr_values(new, limit.attr) {
            if !before.contains(&value) {
                check_value(kind, limit.attr, value)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::ScimType;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn details_name_the_attribute_and_the_character_but_never_echo_the_value() {
        let err = check_value(Kind::User, "userName", "ada\u{0}evil").unwrap_err();
        assert_eq!(
            (err.status, err.scim_type),
            (400, Some(ScimType::InvalidValue))
        );
        assert_eq!(
            err.detail,
            "userName must not contain control characters (U+0000–U+001F, U+007F–U+009F); \
             found U+0000 at character 4"
        );
        let err = check_value(Kind::Group, "displayName", &"é".repeat(1025)).unwrap_err();
        assert_eq!(
            err.detail,
            "displayName must be at most 1024 characters long; this one has 1025"
        );
        // Characters, not bytes: 1 024 four-byte characters are within the limit.
        assert!(check_value(Kind::User, "externalId", &"😀".repeat(1024)).is_ok());
        // Not an identifier: free text keeps tabs, newlines and any length.
        assert!(check_value(Kind::User, "displayName", "a\tb\n\u{0}").is_ok());
        assert!(check_value(Kind::User, "name.formatted", &"x".repeat(5000)).is_ok());
    }

    #[test]
    fn documents_are_checked_for_new_values_only() {
        let legacy = json!({"userName": "old\u{0}name", "emails": [{"value": "a\u{1f}b"}]});
        let deactivated =
            json!({"userName": "old\u{0}name", "emails": [{"value": "a\u{1f}b"}], "active": false});
        assert!(check_document(Kind::User, Some(&legacy), &deactivated).is_ok());
        let err = check_document(Kind::User, None, &legacy).unwrap_err();
        assert!(err.detail.starts_with("userName "), "{}", err.detail);
        let renamed = json!({"userName": "new\u{7f}name"});
        let err = check_document(Kind::User, Some(&legacy), &renamed).unwrap_err();
        assert!(err.detail.contains("U+007F"), "{}", err.detail);
        let email = json!({"userName": "ok", "emails": [{"value": "ok@x"}, {"value": "b\r\n@x"}]});
        let err = check_document(Kind::User, None, &email).unwrap_err();
        assert!(err.detail.starts_with("emails.value "), "{}", err.detail);
        let group = json!({"displayName": "Sales", "externalId": "\u{9b}31m"});
        let err = check_document(Kind::Group, None, &group).unwrap_err();
        assert!(err.detail.starts_with("externalId "), "{}", err.detail);
    }

    fn control() -> impl Strategy<Value = char> {
        prop_oneof![0u32..0x20, Just(0x7f), 0x80u32..0xa0].prop_map(|c| char::from_u32(c).unwrap())
    }

    fn clean(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            any::<char>().prop_filter("not Cc", |c| !c.is_control()),
            0..=max,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn any_value_with_a_control_character_is_refused(
            before in clean(500), c in control(), after in clean(500),
            limit in proptest::sample::select(LIMITS.to_vec()),
        ) {
            let value = format!("{before}{c}{after}");
            let err = check_value(limit.kind, limit.attr, &value).unwrap_err();
            prop_assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
            prop_assert!(err.detail.starts_with(limit.attr), "{}", err.detail);
            let code = format!("U+{:04X}", u32::from(c));
            prop_assert!(err.detail.contains(&code), "{}", err.detail);
        }

        #[test]
        fn any_clean_value_within_the_limit_is_accepted(
            value in clean(1024), limit in proptest::sample::select(LIMITS.to_vec()),
        ) {
            prop_assert!(check_value(limit.kind, limit.attr, &value).is_ok());
        }

        #[test]
        fn any_value_beyond_the_limit_is_refused(
            extra in 1usize..200, c in any::<char>(),
            limit in proptest::sample::select(LIMITS.to_vec()),
        ) {
            let value: String = std::iter::repeat_n(c, limit.max_chars + extra).collect();
            let err = check_value(limit.kind, limit.attr, &value).unwrap_err();
            prop_assert!(err.detail.contains("at most 1024 characters"), "{}", err.detail);
        }
    }
}
