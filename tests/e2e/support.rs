//! Starts the real `scimlet` binary on a free port and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::{Backend, Write as StoreWrite};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_scimlet");
pub const SCIM_JSON: &str = "application/scim+json";

/// A running server with its data dir and the default tenant's token.
pub struct Server {
    child: Child,
    pub base: String,
    pub token: String,
    _data: tempfile::TempDir,
    client: Client,
    /// Every stdout line up to and including the "serving SCIM" one.
    banner: Vec<String>,
}

#[allow(dead_code)] // build.rs's part of the shared file
mod guest_build {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/guest_build.rs"));
}

/// The test-only component with the guest's `fault-injection` feature, built on first use.
pub fn fault_component() -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = Path::new(env!("SCIMLET_GUEST_TARGET_DIR"));
    guest_build::fault_component(env!("CARGO"), &workspace, target_dir)
        .display()
        .to_string()
}

/// Compiled components are cached across tests so that each start is fast.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cwasm-cache")
}

/// The `scimlet` binary, sharing the tests' compiled-component cache (every command that needs
/// SCIM rules loads the component).
pub fn scimlet() -> Command {
    let mut command = Command::new(BIN);
    command.env("SCIMLET_CACHE_DIR", cache_dir());
    command
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        Self::start_in(data, extra)
    }

    pub fn start_in(data: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::start_with(data, extra, |_| {})
    }

    /// Like `start_in`, with `configure` adjusting the command (environment, stderr) first.
    pub fn start_with(
        data: tempfile::TempDir,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .arg("--cache-dir")
            .arg(cache_dir())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().expect("start scimlet");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut token, mut base) = (String::new(), String::new());
        let mut expect_token = false;
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            banner.push(line.clone());
            if expect_token {
                token = line.trim().to_string();
                expect_token = false;
            } else if line.starts_with("Created tenant") {
                expect_token = true;
            } else if let Some(url) = line.strip_prefix("scimlet serving SCIM at ") {
                base = url.trim().to_string();
                break;
            }
        }
        assert!(!base.is_empty(), "server did not start");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Server {
            child,
            base,
            token,
            _data: data,
            client,
            banner,
        }
    }

    /// The stdout lines printed before the server started serving.
    pub fn banner(&self) -> &[String] {
        &self.banner
    }

    pub fn data_dir(&self) -> &Path {
        self._data.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for scimlet")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.client
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(&self.token)
    }

    pub fn get(&self, path: &str) -> Response {
        self.req("GET", path).send().expect("GET")
    }

    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Response {
        self.req(method, path)
            .header("content-type", SCIM_JSON)
            .body(body.to_string())
            .send()
            .expect("request")
    }

    pub fn raw(&self) -> &Client {
        &self.client
    }

    /// Stops this server (kill) and starts another on the same data dir with `extra`; the
    /// default tenant's token carries over.
    pub fn restart(mut self, extra: &[&str]) -> Server {
        let data = std::mem::replace(&mut self._data, tempfile::tempdir().expect("temp dir"));
        let token = std::mem::take(&mut self.token);
        drop(self);
        let mut s = Server::start_in(data, extra);
        s.token = token;
        s
    }

    /// Lets every request held by the fault component's `wait` fault go on: writes the key it
    /// polls for (`RELEASE_KEY` of guest/src/fault.rs) into the default tenant's store, straight
    /// into the SQLite file, as the server may no longer accept requests.
    pub fn release_waiting_requests(&self) {
        let backend = SqliteBackend::open(&self.data_dir().join("scimlet.db")).expect("open store");
        let tenant = backend.tenant("default").unwrap().expect("tenant default");
        backend
            .commit(
                &tenant.id,
                &[],
                &[StoreWrite::Put("fault/release".into(), b"go".to_vec())],
            )
            .expect("write the release key");
    }

    /// Waits (bounded) until the SCIM listener refuses connections: the server stopped accepting.
    pub fn wait_until_not_accepting(&self) {
        let authority = self
            .base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        for _ in 0..1200 {
            if std::net::TcpStream::connect(&authority).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the server still accepts connections 30 s after being told to stop");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI and returns stdout.
pub fn cli(args: &[&str]) -> String {
    let out = scimlet().args(args).output().expect("run scimlet");
    assert!(
        out.status.success(),
        "scimlet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the CLI and returns its output, successful or not.
pub fn cli_output(args: &[&str]) -> Output {
    scimlet().args(args).output().expect("run scimlet")
}

/// Status and JSON body of a response, asserting the SCIM media type when there is a body.
pub fn json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().unwrap();
    if text.is_empty() {
        return (status, Value::Null);
    }
    assert!(ct.starts_with(SCIM_JSON), "content type {ct} for {text}");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// Asserts an RFC 7644 §3.12 error body.
pub fn assert_scim_error(body: &Value, status: u16, scim_type: Option<&str>) {
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{body}"
    );
    assert_eq!(body["status"], status.to_string(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    if let Some(t) = scim_type {
        assert_eq!(body["scimType"], t, "{body}");
    }
}

/// The admin token the tests that start an admin listener use.
pub const ADMIN_TOKEN: &str = "admin-0123456789abcdef-e2e";

/// `http://127.0.0.1:PORT`, where the operational endpoints live.
pub fn root(s: &Server) -> String {
    s.base.trim_end_matches("/scim/v2").to_string()
}

/// `GET path` as `token`: status and JSON body.
pub fn get_as(s: &Server, token: &str, path: &str) -> (u16, Value) {
    json(s.raw().get(s.url(path)).bearer_auth(token).send().unwrap())
}

/// A SCIM User document with `user_name`.
pub fn new_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Grace", "familyName": "Hopper"},
    })
}

/// The admin API's base URL (`…/admin`) from the server's banner.
pub fn admin_url(s: &Server) -> String {
    s.banner()
        .iter()
        .find_map(|l| l.strip_prefix("scimlet admin API at "))
        .expect("the admin listener is announced")
        .trim()
        .to_string()
}

/// Status and JSON body of an admin API response (`Null` when empty).
pub fn admin_json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    if text.is_empty() {
        return (status, Value::Null);
    }
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}
