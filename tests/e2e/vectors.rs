//! Identity-provider test vectors: the request sequences Okta and Microsoft Entra ID send, quoted
//! from `scim-field-guide.md`, replayed against the real binary (`tests/vectors/{okta,entra}`).
//!
//! A vector file is `{description, source, tenant?: {profile}, headers?: {name: value},
//! steps: [...]}`. One server starts per file, so the steps share state in order. A step is
//! `{name, method, path, query?, body?, save?: {var: "/json/pointer"}, expect: {status, body?,
//! stored?}}`:
//!
//! * `{var}` in `path`, `query`, `body` and expected values is replaced by a value saved from
//!   an earlier response (`"save": {"user": "/id"}`).
//! * `expect.body` maps JSON pointers into the response to expected values; `expect.stored`
//!   (one or a list) is a follow-up `GET {path, query?, status?: 200, body}` checked the same
//!   way. Every mutating step (POST, PUT, PATCH, DELETE) must have one, so that it proves what
//!   was stored (or, when refused, that nothing was); the runner refuses a step without.
//! * An expected value is compared for equality, unless it is an object with one `$` key:
//!   `{"$absent": true}`, `{"$present": true}`, `{"$len": n}`, `{"$ne": v}` (a value is there and
//!   differs from `v`),
//!   `{"$type": "number"}`, or `{"$values": [...]}` (the `value`s of a multi-valued attribute
//!   such as `members`, in any order).
//!
//! `SCIMLET_VECTOR=<part of a file name>` replays only the matching files; a selection that
//! matches no file at all fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use reqwest::blocking::RequestBuilder;

use crate::support::{cli, json, Server};

type Vars = BTreeMap<String, String>;

/// Where a vector's requests go: the binary, or a product embedding the service
/// (`product.rs`). Paths are relative to the SCIM base; the request carries the tenant's token.
pub trait Endpoint {
    fn req(&self, method: &str, path: &str) -> RequestBuilder;
}

impl Endpoint for Server {
    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        Server::req(self, method, path)
    }
}

#[test]
fn okta_vectors() {
    run_dir("okta");
}

#[test]
fn entra_vectors() {
    run_dir("entra");
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// Runs every vector file of one identity provider, in name order.
fn run_dir(idp: &str) {
    for file in vector_files(idp) {
        run_file(&file);
    }
}

/// The vector files of one identity provider, in name order (`SCIMLET_VECTOR` applied).
pub fn vector_files(idp: &str) -> Vec<PathBuf> {
    let dir = vectors_dir().join(idp);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected vector files in {}",
        dir.display()
    );
    // SCIMLET_VECTOR=part-of-a-file-name replays only the matching files (when debugging one).
    let only = std::env::var("SCIMLET_VECTOR").unwrap_or_default();
    files.retain(|f| f.to_string_lossy().contains(&only));
    if files.is_empty() {
        // The other identity provider's test may hold the selected file; none may not.
        let anywhere = ["okta", "entra"].iter().any(|idp| {
            std::fs::read_dir(vectors_dir().join(idp))
                .unwrap()
                .any(|e| e.unwrap().path().to_string_lossy().contains(&only))
        });
        assert!(anywhere, "SCIMLET_VECTOR={only} matches no vector file");
        eprintln!("no {idp} vector matches SCIMLET_VECTOR={only}");
    }
    files
}

/// A vector file's content.
pub fn read_vector(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()))
}

fn run_file(file: &Path) {
    let vector = read_vector(file);
    let server = start(&vector);
    replay(&server, &vector, file);
}

/// Sends a vector's steps to `endpoint` in order, checking each answer.
pub fn replay(endpoint: &dyn Endpoint, vector: &Value, file: &Path) {
    replay_with(endpoint, vector, file, &mut |_| {});
}

/// [`replay`], calling `after_write` with the step's label after each mutating step.
pub fn replay_with(
    endpoint: &dyn Endpoint,
    vector: &Value,
    file: &Path,
    after_write: &mut dyn FnMut(&str),
) {
    let label = format!(
        "{}/{}",
        file.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        file.file_name().unwrap().to_string_lossy()
    );
    let headers: Vec<(String, String)> = vector
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let steps = vector["steps"].as_array().expect("'steps' array");
    assert!(!steps.is_empty(), "{label}: no steps");
    let mut vars = Vars::new();
    for (i, step) in steps.iter().enumerate() {
        let name = step["name"].as_str().unwrap_or("?");
        let ctx = format!("{label} step {} ({name})", i + 1);
        run_step(endpoint, &headers, step, &mut vars, &ctx);
        if step["method"] != "GET" {
            after_write(&ctx);
        }
    }
}

/// A server for the vector: the default (standard) tenant, or a new tenant of the profile the
/// vector names, created with the CLI before the server starts.
fn start(vector: &Value) -> Server {
    let Some(profile) = vector.pointer("/tenant/profile").and_then(Value::as_str) else {
        return Server::start(&[]);
    };
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let out = cli(&[
        "tenant",
        "create",
        "idp",
        "--profile",
        profile,
        "--data",
        &dir,
    ]);
    let token = out.lines().last().unwrap().trim().to_string();
    let mut server = Server::start_in(data, &[]);
    server.token = token;
    server
}

