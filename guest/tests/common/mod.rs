//! A tenant served through the HTTP handler on the in-memory store.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use scimlet_guest::http::{handle, Request, Response};
use scimlet_guest::store::MemStore;
use serde_json::{json, Value};

pub const BASE: &str = "https://scim.example.com/scim/v2";

pub struct Tenant {
    pub store: MemStore,
    pub policy: String,
}

impl Tenant {
    pub fn new() -> Self {
        Tenant {
            store: MemStore::new(),
            policy: String::new(),
        }
    }
    pub fn writer() -> Self {
        Tenant {
            store: MemStore::new(),
            policy: r#"{"profile":"writer"}"#.into(),
        }
    }

    pub fn call(
        &self,
        method: &str,
        target: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response<'static> {
        self.call_raw(method, target, body, headers)
            .collect()
            .expect("the body streams to the end")
    }

    /// The response as the handler returns it, its body possibly streamed.
    pub fn call_raw(
        &self,
        method: &str,
        target: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response<'_> {
        handle(
            &self.store,
            &request(method, target, body, headers, &self.policy),
        )
    }

    pub fn ok(&self, method: &str, target: &str, body: Option<Value>) -> Value {
        let resp = self.call(method, target, body, &[]);
        assert!(
            resp.status < 300,
            "{method} {target} -> {} {}",
            resp.status,
            resp.json_body()
        );
        resp.json_body()
    }

    pub fn err(&self, method: &str, target: &str, body: Option<Value>) -> (u16, Value) {
        let resp = self.call(method, target, body, &[]);
        assert!(
            resp.status >= 400,
            "{method} {target} unexpectedly {}",
            resp.status
        );
        let b = resp.json_body();
        assert_eq!(
            b["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(b["status"], resp.status.to_string());
        (resp.status, b)
    }

    pub fn create(&self, user_name: &str) -> String {
        let u = self.ok(
            "POST",
            "/Users",
            Some(
                json!({"userName": user_name, "name": {"givenName": "G", "familyName": user_name}}),
            ),
        );
        u["id"].as_str().unwrap().to_string()
    }

    pub fn with_policy(policy: &str) -> Self {
        Tenant {
            store: MemStore::new(),
            policy: policy.into(),
        }
    }
}

/// A request for `target` (path and query) under [`BASE`], for any store.
pub fn request(
    method: &str,
    target: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
    policy: &str,
) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if body.is_some() {
        hs.push(("content-type".into(), "application/scim+json".into()));
    }
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: hs,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        base_url: BASE.into(),
        policy: policy.into(),
    }
}

pub fn header<'r>(resp: &'r Response<'_>, name: &str) -> Option<&'r str> {
    resp.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
