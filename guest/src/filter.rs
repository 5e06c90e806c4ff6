//! SCIM filters (RFC 7644 §3.4.2.2): parsing, canonical printing, validation against a resource
//! type's schemas, and evaluation against resource documents.
//!
//! The parser is hand-written recursive descent over the input text. Only grouping (`( )`,
//! `not ( )`, `[ ]`) recurses, and that is bounded by [`MAX_DEPTH`]; `and`/`or` chains are built
//! iteratively, and the input length is bounded by [`MAX_FILTER_LEN`], so hostile input can never
//! exhaust the stack.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::OnceLock;

use serde_json::{Number, Value};

use crate::error::{ScimError, ScimResult};
use crate::schema::{AttrPath, AttrType, Attribute, Container, Resolved, ResourceSchema};

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
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
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
fn chain_operands(filter: &Filter) -> Vec<&Filter> {
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

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// `schemas` is in no schema but RFC 7644 filters on it (`schemas eq "urn:...:enterprise..."`):
/// treat it as a top-level multi-valued, case-insensitive string.
fn schemas_attribute() -> &'static Attribute {
    static ATTR: OnceLock<Attribute> = OnceLock::new();
    ATTR.get_or_init(|| Attribute::string("schemas").multi())
}

/// Resolves a filter path; unknown attributes are invalidFilter here, not invalidPath.
fn resolve<'s>(schema: &'s ResourceSchema, path: &AttrPath) -> ScimResult<Resolved<'s>> {
    match schema.resolve(path) {
        Ok(resolved) => Ok(resolved),
        Err(_)
            if path.uri.is_none()
                && path.sub.is_none()
                && path.name.eq_ignore_ascii_case("schemas") =>
        {
            Ok(Resolved {
                container: Container::Core,
                attr: schemas_attribute(),
                sub: None,
            })
        }
        Err(e) => Err(ScimError::invalid_filter(e.detail)),
    }
}

/// Checks every path against `schema` and every operator against its attribute's type.
pub fn validate(filter: &Filter, schema: &ResourceSchema) -> ScimResult<()> {
    match filter {
        Filter::Present(path) => resolve(schema, path).map(|_| ()),
        Filter::Compare(path, op, value) => {
            check_comparison(path, resolve(schema, path)?.target(), *op, value)
        }
        Filter::And(..) | Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .try_for_each(|f| validate(f, schema)),
        Filter::Not(inner) => validate(inner, schema),
        Filter::ValuePath(path, inner) => {
            let parent = resolve(schema, path)?.target();
            if parent.ty != AttrType::Complex && !parent.multi_valued {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}' is neither complex nor multi-valued and cannot take a value filter"
                )));
            }
            validate_element_filter(inner, parent, path)
        }
    }
}

/// Validates the filter inside `outer[...]`, whose paths name sub-attributes of `parent`.
fn validate_element_filter(
    filter: &Filter,
    parent: &Attribute,
    outer: &AttrPath,
) -> ScimResult<()> {
    let attribute = |path: &AttrPath| {
        element_attribute(parent, path).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "unknown attribute '{path}' in the value filter of '{outer}'"
            ))
        })
    };
    match filter {
        Filter::Present(path) => attribute(path).map(|_| ()),
        Filter::Compare(path, op, value) => check_comparison(path, attribute(path)?, *op, value),
        Filter::And(..) | Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .try_for_each(|f| validate_element_filter(f, parent, outer)),
        Filter::Not(inner) => validate_element_filter(inner, parent, outer),
        Filter::ValuePath(..) => Err(ScimError::invalid_filter(
            "nested value paths are not allowed",
        )),
    }
}

/// What a path inside `parent[...]` designates: a sub-attribute of a complex parent, or, for a
/// simple multi-valued parent, `value` meaning the element itself (RFC 7643 §2.4).
fn element_attribute<'p>(parent: &'p Attribute, path: &AttrPath) -> Option<&'p Attribute> {
    if path.uri.is_some() || path.sub.is_some() {
        return None;
    }
    if parent.ty == AttrType::Complex {
        parent.sub(&path.name)
    } else if path.name.eq_ignore_ascii_case("value") {
        Some(parent)
    } else {
        None
    }
}

