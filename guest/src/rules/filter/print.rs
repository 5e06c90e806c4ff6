//! Printing a [`Filter`] as canonical text (RFC 7644 §3.4.2.2): lower-case keywords, single
//! spaces, JSON literals, and parentheses exactly where the grammar (`and` binds tighter than
//! `or`, both left-associative) needs them, so the text parses back to the same tree.

use std::fmt;

use super::Filter;

impl fmt::Display for Filter {
    /// Canonical text: lower-case keywords, single spaces, JSON literals, and parentheses exactly
    /// where the left-associative, `and`-over-`or` grammar needs them to rebuild the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare(path, op, value) => write!(f, "{path} {op} {value}"),
            Filter::And(..) | Filter::Or(..) => {
                let is_and = matches!(self, Filter::And(..));
                for (i, operand) in chain_operands(self).into_iter().enumerate() {
                    if i > 0 {
                        f.write_str(if is_and { " and " } else { " or " })?;
                    }
                    // The chain head is never the chain's own connective, so this only
                    // parenthesizes right-nested chains and `or` inside `and`.
                    let parenthesize = if is_and {
                        matches!(operand, Filter::And(..) | Filter::Or(..))
                    } else {
                        matches!(operand, Filter::Or(..))
                    };
                    write_operand(f, operand, parenthesize)?;
                }
                Ok(())
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
        }
    }
}

/// The operands, in order, of the left-nested chain of `filter`'s connective (`a and b and c` is
/// `And(And(a, b), c)`), found without recursion so that long flat chains never deepen the stack
/// when printed, validated or evaluated. Any other filter is its own single operand.
pub(super) fn chain_operands(filter: &Filter) -> Vec<&Filter> {
    let is_and = matches!(filter, Filter::And(..));
    let mut operands = Vec::new();
    let mut current = filter;
    loop {
        match current {
            Filter::And(l, r) if is_and => {
                operands.push(&**r);
                current = l;
            }
            Filter::Or(l, r) if !is_and => {
                operands.push(&**r);
                current = l;
            }
            _ => break,
        }
    }
    operands.push(current);
    operands.reverse();
    operands
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, parenthesize: bool) -> fmt::Result {
    if parenthesize {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::AttrPath;
    use crate::rules::filter::tests::*;
    use crate::rules::filter::CompareOp;
    use crate::rules::filter::{matches, parse, parse_with, ParseOptions, MAX_FILTER_LEN};
    use proptest::prelude::*;
    use serde_json::Value;

    fn arb_path() -> impl Strategy<Value = AttrPath> {
        let names = [
            "userName", "emails", "value", "type", "x", "a-b", "c_d", "$ref", "Eq", "pr", "and",
            "or", "true", "e1",
        ];
        let uris = [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ];
        (
            prop::option::of(prop::sample::select(uris.to_vec())),
            prop::sample::select(names.to_vec()),
            prop::option::of(prop::sample::select(names.to_vec())),
        )
            .prop_map(|(uri, name, sub)| AttrPath {
                uri: uri.map(str::to_string),
                name: name.to_string(),
                sub: sub.map(str::to_string),
            })
    }

    fn arb_literal() -> impl Strategy<Value = Value> {
        let decimal = (-1_000_000i64..1_000_000, 0i32..4)
            .prop_map(|(n, scale)| n as f64 / 10f64.powi(scale))
            .prop_filter("round-trips through serde_json", |x| {
                serde_json::from_str::<Value>(&Value::from(*x).to_string()).ok()
                    == Some(Value::from(*x))
            });
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            decimal.prop_map(Value::from),
            "[a-z \"\\\\'()\\[\\]éü😀]{0,12}".prop_map(Value::String),
            prop::collection::vec(any::<char>(), 0..8)
                .prop_map(|cs| Value::String(cs.into_iter().collect())),
        ]
    }

    fn arb_op() -> impl Strategy<Value = CompareOp> {
        prop::sample::select(CompareOp::ALL.to_vec())
    }

    fn arb_leaf() -> impl Strategy<Value = Filter> {
        prop_oneof![
            arb_path().prop_map(Filter::Present),
            (arb_path(), arb_op(), arb_literal()).prop_map(|(p, op, v)| Filter::Compare(p, op, v)),
        ]
    }

    fn arb_logic(
        leaf: impl Strategy<Value = Filter> + 'static,
        depth: u32,
        size: u32,
    ) -> impl Strategy<Value = Filter> {
        leaf.prop_recursive(depth, size, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
                (inner.clone(), inner.clone())
                    .prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let value_path = (arb_path(), arb_logic(arb_leaf(), 3, 8))
            .prop_map(|(p, inner)| Filter::ValuePath(p, Box::new(inner)));
        arb_logic(prop_oneof![3 => arb_leaf(), 1 => value_path], 5, 24)
    }

    /// Found by fuzzing: number literals beyond f64's exact range must print as text that
    /// parses back to the very same number (serde_json's `float_roundtrip`).
    #[test]
    fn long_number_literals_round_trip() {
        for text in [
            "e eq -330012919400065614333333333333333333333333338",
            "members[value eq 11111111111110.555554]",
        ] {
            let f = parse(text).unwrap();
            assert_eq!(parse(&f.to_string()), Ok(f), "{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_filters_parse_back_to_the_same_tree(filter in arb_filter()) {
            let text = filter.to_string();
            prop_assume!(text.len() <= MAX_FILTER_LEN);
            prop_assert_eq!(parse(&text), Ok(filter));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[a-z()\\[\\]\" .:!=<>\\\\0-9-]{0,64}") {
            let lenient = ParseOptions { lenient_unquoted: true };
            if let Ok(f) = parse_with(&text, lenient) {
                prop_assert_eq!(parse(&f.to_string()), Ok(f.clone()));
                let _ = matches(&f, &bjensen(), &users());
            }
        }
    }
}
