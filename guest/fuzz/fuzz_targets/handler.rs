//! The whole guest request handler, natively behind `MemStore`: a sequence of arbitrary
//! requests never panics, every answer is a status the handler may legitimately give with a
//! well-formed body, and the store's invariants hold afterwards (`check::verify`).
//!
//! Input format (so that seeds are readable): requests separated by a line `---`; each is a
//! request line `METHOD TARGET`, header lines `name: value`, an empty line, then the body. A
//! first line `#policy {...}` sets the tenant policy. `$UID` / `$GID` in a target, header or
//! body stand for the id of the last user / group created.
//!
//! Statuses: 2xx/304 and 4xx as the RFC allows; 501 only for `/Me` and `/Bulk`; 500 only when
//! the policy is invalid (the host validates policies, so that never reaches a guest); 503
//! (contention, storage outage) cannot happen on a single-threaded `MemStore`, so it is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimlet_guest::http::{handle, Request, Response};
use scimlet_guest::operator::verify;
use scimlet_guest::store::MemStore;
use scimlet_guest::Policy;
use serde_json::Value;

const MAX_REQUESTS: usize = 8;
const OK: &[u16] = &[200, 201, 204, 304];
const CLIENT_ERRORS: &[u16] = &[400, 403, 404, 405, 409, 412, 415];

#[derive(Default)]
struct Ids {
    user: String,
    group: String,
}

impl Ids {
    fn fill(&self, text: &str) -> String {
        text.replace("$UID", &self.user)
            .replace("$GID", &self.group)
    }

    fn remember(&mut self, resp: &Response) {
        let body = resp.json_body();
        let id = body["id"].as_str().unwrap_or_default().to_string();
        match body.pointer("/meta/resourceType").and_then(Value::as_str) {
            Some("User") => self.user = id,
            Some("Group") => self.group = id,
            _ => {}
        }
    }
}

fn split(data: &[u8], sep: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(sep.len()).position(|w| w == sep) {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + sep.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

fn request(raw: &[u8], policy: &str, ids: &Ids) -> Request {
    let (head, body) = match raw.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&raw[..at], &raw[at + 2..]),
        None => (raw, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let (method, target) = lines
        .next()
        .unwrap_or_default()
        .split_once(' ')
        .unwrap_or(("GET", "/"));
    let target = ids.fill(target);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), ids.fill(v.trim())))
        .collect();
    let body = match std::str::from_utf8(body) {
        Ok(text) => ids.fill(text).into_bytes(),
        Err(_) => body.to_vec(),
    };
    Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
        base_url: "https://scim.example.com/scim/v2".into(),
        policy: policy.to_string(),
    }
}

fn check_response(req: &Request, resp: &Response, policy_ok: bool) {
    let status = resp.status;
    let first = req.path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    let allowed = OK.contains(&status)
        || CLIENT_ERRORS.contains(&status)
        // Endpoint names match in any case (`/ME`, `/bulk`), as the router takes them.
        || (status == 501 && ["Me", "Bulk"].iter().any(|e| e.eq_ignore_ascii_case(first)))
        || (status == 500 && !policy_ok);
    let body = resp.json_body();
    assert!(allowed, "{} {} -> {status}: {body}", req.method, req.path);
    if status >= 400 {
        assert_eq!(
            body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{status}: {body}"
        );
        assert_eq!(body["status"], status.to_string(), "{body}");
    } else if !resp.bytes().is_empty() {
        assert!(
            body.is_object(),
            "{status} with a body that is not a JSON object"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut chunks = split(data, b"\n---\n");
    let mut policy = String::new();
    if let Some(rest) = chunks[0].strip_prefix(b"#policy ") {
        let (line, rest) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], rest[at + 1..].to_vec()),
            None => (rest, Vec::new()),
        };
        policy = String::from_utf8_lossy(line).into_owned();
        chunks[0] = rest;
    }
    let policy_ok = Policy::from_json(&policy).is_ok();
    let store = MemStore::new();
    let mut ids = Ids::default();
    for raw in chunks.iter().take(MAX_REQUESTS) {
        let req = request(raw, &policy, &ids);
        // A streamed body (a large group) is read to its end, as the host would.
        let resp = handle(&store, &req)
            .collect()
            .expect("a streamed body completes on MemStore");
        check_response(&req, &resp, policy_ok);
        if resp.status == 201 {
            ids.remember(&resp);
        }
    }
    if policy_ok {
        let problems = verify(&store, &policy);
        assert!(
            problems.is_empty(),
            "store invariants broken: {problems:#?}"
        );
    }
});
