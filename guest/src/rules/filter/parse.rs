//! Parsing filter text (RFC 7644 §3.4.2.2, Figure 1 ABNF): hand-written recursive descent. Only
//! grouping (`( )`, `not ( )`, `[ ]`) recurses, bounded by [`MAX_DEPTH`]; `and`/`or` chains are
//! built iteratively and the input is bounded by [`MAX_FILTER_LEN`]. Keywords and operators are
//! case-insensitive, as ABNF literals are. Lenient mode ([`ParseOptions`]) adds Entra's bare-word
//! values; Entra's `emails[type eq "work"].value eq "x"` is always accepted.

use serde_json::{Number, Value};

use super::{CompareOp, Filter, ParseOptions, MAX_DEPTH, MAX_FILTER_LEN};
use crate::model::error::{ScimError, ScimResult};
use crate::model::schema::AttrPath;

/// Parses a filter strictly by the RFC 7644 grammar.
pub fn parse(input: &str) -> ScimResult<Filter> {
    parse_with(input, ParseOptions::default())
}

/// Parses a filter with `opts`.
pub fn parse_with(input: &str, opts: ParseOptions) -> ScimResult<Filter> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
            input.len()
        )));
    }
    let mut parser = Parser {
        src: input,
        pos: 0,
        opts,
        depth: 0,
        in_value_path: false,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Err(ScimError::invalid_filter("empty filter"));
    }
    let filter = parser.parse_or()?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.error("expected 'and', 'or' or the end of the filter"));
    }
    Ok(filter)
}

/// Bytes of an attribute path or bare keyword. `/` is included so that URIs such as Microsoft's
/// `http://schemas.microsoft.com/...` extension ids can prefix a path.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'$' | b'/')
}