/// Complex attributes compare through their `value` sub-attribute (`emails co "example.com"`).
fn comparison_attribute(target: &Attribute) -> &Attribute {
    if target.ty == AttrType::Complex {
        target.sub("value").unwrap_or(target)
    } else {
        target
    }
}

fn check_comparison(
    path: &AttrPath,
    target: &Attribute,
    op: CompareOp,
    literal: &Value,
) -> ScimResult<()> {
    let reject = |why: String| Err(ScimError::invalid_filter(why));
    if target.ty == AttrType::Complex && op.is_ordering() {
        return reject(format!(
            "operator '{op}' cannot order the complex attribute '{path}'"
        ));
    }
    let attr = comparison_attribute(target);
    if op.is_ordering() && !attr.ty.is_ordered() {
        return reject(format!(
            "operator '{op}' is not supported for the {} attribute '{path}'",
            attr.ty.as_str()
        ));
    }
    if attr.ty == AttrType::Boolean {
        // `null` is allowed: `eq null` / `ne null` test absence / presence.
        if !matches!(literal, Value::Bool(_) | Value::Null) {
            return reject(format!(
                "boolean attribute '{path}' can only be compared with true or false"
            ));
        }
        if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return reject(format!(
                "operator '{op}' is not supported for boolean attribute '{path}'; use eq or ne"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Whether `resource` satisfies `filter`. Unknown attributes never match (run [`validate`] first
/// to report them); malformed data never panics, it just does not match.
pub fn matches(filter: &Filter, resource: &Value, schema: &ResourceSchema) -> bool {
    match filter {
        Filter::Present(path) => {
            resolve(schema, path).is_ok_and(|r| values_at(resource, &r).into_iter().any(is_present))
        }
        Filter::Compare(path, op, literal) => resolve(schema, path).is_ok_and(|r| {
            let (values, attr) = comparable(values_at(resource, &r), r.target());
            compare_values(&values, *op, literal, attr)
        }),
        Filter::And(..) => chain_operands(filter)
            .into_iter()
            .all(|f| matches(f, resource, schema)),
        Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .any(|f| matches(f, resource, schema)),
        Filter::Not(inner) => !matches(inner, resource, schema),
        Filter::ValuePath(path, inner) => resolve(schema, path).is_ok_and(|r| {
            values_at(resource, &r)
                .into_iter()
                .any(|element| matches_element(inner, element, r.target()))
        }),
    }
}

/// Evaluates a value-path inner filter against ONE element of the multi-valued (or complex)
/// attribute `parent`, e.g. for PATCH paths like `members[value eq "x"]`.
pub fn matches_element(filter: &Filter, element: &Value, parent: &Attribute) -> bool {
    match filter {
        Filter::Present(path) => element_values(element, parent, path)
            .is_some_and(|(values, _)| values.into_iter().any(is_present)),
        Filter::Compare(path, op, literal) => {
            element_values(element, parent, path).is_some_and(|(values, attr)| {
                let (values, attr) = comparable(values, attr);
                compare_values(&values, *op, literal, attr)
            })
        }
        Filter::And(..) => chain_operands(filter)
            .into_iter()
            .all(|f| matches_element(f, element, parent)),
        Filter::Or(..) => chain_operands(filter)
            .into_iter()
            .any(|f| matches_element(f, element, parent)),
        Filter::Not(inner) => !matches_element(inner, element, parent),
        Filter::ValuePath(..) => false,
    }
}

/// Object member lookup, exact first, then ASCII case-insensitively (attribute names and URNs
/// are case-insensitive; resources normally store the canonical spelling).
fn get_ci<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A multi-valued attribute's elements, or the single value itself.
fn elements(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Every value the resolved path designates ("any value matches" flattens multi-valued ones).
fn values_at<'v>(resource: &'v Value, r: &Resolved<'_>) -> Vec<&'v Value> {
    let base = match r.container {
        Container::Core => Some(resource),
        Container::Extension(urn) => get_ci(resource, urn),
    };
    let items = base
        .and_then(|b| get_ci(b, &r.attr.name))
        .map(elements)
        .unwrap_or_default();
    match r.sub {
        None => items,
        Some(sub) => items
            .into_iter()
            .filter_map(|item| get_ci(item, &sub.name))
            .flat_map(elements)
            .collect(),
    }
}

/// The values of `path` inside one element of `parent`.
fn element_values<'v, 'p>(
    element: &'v Value,
    parent: &'p Attribute,
    path: &AttrPath,
) -> Option<(Vec<&'v Value>, &'p Attribute)> {
    let attr = element_attribute(parent, path)?;
    let values = if parent.ty == AttrType::Complex {
        get_ci(element, &attr.name)
            .map(elements)
            .unwrap_or_default()
    } else {
        vec![element]
    };
    Some((values, attr))
}

/// Maps complex values to their `value` sub-attribute, the way [`comparison_attribute`] does for
/// the schema.
fn comparable<'v, 'a>(
    values: Vec<&'v Value>,
    target: &'a Attribute,
) -> (Vec<&'v Value>, &'a Attribute) {
    if target.ty != AttrType::Complex {
        return (values, target);
    }
    match target.sub("value") {
        Some(value_attr) => {
            let values = values
                .into_iter()
                .filter_map(|v| get_ci(v, &value_attr.name))
                .flat_map(elements)
                .collect();
            (values, value_attr)
        }
        None => (Vec::new(), target),
    }
}

/// RFC 7644 `pr`: not null, not an empty string, array or object.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// "Any value matches", with `ne` true for a missing attribute and `eq null` meaning absent.
fn compare_values(values: &[&Value], op: CompareOp, literal: &Value, attr: &Attribute) -> bool {
    if literal.is_null() {
        let present = values.iter().any(|v| is_present(v));
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }
    let mut actual = values.iter().filter(|v| !v.is_null()).peekable();
    if actual.peek().is_none() {
        return op == CompareOp::Ne;
    }
    actual.any(|v| compare_one(v, op, literal, attr))
}

/// One stored value against the literal, by the attribute's type; type mismatches are false.
fn compare_one(actual: &Value, op: CompareOp, literal: &Value, attr: &Attribute) -> bool {
    match attr.ty {
        AttrType::Boolean => compare_booleans(actual, op, literal),
        AttrType::Integer | AttrType::Decimal => compare_numbers(actual, op, literal),
        AttrType::DateTime => compare_date_times(actual, op, literal),
        AttrType::Complex => false,
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            compare_strings(actual, op, literal, attr.case_exact)
        }
    }
}

/// Whether `ordering` (actual vs literal) satisfies `op`; the substring operators never do.
fn order_holds(ordering: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn fold(text: &str, case_exact: bool) -> Cow<'_, str> {
    if case_exact {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

fn compare_strings(actual: &Value, op: CompareOp, literal: &Value, case_exact: bool) -> bool {
    let (Some(a), Some(b)) = (actual.as_str(), literal.as_str()) else {
        return false;
    };
    let (a, b) = (fold(a, case_exact), fold(b, case_exact));
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        _ => order_holds(a.cmp(&b), op),
    }
}

fn compare_numbers(actual: &Value, op: CompareOp, literal: &Value) -> bool {
    let (Value::Number(a), Value::Number(b)) = (actual, literal) else {
        return false;
    };
    number_cmp(a, b).is_some_and(|ordering| order_holds(ordering, op))
}

/// Exact for integers, `f64` otherwise.
fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Instants compare across time zones; unparseable text still supports exact (in)equality.
fn compare_date_times(actual: &Value, op: CompareOp, literal: &Value) -> bool {
    let (Some(a), Some(b)) = (actual.as_str(), literal.as_str()) else {
        return false;
    };
    if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
        return compare_strings(actual, op, literal, true);
    }
    match (
        crate::clock::parse_rfc3339(a),
        crate::clock::parse_rfc3339(b),
    ) {
        (Some(x), Some(y)) => order_holds(x.cmp(&y), op),
        _ => matches!(op, CompareOp::Eq | CompareOp::Ne) && order_holds(a.cmp(b), op),
    }
}

fn compare_booleans(actual: &Value, op: CompareOp, literal: &Value) -> bool {
    match (actual.as_bool(), literal.as_bool(), op) {
        (Some(a), Some(b), CompareOp::Eq) => a == b,
        (Some(a), Some(b), CompareOp::Ne) => a != b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Index planning
// ---------------------------------------------------------------------------------------------

/// The `attr eq "string"` conjuncts of `filter` (itself, or reachable through `and` only), each
/// as (canonical attribute name, value as written). Each is a necessary condition for a match,
/// so the caller may answer the filter from any one it has an index for and re-check the rest
/// with [`matches`]. Names: `userName`, `externalId`, `id`, `name.familyName`, `emails.value`
/// (for `emails.value eq`, `emails eq` and `emails[value eq ..]`), and `{urn}:{attr}` for
/// extension attributes. Values are not case-folded; case-insensitive attributes need a
/// case-insensitive lookup.
pub fn eq_conjuncts(filter: &Filter, schema: &ResourceSchema) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // An explicit stack: `and` chains can be long.
    let mut pending = vec![filter];
    while let Some(f) = pending.pop() {
        match f {
            Filter::And(left, right) => pending.extend([&**right, &**left]),
            Filter::Compare(path, CompareOp::Eq, Value::String(s)) => {
                if let Some(name) = schema.resolve(path).ok().as_ref().and_then(indexed_name) {
                    out.push((name, s.clone()));
                }
            }
            Filter::ValuePath(path, inner) => {
                if let Ok(r) = schema.resolve(path) {
                    element_conjuncts(&r, inner, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

fn is_string_like(attr: &Attribute) -> bool {
    matches!(attr.ty, AttrType::String | AttrType::Reference)
}

/// Canonical name of a string-valued path (complex attributes through `value`).
fn indexed_name(r: &Resolved<'_>) -> Option<String> {
    let sub = match r.sub {
        Some(sub) => Some(sub),
        None if r.attr.ty == AttrType::Complex => Some(r.attr.sub("value")?),
        None => None,
    };
    is_string_like(sub.unwrap_or(r.attr)).then(|| qualified_name(r.container, r.attr, sub))
}

fn qualified_name(container: Container<'_>, attr: &Attribute, sub: Option<&Attribute>) -> String {
    let mut name = match container {
        Container::Core => attr.name.clone(),
        Container::Extension(urn) => format!("{urn}:{}", attr.name),
    };
    if let Some(sub) = sub {
        name.push('.');
        name.push_str(&sub.name);
    }
    name
}

/// The `sub eq "string"` conjuncts inside `attr[...]`, named `attr.sub`.
fn element_conjuncts(r: &Resolved<'_>, inner: &Filter, out: &mut Vec<(String, String)>) {
    if r.sub.is_some() || r.attr.ty != AttrType::Complex {
        return;
    }
    let mut pending = vec![inner];
    while let Some(f) = pending.pop() {
        match f {
            Filter::And(left, right) => pending.extend([&**right, &**left]),
            Filter::Compare(path, CompareOp::Eq, Value::String(s)) => {
                if let Some(sub) = element_attribute(r.attr, path).filter(|a| is_string_like(a)) {
                    out.push((qualified_name(r.container, r.attr, Some(sub)), s.clone()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{core_group, core_user, enterprise_user, urn};
    use proptest::prelude::*;
    use serde_json::json;

    fn users() -> ResourceSchema {
        ResourceSchema::new(
            "User",
            "/Users",
            "User Account",
            core_user(),
            vec![enterprise_user()],
        )
    }

    fn groups() -> ResourceSchema {
        ResourceSchema::new("Group", "/Groups", "Group", core_group(), vec![])
    }

    fn path(text: &str) -> AttrPath {
        AttrPath::parse(text).unwrap()
    }

    fn cmp(p: &str, op: CompareOp, v: Value) -> Filter {
        Filter::Compare(path(p), op, v)
    }

    fn pr(p: &str) -> Filter {
        Filter::Present(path(p))
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    fn assert_invalid(result: ScimResult<impl fmt::Debug>, needle: &str) {
        let err = result.expect_err("expected invalidFilter");
        assert_eq!(
            (err.status, err.scim_type),
            (400, Some(ScimType::InvalidFilter)),
            "{err}"
        );
        assert!(
            err.detail.contains(needle),
            "detail {:?} lacks {needle:?}",
            err.detail
        );
    }

    fn bjensen() -> Value {
        json!({
            "schemas": [urn::USER, urn::ENTERPRISE_USER],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen-ext",
            "userName": "bjensen",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "title": "Tour Guide",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "ims": [{"value": "bjensen@foo.com", "type": "xmpp"}],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z"
            },
            urn::ENTERPRISE_USER: {
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    fn intern() -> Value {
        json!({
            "schemas": [urn::USER],
            "id": "c3a26dd3-27a0-4dec-a2ac-ce211e105f97",
            "userName": "jdoe",
            "name": {"familyName": "Doe"},
            "userType": "Intern",
            "active": false,
            "emails": [{"value": "jdoe@interns.net", "type": "home"}],
            "meta": {"lastModified": "2012-01-01T00:00:00+01:00"}
        })
    }

    const LAST_MODIFIED: &str = "2011-05-13T04:42:34Z";

    /// RFC 7644 §3.4.2.2 examples with their outcome for (bjensen, intern).
    fn rfc_examples() -> Vec<(String, bool, bool)> {
        let ent = urn::ENTERPRISE_USER;
        vec![
            (r#"userName eq "bjensen""#.into(), true, false),
            (r#"name.familyName co "O'Malley""#.into(), true, false),
            (r#"userName sw "J""#.into(), false, true),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#.into(), false, true),
            ("title pr".into(), true, false),
            (format!(r#"meta.lastModified gt "{LAST_MODIFIED}""#), false, true),
            (format!(r#"meta.lastModified ge "{LAST_MODIFIED}""#), true, true),
            (format!(r#"meta.lastModified lt "{LAST_MODIFIED}""#), false, false),
            (format!(r#"meta.lastModified le "{LAST_MODIFIED}""#), true, false),
            (r#"title pr and userType eq "Employee""#.into(), true, false),
            (r#"title pr or userType eq "Intern""#.into(), true, true),
            (format!(r#"schemas eq "{ent}""#), true, false),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#.into(),
                true,
                false,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#.into(),
                false,
                true,
            ),
            (r#"userType eq "Employee" and (emails.type eq "work")"#.into(), true, false),
            (r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#.into(), true, false),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
                    .into(),
                true,
                false,
            ),
        ]
    }

    #[test]
    fn rfc_examples_parse_validate_round_trip_and_evaluate() {
        let schema = users();
        for (text, bjensen_matches, intern_matches) in rfc_examples() {
            let filter = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            validate(&filter, &schema).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parse(&filter.to_string()), Ok(filter.clone()), "{text}");
            assert_eq!(
                matches(&filter, &bjensen(), &schema),
                bjensen_matches,
                "{text} on bjensen"
            );
            assert_eq!(
                matches(&filter, &intern(), &schema),
                intern_matches,
                "{text} on intern"
            );
        }
    }

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
    fn string_matching_follows_case_exact() {
        let schema = users();
        let user = bjensen();
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m(r#"userName eq "BJensen""#));
        assert!(m(r#"emails.value eq "BJENSEN@example.COM""#));
        assert!(m(r#"externalId eq "bjensen-ext""#));
        assert!(!m(r#"externalId eq "BJENSEN-EXT""#));
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(m(r#"name.givenName ew "BARA""#));
        assert!(m(r#"userName gt "A" and userName lt "C""#));
        // Unicode case folding for caseExact=false.
        let u = json!({"userName": "ÅSA"});
        assert!(matches(
            &parse(r#"userName eq "åsa""#).unwrap(),
            &u,
            &schema
        ));
        // Keys are found case-insensitively too.
        let u = json!({"USERNAME": "bob", "Emails": [{"Value": "b@x.com"}]});
        assert!(matches(
            &parse(r#"userName eq "bob" and emails eq "B@X.COM""#).unwrap(),
            &u,
            &schema
        ));
    }

    #[test]
    fn extension_attributes_live_under_their_urn() {
        let schema = users();
        let user = bjensen();
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        let ent = urn::ENTERPRISE_USER;
        assert!(m(&format!(r#"{ent}:employeeNumber eq "701984""#)));
        assert!(m(r#"employeeNumber eq "701984""#));
        assert!(!m(&format!(r#"{ent}:employeeNumber eq "701985""#)));
        assert!(m(&format!(
            r#"{ent}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        )));
        assert!(m(&format!(
            r#"{ent}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        )));
        // A top-level employeeNumber is not the extension's.
        let misplaced = json!({"employeeNumber": "701984"});
        assert!(!matches(
            &parse(r#"employeeNumber eq "701984""#).unwrap(),
            &misplaced,
            &schema
        ));
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
    fn validate_rejects_unknown_attributes_and_bad_operators() {
        let schema = users();
        let v = |text: &str| validate(&parse(text).unwrap(), &schema);
        assert_invalid(v(r#"nope eq "a""#), "unknown attribute");
        assert_invalid(v(r#"name.nope pr"#), "unknown attribute");
        assert_invalid(v(r#"urn:x:y:userName pr"#), "unknown attribute");
        assert_invalid(v(r#"userName pr and not (bogus pr)"#), "unknown attribute");
        assert_invalid(v("active gt true"), "not supported for the boolean");
        assert_invalid(
            v(r#"active eq "true""#),
            "only be compared with true or false",
        );
        assert_invalid(v("active co true"), "use eq or ne");
        assert_invalid(v(r#"x509Certificates.value ge "AAAA""#), "binary");
        assert_invalid(v(r#"emails gt "a""#), "complex");
        assert_invalid(v(r#"name lt "a""#), "complex");
        assert_invalid(
            v(r#"emails[nope eq "a"]"#),
            "unknown attribute 'nope' in the value filter of 'emails'",
        );
        assert_invalid(
            v(r#"userName[value eq "a"]"#),
            "neither complex nor multi-valued",
        );
        assert!(v("active eq false").is_ok());
        assert!(v("active pr and emails[primary eq true]").is_ok());
        assert!(v(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#).is_ok());
        assert!(v(r#"emails[type eq "work"].value eq "x""#).is_ok());
        assert!(v(r#"schemas eq "urn:x""#).is_ok());
        assert!(v(r#"USERNAME eq "x" and Emails.VALUE co "y""#).is_ok());
        assert!(validate(
            &parse(r#"members[value eq "1"] and displayName sw "a""#).unwrap(),
            &groups()
        )
        .is_ok());
        assert_invalid(
            validate(&parse(r#"userName eq "x""#).unwrap(), &groups()),
            "unknown attribute",
        );
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
    fn date_times_compare_as_instants_across_time_zones() {
        let schema = users();
        let user = bjensen(); // lastModified 2011-05-13T04:42:34Z
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
        assert!(m(r#"meta.lastModified eq "2011-05-12T23:42:34.000-05:00""#));
        assert!(m(r#"meta.lastModified gt "2011-05-13T05:00:00+01:00""#));
        assert!(!m(r#"meta.lastModified gt "2011-05-13T05:00:00+00:00""#));
        assert!(m(r#"meta.lastModified lt "2011-05-13T04:42:34.001Z""#));
        assert!(!m(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#));
        assert!(!m(r#"meta.lastModified gt "not a date""#));
        assert!(m(r#"meta.lastModified sw "2011-05""#));
        let instant = |s: &str| crate::clock::parse_rfc3339(s).unwrap();
        assert_eq!(instant("1970-01-01T00:00:00Z"), (0, 0));
        assert_eq!(
            instant("2000-03-01T00:00:00Z").0 - instant("2000-02-28T00:00:00Z").0,
            2 * 86_400
        );
        assert_eq!(
            instant("2011-05-13T04:42:34.5Z"),
            (1_305_261_754, 500_000_000)
        );
        assert_eq!(
            instant("1969-12-31T23:59:59.123456789123Z"),
            (-1, 123_456_789)
        );
        for bad in [
            "2011-02-29T00:00:00Z",
            "2011-13-01T00:00:00Z",
            "2011-05-13 04:42:34Z",
            "2011-05-13T04:42:34",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34+0200",
            "2011-05-13T24:00:00Z",
        ] {
            assert_eq!(crate::clock::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn missing_null_and_mismatched_values() {
        let schema = users();
        let user =
            json!({"userName": "u", "title": "", "emails": [], "nickName": null, "active": true});
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m(r#"displayName ne "x""#));
        assert!(!m(r#"displayName eq "x""#));
        assert!(!m(r#"displayName co "x""#));
        assert!(!m(r#"displayName gt "a""#));
        assert!(!m("title pr") && !m("emails pr") && !m("nickName pr") && !m("displayName pr"));
        assert!(m("userName pr") && m("active pr"));
        assert!(m("displayName eq null") && m("title eq null") && !m("userName eq null"));
        assert!(m("userName ne null") && !m("nickName ne null"));
        assert!(!m("userName eq 5") && !m("userName gt true") && !m("userName eq false"));
        assert!(!m(r#"active eq "true""#) && m("active eq true") && m("active ne false"));
        assert!(m(r#"not (userName eq "v")"#) && !m(r#"not (userName eq "u")"#));
        // Malformed data never panics.
        let odd =
            json!({"userName": 7, "emails": "a@b.c", "name": [1, {"givenName": 3}], "meta": "x"});
        for text in [
            r#"userName eq "7""#,
            r#"emails.value eq "a@b.c""#,
            "name.givenName gt 1",
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        ] {
            assert!(!matches(&parse(text).unwrap(), &odd, &schema), "{text}");
        }
        assert!(!matches(
            &parse(r#"userName eq "a""#).unwrap(),
            &json!("not an object"),
            &schema
        ));
        // Unknown attributes never match.
        assert!(!m("nope pr") && m("not (nope pr)"));
    }

    #[test]
    fn numbers_compare_numerically() {
        let mut schema = users();
        schema
            .core
            .attributes
            .push(Attribute::new("level", AttrType::Integer));
        schema
            .core
            .attributes
            .push(Attribute::new("score", AttrType::Decimal));
        let user = json!({"level": 10, "score": 2.5});
        let m = |text: &str| matches(&parse(text).unwrap(), &user, &schema);
        assert!(m("level gt 9") && !m("level gt 10") && m("level ge 10") && m("level eq 10.0"));
        assert!(m("level lt 1e2") && m("score lt 3") && m("score gt -1") && m("score eq 2.5"));
        assert!(!m(r#"level eq "10""#) && !m("level co 1"));
        assert!(validate(&parse("level gt 1").unwrap(), &schema).is_ok());
    }

    #[test]
    fn value_paths_and_matches_element() {
        let group_schema = groups();
        let group = json!({
            "displayName": "Admins",
            "members": [{"value": "u1", "type": "User"}, {"value": "g1", "type": "Group", "display": "Sub"}]
        });
        let gm = |text: &str| matches(&parse(text).unwrap(), &group, &group_schema);
        assert!(gm(r#"members[value eq "g1" and type eq "Group"]"#));
        assert!(!gm(r#"members[value eq "u1" and type eq "Group"]"#));
        assert!(gm(r#"members[not (display pr)]"#));
        assert!(gm(r#"members.value eq "u1""#));
        assert!(!gm(r#"members[value eq "u2"]"#));

        let members = group_schema.resolve(&path("members")).unwrap().attr;
        let inner = match parse(r#"members[value eq "G1" or display sw "s"]"#).unwrap() {
            Filter::ValuePath(_, inner) => *inner,
            other => panic!("{other:?}"),
        };
        // `value` of members is caseExact=false in this schema.
        assert!(matches_element(&inner, &group["members"][1], members));
        assert!(!matches_element(&inner, &group["members"][0], members));
        assert!(!matches_element(
            &parse("nope pr").unwrap(),
            &group["members"][0],
            members
        ));
        // Simple multi-valued parent: `value` is the element itself.
        let tags = Attribute::string("tags").multi();
        assert!(matches_element(
            &parse(r#"value eq "A""#).unwrap(),
            &json!("a"),
            &tags
        ));
        assert!(!matches_element(
            &parse(r#"value eq "b""#).unwrap(),
            &json!("a"),
            &tags
        ));
        // Complex single-valued attribute as a value path.
        assert!(matches(
            &parse(r#"name[givenName eq "barbara"]"#).unwrap(),
            &bjensen(),
            &users()
        ));
    }

    #[test]
    fn eq_conjuncts_name_indexable_attributes() {
        let schema = users();
        let ec = |text: &str| eq_conjuncts(&parse(text).unwrap(), &schema);
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(ec(r#"USERNAME eq "Bob""#), vec![pair("userName", "Bob")]);
        assert_eq!(
            ec(r#"userName eq "a" and (externalId eq "b" and id eq "c") and title pr"#),
            vec![
                pair("userName", "a"),
                pair("externalId", "b"),
                pair("id", "c")
            ]
        );
        assert_eq!(ec(r#"userName eq "a" or externalId eq "b""#), vec![]);
        assert_eq!(ec(r#"not (userName eq "a")"#), vec![]);
        assert_eq!(ec(r#"userName ne "a""#), vec![]);
        assert_eq!(ec(r#"userName sw "a""#), vec![]);
        assert_eq!(ec("active eq true"), vec![]);
        assert_eq!(ec(r#"meta.lastModified eq "2011-05-13T04:42:34Z""#), vec![]);
        assert_eq!(ec(r#"nope eq "a""#), vec![]);
        assert_eq!(
            ec(r#"emails.value eq "x""#),
            vec![pair("emails.value", "x")]
        );
        assert_eq!(ec(r#"emails eq "x""#), vec![pair("emails.value", "x")]);
        assert_eq!(
            ec(r#"emails[type eq "work"].value eq "x""#),
            vec![pair("emails.type", "work"), pair("emails.value", "x")]
        );
        assert_eq!(ec(r#"emails[type eq "work" or value eq "x"]"#), vec![]);
        let ent = urn::ENTERPRISE_USER;
        assert_eq!(
            ec(r#"employeeNumber eq "701984""#),
            vec![pair(&format!("{ent}:employeeNumber"), "701984")]
        );
        let long = vec![r#"userName eq "a""#; 300].join(" and ");
        assert_eq!(ec(&long).len(), 300);
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

    #[test]
    fn worst_case_filters_fit_a_wasm_sized_stack() {
        // wasm32 guests get a 1 MiB stack by default; the deepest and the longest filters the
        // bounds allow must parse, validate, evaluate, print and drop within it (debug build).
        let worst = move || {
            let deepest = format!(
                "{}userName pr{}",
                "not (".repeat(MAX_DEPTH),
                ")".repeat(MAX_DEPTH)
            );
            let longest = vec!["userName pr"; (MAX_FILTER_LEN + 5) / 16].join(" and ");
            for text in [deepest, longest] {
                let f = parse(&text).unwrap();
                validate(&f, &users()).unwrap();
                let _ = matches(&f, &bjensen(), &users());
                assert_eq!(parse(&f.to_string()), Ok(f));
            }
        };
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(worst)
            .unwrap();
        handle
            .join()
            .expect("worst-case filters overflowed a 1 MiB stack");
    }

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