fn run_step(
    server: &dyn Endpoint,
    headers: &[(String, String)],
    step: &Value,
    vars: &mut Vars,
    ctx: &str,
) {
    let method = step["method"].as_str().expect("method");
    let path = subst(step["path"].as_str().expect("path"), vars);
    let target = match step.get("query").and_then(Value::as_str) {
        Some(q) if !q.is_empty() => format!("{path}?{}", subst(q, vars)),
        _ => path,
    };
    let body = step
        .get("body")
        .filter(|b| !b.is_null())
        .map(|b| subst_json(b, vars));
    let expect = &step["expect"];
    assert!(
        !matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") || expect.get("stored").is_some(),
        "{ctx}: a {method} step must check what was stored (expect.stored)"
    );
    let (status, resp) = send(server, headers, method, &target, body.as_ref());
    let want = expect["status"].as_u64().expect("expect.status");
    assert_eq!(
        u64::from(status),
        want,
        "{ctx}: {method} {target} answered {status}: {resp}"
    );
    if let Some(save) = step.get("save").and_then(Value::as_object) {
        for (var, pointer) in save {
            let v = resp
                .pointer(pointer.as_str().unwrap())
                .unwrap_or_else(|| panic!("{ctx}: nothing at {pointer} to save: {resp}"));
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            vars.insert(var.clone(), text);
        }
    }
    if let Some(checks) = expect.get("body") {
        check(&resp, checks, vars, &format!("{ctx}, response"));
    }
    let stored: Vec<&Value> = match expect.get("stored") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
    };
    for (j, get) in stored.into_iter().enumerate() {
        let path = subst(get["path"].as_str().expect("stored.path"), vars);
        let target = match get.get("query").and_then(Value::as_str) {
            Some(q) => format!("{path}?{}", subst(q, vars)),
            None => path,
        };
        let (status, doc) = send(server, headers, "GET", &target, None);
        let want = get.get("status").and_then(Value::as_u64).unwrap_or(200);
        assert_eq!(
            u64::from(status),
            want,
            "{ctx}, stored check {}: GET {target} answered {status}: {doc}",
            j + 1
        );
        if let Some(checks) = get.get("body") {
            check(&doc, checks, vars, &format!("{ctx}, stored GET {target}"));
        }
    }
}

fn send(
    server: &dyn Endpoint,
    headers: &[(String, String)],
    method: &str,
    target: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = server.req(method, target);
    let mut has_content_type = false;
    for (k, v) in headers {
        has_content_type |= k.eq_ignore_ascii_case("content-type");
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(b) = body {
        if !has_content_type {
            req = req.header("content-type", crate::support::SCIM_JSON);
        }
        req = req.body(b.to_string());
    }
    json(req.send().expect("request"))
}

/// Checks every `pointer: expected` pair against `doc`.
fn check(doc: &Value, checks: &Value, vars: &Vars, ctx: &str) {
    let checks = checks
        .as_object()
        .expect("checks are an object of JSON pointers");
    for (pointer, expected) in checks {
        let actual = doc.pointer(pointer);
        let expected = subst_json(expected, vars);
        if let Err(why) = matches(actual, &expected) {
            panic!("{ctx}: at {pointer}: {why}\n  document: {doc}");
        }
    }
}

fn matches(actual: Option<&Value>, expected: &Value) -> Result<(), String> {
    let present = actual.filter(|v| !v.is_null());
    if let Some((op, arg)) = matcher(expected) {
        let ok = match op {
            "$absent" => present.is_none() == arg.as_bool().unwrap_or(true),
            "$present" => present.is_some() == arg.as_bool().unwrap_or(true),
            "$len" => present
                .and_then(Value::as_array)
                .is_some_and(|a| Some(a.len() as u64) == arg.as_u64()),
            "$ne" => present.is_some_and(|v| v != arg),
            "$type" => present.is_some_and(|v| type_name(v) == arg.as_str().unwrap_or("")),
            "$values" => {
                let mut want = values_of(arg);
                let mut got = present.map(values_of).unwrap_or_default();
                want.sort();
                got.sort();
                want == got
            }
            other => return Err(format!("unknown matcher {other}")),
        };
        return if ok {
            Ok(())
        } else {
            Err(format!("expected {expected}, found {actual:?}"))
        };
    }
    if actual == Some(expected) {
        Ok(())
    } else {
        Err(format!("expected {expected}, found {actual:?}"))
    }
}

fn matcher(v: &Value) -> Option<(&str, &Value)> {
    let obj = v.as_object().filter(|o| o.len() == 1)?;
    let (k, arg) = obj.iter().next()?;
    k.starts_with('$')
        .then_some((k.as_str(), arg))
        .filter(|(k, _)| *k != "$ref")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The `value`s of a multi-valued attribute (or the strings of a plain list).
fn values_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| match i.get("value").unwrap_or(i) {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces every `{var}` with its saved value; an unknown variable is a broken vector.
fn subst(text: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + len];
        let is_var =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..open]);
        if is_var {
            let value = vars
                .get(name)
                .unwrap_or_else(|| panic!("vector uses {{{name}}} before saving it"));
            out.push_str(value);
        } else {
            out.push_str(&rest[open..=open + len]);
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
    out
}

fn subst_json(v: &Value, vars: &Vars) -> Value {
    match v {
        Value::String(s) => Value::String(subst(s, vars)),
        Value::Array(items) => items.iter().map(|i| subst_json(i, vars)).collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| (subst(k, vars), subst_json(x, vars)))
            .collect(),
        other => other.clone(),
    }
}

#[test]
fn matchers_need_a_value_where_they_compare_one() {
    let ne = serde_json::json!({"$ne": "a"});
    assert!(matches(Some(&Value::from("b")), &ne).is_ok());
    assert!(matches(Some(&Value::from("a")), &ne).is_err());
    assert!(
        matches(None, &ne).is_err(),
        "an absent value differs from nothing"
    );
    assert!(matches(Some(&Value::Null), &ne).is_err());
}