/// Bytes of an unquoted value in lenient mode: anything up to whitespace or grammar punctuation,
/// so values like `jyoung@contoso.com` survive.
fn is_bare_value_byte(b: u8) -> bool {
    !b.is_ascii_whitespace() && !matches!(b, b'(' | b')' | b'[' | b']' | b'"')
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    opts: ParseOptions,
    depth: usize,
    in_value_path: bool,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Tolerates any run of spaces, tabs and line breaks between tokens.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    /// The run of bytes satisfying `pred` at the current position, not consumed. `pred` only
    /// ever stops at ASCII bytes, so the run ends on a char boundary.
    fn peek_run(&self, pred: impl Fn(u8) -> bool) -> &'a str {
        let len = self.src.as_bytes()[self.pos..]
            .iter()
            .take_while(|b| pred(**b))
            .count();
        &self.src[self.pos..self.pos + len]
    }

    fn peek_word(&self) -> &'a str {
        self.peek_run(is_word_byte)
    }

    /// An invalidFilter error at the current position, quoting what was found there.
    fn error(&self, expected: &str) -> ScimError {
        let found: String = self.src[self.pos..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        let found = if self.at_end() {
            "the end of the filter".to_string()
        } else {
            format!("'{found}'")
        };
        ScimError::invalid_filter(format!(
            "{expected} at position {}, found {found}",
            self.pos
        ))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        self.skip_ws();
        let word = self.peek_word();
        let hit = word.eq_ignore_ascii_case(keyword);
        if hit {
            self.pos += word.len();
        }
        hit
    }

    fn expect_byte(&mut self, byte: u8, expected: &str) -> ScimResult<()> {
        self.skip_ws();
        if self.peek() != Some(byte) {
            return Err(self.error(expected));
        }
        self.pos += 1;
        Ok(())
    }

    /// Enters one level of grouping; the only place the parser recurses.
    fn enter(&mut self) -> ScimResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "filter nests deeper than {MAX_DEPTH} levels at position {}",
                self.pos
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `FILTER *("or" FILTER)`, left-associative, built in a loop so long chains never recurse.
    fn parse_or(&mut self) -> ScimResult<Filter> {
        let mut left = self.parse_and()?;
        while self.eat_keyword("or") {
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and` binds tighter than `or`.
    fn parse_and(&mut self) -> ScimResult<Filter> {
        let mut left = self.parse_unary()?;
        while self.eat_keyword("and") {
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// A group, `not ( ... )`, an attribute expression or a value path.
    fn parse_unary(&mut self) -> ScimResult<Filter> {
        self.skip_ws();
        match self.peek() {
            Some(b'(') => self.parse_group(),
            Some(b) if is_word_byte(b) => {
                let word = self.peek_word();
                if !word.eq_ignore_ascii_case("not") {
                    return self.parse_attr_exp();
                }
                self.pos += word.len();
                self.skip_ws();
                if self.peek() != Some(b'(') {
                    return Err(self.error("expected '(' after 'not'"));
                }
                Ok(Filter::Not(Box::new(self.parse_group()?)))
            }
            _ => Err(self.error("expected an attribute path, '(' or 'not'")),
        }
    }

    /// `"(" FILTER ")"`, at the `(`.
    fn parse_group(&mut self) -> ScimResult<Filter> {
        self.enter()?;
        self.pos += 1;
        let inner = self.parse_or()?;
        self.expect_byte(b')', "expected ')'")?;
        self.leave();
        Ok(inner)
    }

    fn parse_path(&mut self) -> ScimResult<AttrPath> {
        let start = self.pos;
        let word = self.peek_word();
        let path = AttrPath::parse(word).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "invalid attribute path '{word}' at position {start}"
            ))
        })?;
        self.pos += word.len();
        Ok(path)
    }

    fn parse_attr_exp(&mut self) -> ScimResult<Filter> {
        let path = self.parse_path()?;
        self.skip_ws();
        if self.peek() == Some(b'[') {
            return self.parse_value_path(path);
        }
        self.parse_comparison(path)
    }

    /// `"pr"` or `compareOp SP compValue`, after the attribute path.
    fn parse_comparison(&mut self, path: AttrPath) -> ScimResult<Filter> {
        self.skip_ws();
        let start = self.pos;
        let word = self.peek_word();
        if word.eq_ignore_ascii_case("pr") {
            self.pos += word.len();
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(word) else {
            const OPS: &str = "eq, ne, co, sw, ew, gt, lt, ge, le or pr";
            return Err(if word.is_empty() {
                self.error(&format!("expected an operator ({OPS}) after '{path}'"))
            } else {
                ScimError::invalid_filter(format!(
                    "unknown operator '{word}' at position {start}; expected {OPS}"
                ))
            });
        };
        self.pos += word.len();
        let value = self.parse_comp_value()?;
        Ok(Filter::Compare(path, op, value))
    }

    /// `attrPath "[" valFilter "]"`, at the `[`; plus Entra's trailing `.sub op value`.
    fn parse_value_path(&mut self, path: AttrPath) -> ScimResult<Filter> {
        if self.in_value_path {
            return Err(self.error("nested value paths are not allowed"));
        }
        self.enter()?;
        self.pos += 1;
        self.in_value_path = true;
        let inner = self.parse_or()?;
        self.expect_byte(b']', "expected ']'")?;
        self.in_value_path = false;
        self.leave();
        self.skip_ws();
        if self.peek() != Some(b'.') {
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        // Entra filters `emails[type eq "work"].value eq "x"`; that is the same as moving the
        // comparison into the brackets. A bare `[...].sub` (a PATCH path) is still rejected.
        self.pos += 1;
        let start = self.pos;
        let word = self.peek_word();
        let sub = AttrPath::parse(word)
            .filter(|p| p.uri.is_none() && p.sub.is_none())
            .ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "invalid sub-attribute '{word}' after ']' at position {start}"
                ))
            })?;
        self.pos += word.len();
        let compare = self.parse_comparison(sub).map_err(|e| {
            ScimError::invalid_filter(format!(
                "{}; a sub-attribute after ']' is only accepted as `attr[filter].sub op value`",
                e.detail
            ))
        })?;
        Ok(Filter::ValuePath(
            path,
            Box::new(Filter::And(Box::new(inner), Box::new(compare))),
        ))
    }

    /// `compValue = false / null / true / number / string`.
    fn parse_comp_value(&mut self) -> ScimResult<Value> {
        self.skip_ws();
        if self.peek() == Some(b'"') {
            return self.parse_string();
        }
        let start = self.pos;
        let lenient = self.opts.lenient_unquoted;
        // `+` only occurs in number exponents (`1e+5`).
        let word = if lenient {
            self.peek_run(is_bare_value_byte)
        } else {
            self.peek_run(|b| is_word_byte(b) || b == b'+')
        };
        if word.is_empty() {
            return Err(
                self.error("expected a value (a quoted string, number, true, false or null)")
            );
        }
        let value = literal_word(word).or_else(|| lenient.then(|| Value::String(word.to_string())));
        let value = value.ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "invalid value '{word}' at position {start}; strings must be quoted, e.g. \"{word}\""
            ))
        })?;
        self.pos += word.len();
        Ok(value)
    }

    /// A JSON string literal at the `"`; serde_json decodes the escapes.
    fn parse_string(&mut self) -> ScimResult<Value> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        if i >= bytes.len() {
            return Err(ScimError::invalid_filter(format!(
                "unterminated string starting at position {start}"
            )));
        }
        let text: String = serde_json::from_str(&self.src[start..=i]).map_err(|e| {
            ScimError::invalid_filter(format!("invalid string literal at position {start}: {e}"))
        })?;
        self.pos = i + 1;
        Ok(Value::String(text))
    }
}

/// `true`, `false`, `null` (case-insensitive, as ABNF literals are) or a JSON number.
fn literal_word(word: &str) -> Option<Value> {
    let keyword = [
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("null", Value::Null),
    ]
    .into_iter()
    .find(|(k, _)| word.eq_ignore_ascii_case(k));
    if let Some((_, value)) = keyword {
        return Some(value);
    }
    if !word.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        return None;
    }
    serde_json::from_str::<Number>(word).ok().map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::urn;
    use crate::rules::filter::matches;
    use crate::rules::filter::tests::*;
    use serde_json::json;

    #[test]
    fn rfc_examples_build_the_expected_trees() {
        assert_eq!(
            parse(r#"userName eq "bjensen""#),
            Ok(cmp("userName", CompareOp::Eq, json!("bjensen")))
        );
        let f = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#).unwrap();
        let Filter::Compare(p, CompareOp::Sw, v) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            (p.uri.as_deref(), p.name.as_str(), v),
            (Some(urn::USER), "userName", json!("J"))
        );
        let f = parse(
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        )
        .unwrap();
        let inner = and(
            cmp("type", CompareOp::Eq, json!("work")),
            cmp("value", CompareOp::Co, json!("@example.com")),
        );
        let expected = and(
            cmp("userType", CompareOp::Eq, json!("Employee")),
            Filter::ValuePath(path("emails"), Box::new(inner)),
        );
        assert_eq!(f, expected);
        assert_eq!(
            parse(r#"userType ne "Employee" and not (emails co "example.com")"#),
            Ok(and(
                cmp("userType", CompareOp::Ne, json!("Employee")),
                not(cmp("emails", CompareOp::Co, json!("example.com")))
            ))
        );
    }

    #[test]
    fn precedence_is_grouping_then_not_then_and_then_or() {
        assert_eq!(
            parse("a pr or b pr and c pr"),
            Ok(or(pr("a"), and(pr("b"), pr("c"))))
        );
        assert_eq!(
            parse("a pr and b pr or c pr"),
            Ok(or(and(pr("a"), pr("b")), pr("c")))
        );
        assert_eq!(
            parse("(a pr or b pr) and c pr"),
            Ok(and(or(pr("a"), pr("b")), pr("c")))
        );
        assert_eq!(parse("not (a pr) and b pr"), Ok(and(not(pr("a")), pr("b"))));
        assert_eq!(
            parse("a pr and b pr and c pr"),
            Ok(and(and(pr("a"), pr("b")), pr("c")))
        );
        // Printing keeps exactly the grouping the tree needs.
        assert_eq!(
            or(pr("a"), and(pr("b"), pr("c"))).to_string(),
            "a pr or b pr and c pr"
        );
        assert_eq!(
            and(pr("a"), or(pr("b"), pr("c"))).to_string(),
            "a pr and (b pr or c pr)"
        );
        assert_eq!(
            and(pr("a"), and(pr("b"), pr("c"))).to_string(),
            "a pr and (b pr and c pr)"
        );
        assert_eq!(
            or(pr("a"), or(pr("b"), pr("c"))).to_string(),
            "a pr or (b pr or c pr)"
        );
    }

    #[test]
    fn keywords_and_operators_are_case_insensitive_and_print_canonically() {
        let f = parse(r#"userName EQ "x" AND title Pr OR NOT (active Eq TRUE)"#).unwrap();
        assert_eq!(
            f,
            parse(r#"userName eq "x" and title pr or not (active eq true)"#).unwrap()
        );
        assert_eq!(
            f.to_string(),
            r#"userName eq "x" and title pr or not (active eq true)"#
        );
        let f = parse("\t userName  eq\t\"a\\\"b\"   and meta.version eq null ").unwrap();
        assert_eq!(
            f.to_string(),
            r#"userName eq "a\"b" and meta.version eq null"#
        );
    }

    #[test]
    fn invalid_filters_are_invalid_filter_errors() {
        assert_invalid(parse(r#"userName eq"#), "expected a value");
        assert_invalid(parse(r#"userName xx "a""#), "unknown operator 'xx'");
        assert_invalid(parse(r#"(userName eq "a""#), "expected ')'");
        assert_invalid(
            parse(r#"userName eq "a" and"#),
            "expected an attribute path",
        );
        assert_invalid(parse(r#"userName eq "a")"#), "expected 'and', 'or'");
        assert_invalid(parse(r#"userName eq "a"#), "unterminated string");
        assert_invalid(parse(r#"userName eq "\q""#), "invalid string literal");
        assert_invalid(parse(r#"userName eq bjensen"#), "strings must be quoted");
        assert_invalid(parse(r#"userName"#), "expected an operator");
        assert_invalid(parse(r#"not userName pr"#), "expected '(' after 'not'");
        assert_invalid(parse(r#"1userName pr"#), "invalid attribute path");
        assert_invalid(parse(""), "empty filter");
        assert_invalid(parse("   "), "empty filter");
        assert_invalid(parse(r#"emails[type eq "work""#), "expected ']'");
        assert_invalid(parse(r#"emails[type[value eq 1]]"#), "nested value paths");
        assert_invalid(parse(r#"emails[type eq "work"].value"#), "only accepted as");
        assert_invalid(parse(r#"userName eq 01"#), "strings must be quoted");
    }

    #[test]
    fn lenient_mode_takes_bare_words_as_strings() {
        let lenient = ParseOptions {
            lenient_unquoted: true,
        };
        assert_invalid(parse("externalId eq jyoung"), "strings must be quoted");
        let f = parse_with("externalId eq jyoung", lenient).unwrap();
        assert_eq!(f, cmp("externalId", CompareOp::Eq, json!("jyoung")));
        assert_eq!(f.to_string(), r#"externalId eq "jyoung""#);
        assert_eq!(
            parse_with("userName eq jyoung@contoso.com and active eq TRUE", lenient),
            Ok(and(
                cmp("userName", CompareOp::Eq, json!("jyoung@contoso.com")),
                cmp("active", CompareOp::Eq, json!(true))
            ))
        );
        assert_eq!(
            parse_with("externalId eq 42", lenient),
            Ok(cmp("externalId", CompareOp::Eq, json!(42)))
        );
        assert_eq!(
            parse_with("x eq null", lenient),
            Ok(cmp("x", CompareOp::Eq, Value::Null))
        );
        let guid = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";
        assert_eq!(
            parse_with(&format!("(externalId eq {guid})"), lenient),
            Ok(cmp("externalId", CompareOp::Eq, json!(guid)))
        );
        assert_eq!(
            parse_with(r#"externalId eq "quoted""#, lenient),
            Ok(cmp("externalId", CompareOp::Eq, json!("quoted")))
        );
        let user = json!({"externalId": "jyoung"});
        assert!(matches(
            &parse_with("externalId eq jyoung", lenient).unwrap(),
            &user,
            &users()
        ));
    }

    #[test]
    fn entra_sub_attribute_after_value_path() {
        let f = parse(r#"emails[type eq "work"].value eq "bjensen@example.com""#).unwrap();
        let inner = and(
            cmp("type", CompareOp::Eq, json!("work")),
            cmp("value", CompareOp::Eq, json!("bjensen@example.com")),
        );
        assert_eq!(f, Filter::ValuePath(path("emails"), Box::new(inner)));
        assert_eq!(parse(&f.to_string()), Ok(f.clone()));
        let schema = users();
        assert!(matches(&f, &bjensen(), &schema));
        // Both conditions must hold on the same element.
        let home = parse(r#"emails[type eq "home"].value eq "bjensen@example.com""#).unwrap();
        assert!(!matches(&home, &bjensen(), &schema));
        let chained = parse(r#"emails[type eq "work"].value eq "x" and userName eq "y""#).unwrap();
        assert!(matches!(chained, Filter::And(ref l, _) if matches!(**l, Filter::ValuePath(..))));
    }

    #[test]
    fn hostile_input_is_bounded() {
        let deep = format!("{}userName pr{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_invalid(parse(&deep), "at most 8192");
        let chain = vec!["a pr"; 10_000].join(" and ");
        assert_invalid(parse(&chain), "at most 8192");
        let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert_invalid(parse(&nested(MAX_DEPTH + 1)), "deeper than 64");
        assert_invalid(parse(&nested(2_000)), "deeper than 64");
        let nots = format!("{}a pr{}", "not (".repeat(100), ")".repeat(100));
        assert_invalid(parse(&nots), "deeper than 64");
        let brackets = format!("{}a pr{}", "x[(".repeat(50), ")]".repeat(50));
        assert!(parse(&brackets).is_err());
        // The longest flat chain the length bound allows parses, evaluates, prints and drops.
        let terms = (MAX_FILTER_LEN + 4) / 8;
        let chain = vec!["a pr"; terms].join(" or ");
        assert!(chain.len() <= MAX_FILTER_LEN && chain.len() + 8 > MAX_FILTER_LEN);
        let f = parse(&chain).unwrap();
        assert!(!matches(&f, &json!({}), &users()));
        assert_eq!(parse(&f.to_string()), Ok(f));
    }
}
