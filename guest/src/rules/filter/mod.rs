//! SCIM filters (RFC 7644 §3.4.2.2): parsing, canonical printing, validation against a resource
//! type's schemas, and evaluation against resource documents.
//!
//! The parser is hand-written recursive descent over the input text. Only grouping (`( )`,
//! `not ( )`, `[ ]`) recurses, and that is bounded by [`MAX_DEPTH`]; `and`/`or` chains are built
//! iteratively, and the input length is bounded by [`MAX_FILTER_LEN`], so hostile input can never
//! exhaust the stack.
//!
//! Layout, by layer:
//!
//! * `parse`: text to [`Filter`] by the RFC 7644 §3.4.2.2 grammar (Figure 1), with
//!   Entra's lenient extensions behind [`ParseOptions`].
//! * `print`: [`Filter`] back to canonical text that parses to the same tree.
//! * `validate`: paths and operators against a resource type's schemas (RFC 7643
//!   §2.3, §7).
//! * `evaluate`: whether a resource (or one multi-valued element) matches (RFC 7644 §3.4.2.2).
//! * `plan`: the `eq` conjuncts an index can answer.

use std::fmt;

use serde_json::Value;

use crate::model::schema::AttrPath;

mod evaluate;
mod parse;
mod plan;
mod print;
#[cfg(test)]
mod tests;
mod validate;

pub use evaluate::{matches, matches_element};
pub use parse::{parse, parse_with};
pub use plan::eq_conjuncts;
pub use validate::validate;

/// Longest filter text accepted, in bytes. Bounds the work hostile input can cause, including
/// the length (and so the evaluation depth) of flat `and`/`or` chains.
pub const MAX_FILTER_LEN: usize = 8192;

/// Deepest nesting of `( )`, `not ( )` and `[ ]` accepted; bounds parser recursion.
pub const MAX_DEPTH: usize = 64;

/// The attribute operators of RFC 7644 §3.4.2.2, Table 3 (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

impl CompareOp {
    const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Lt,
        CompareOp::Ge,
        CompareOp::Le,
    ];

    /// The canonical (lower-case) keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Lt => "lt",
            CompareOp::Ge => "ge",
            CompareOp::Le => "le",
        }
    }

    /// Operators are case-insensitive keywords (RFC 7644 §3.4.2.2).
    fn from_keyword(word: &str) -> Option<CompareOp> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether the operator needs an ordered type (`gt`, `ge`, `lt`, `le`).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Lt | CompareOp::Ge | CompareOp::Le
        )
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`; the value is a JSON literal: string, number, true/false or null.
    Compare(AttrPath, CompareOp, Value),
    /// Both hold (`and`).
    And(Box<Filter>, Box<Filter>),
    /// Either holds (`or`).
    Or(Box<Filter>, Box<Filter>),
    /// The inner filter does not hold (`not ( )`).
    Not(Box<Filter>),
    /// `attr[inner]`: the inner filter's paths are relative to the multi-valued/complex attribute
    /// (e.g. `type`, `value`). Entra's `emails[type eq "work"].value eq "x"` is parsed as
    /// `ValuePath(emails, And(inner, Compare(value, eq, "x")))`.
    ValuePath(AttrPath, Box<Filter>),
}

/// Parser options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Take a bare word value (`externalId eq jyoung`, as Entra documents) that is not
    /// true/false/null/number as a string.
    pub lenient_unquoted: bool,
}
