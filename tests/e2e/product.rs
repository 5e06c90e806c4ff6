//! The example product (`host/examples/product/`): the Okta and Entra vectors replayed through
//! its `/scim/v2`, after which its own tables, kept from the change feed in-process, hold what
//! SCIM holds; sign-in follows `active`; a product that fell behind retention resyncs.
//!
//! The example's code is compiled into this test (`#[path]`) rather than run as a binary:
//! `cargo test --test e2e` does not build examples and offers no path to them, and the test
//! needs the product's tables anyway.

#[path = "../../host/examples/product/app.rs"]
#[allow(dead_code)]
mod app;

use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use scimlet::runtime::{Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::{unix_now_millis, Backend};
use scimlet::{tenants, ScimService, ServiceConfig};
use serde_json::{json, Value};

use crate::support::{cache_dir, new_user};
use crate::vectors::{read_vector, replay_with, vector_files, Endpoint};
use app::{Product, Snapshot};

/// The product serving on a free port, its feed follower running.
struct Running {
    rt: tokio::runtime::Runtime,
    product: Arc<Product>,
    scim: ScimService,
    tenant: String,
    base: String,
    token: String,
    client: Client,
    follower: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Endpoint for Running {
    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.client
            .request(
                method.parse().unwrap(),
                format!("{}/scim/v2{path}", self.base),
            )
            .bearer_auth(&self.token)
    }
}

impl Running {
    fn start(profile: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn Backend> =
            Arc::new(SqliteBackend::open(&dir.path().join("scimlet.db")).unwrap());
        let runtime =
            Runtime::new(EMBEDDED_COMPONENT, Some(&cache_dir()), Limits::default()).unwrap();
        let (tenant, token) =
            tenants::create(backend.as_ref(), &runtime, "idp", profile, None).unwrap();
        let product = Arc::new(Product::open(&dir.path().join("product.db"), "idp").unwrap());
        let scim = ScimService::new(runtime, backend, ServiceConfig::default());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = app::router(product.clone(), scim.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        let mut running = Running {
            rt,
            product,
            scim,
            tenant: tenant.name,
            base,
            token: token.token,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            follower: None,
            _dir: dir,
        };
        running.follow();
        running
    }

    fn follow(&mut self) {
        let task = self.product.clone().follow(self.scim.clone());
        self.follower = Some(self.rt.spawn(task));
    }

    fn stop_following(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
            let _ = self.rt.block_on(f);
        }
    }

    /// Waits (bounded) until the product has applied every event of the feed.
    fn caught_up(&self) {
        let feed = self.scim.feed();
        for _ in 0..600 {
            if let Some(f) = &self.follower {
                assert!(!f.is_finished(), "the follower stopped");
            }
            let at = self.product.cursor().unwrap();
            // Expired: the follower has not resynced yet.
            let behind = feed.page(&self.tenant, at, 1).map(|p| !p.events.is_empty());
            if at.is_some() && matches!(behind, Ok(false)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the product did not catch up with the feed in 30 s");
    }

    fn get(&self, path: &str) -> Value {
        let resp = self.req("GET", path).send().unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().unwrap()
    }

    /// What SCIM holds, in the product's shape.
    fn scim_snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        let users = self.get("/Users?startIndex=1&count=1000");
        for u in users["Resources"].as_array().unwrap() {
            let active = u.get("active").and_then(Value::as_bool) != Some(false);
            s.users.push((text(u, "id"), text(u, "userName"), active));
        }
        let groups = self.get("/Groups?startIndex=1&count=1000");
        for g in groups["Resources"].as_array().unwrap() {
            s.teams.push((text(g, "id"), text(g, "displayName")));
            // The group by id: its members in full, whatever the list shows.
            let one = self.get(&format!("/Groups/{}", text(g, "id")));
            for m in one["members"].as_array().into_iter().flatten() {
                s.members.push((text(g, "id"), text(m, "value")));
            }
        }
        s.users.sort();
        s.teams.sort();
        s.members.sort();
        s
    }

    fn login(&self, user_name: &str) -> u16 {
        self.client
            .post(format!("{}/login", self.base))
            .json(&json!({"userName": user_name}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    /// The product's tables equal what SCIM holds, and sign-in follows `active`. Answers how
    /// many users were refused for being deactivated.
    fn check_agrees(&self, ctx: &str) -> usize {
        self.caught_up();
        let scim = self.scim_snapshot();
        assert_eq!(self.product.snapshot().unwrap(), scim, "{ctx}");
        let mut refused = 0;
        for (_, user_name, active) in &scim.users {
            let want = if *active { 200 } else { 403 };
            assert_eq!(self.login(user_name), want, "{ctx}: sign-in of {user_name}");
            refused += usize::from(!active);
        }
        assert_eq!(self.login("nobody@example.com"), 403, "{ctx}");
        refused
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// Replays every vector of `idp` through a product each, comparing its tables with SCIM after
/// every write; answers how many users the products refused sign-in to at the end for being
/// deactivated.
fn replay_through_product(idp: &str) -> usize {
    let mut refused = 0;
    for file in vector_files(idp) {
        let vector = read_vector(&file);
        let profile = vector
            .pointer("/tenant/profile")
            .and_then(Value::as_str)
            .unwrap_or("standard");
        let running = Running::start(profile);
        // After every write, not only at the end: a step's change may be undone by a later one.
        let mut last = 0;
        replay_with(&running, &vector, &file, &mut |step| {
            last = running.check_agrees(step);
        });
        refused += last;
    }
    refused
}

#[test]
fn okta_vectors_through_the_product() {
    // Okta's vectors end with a deactivated user (Entra's delete theirs).
    assert!(replay_through_product("okta") > 0);
}

#[test]
fn entra_vectors_through_the_product() {
    replay_through_product("entra");
}

fn create_user(running: &Running, name: &str) -> String {
    let resp = running
        .req("POST", "/Users")
        .header("content-type", "application/scim+json")
        .body(new_user(name).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    text(&resp.json::<Value>().unwrap(), "id")
}

#[test]
fn a_product_behind_the_retention_horizon_resyncs_from_the_lists() {
    let mut running = Running::start("standard");
    let ada = create_user(&running, "ada@example.com");
    create_user(&running, "grace@example.com");
    running.check_agrees("before");
    running.stop_following();
    // While the product is away: a user deactivated, another created, then every event pruned.
    let resp = running
        .req("PATCH", &format!("/Users/{ada}"))
        .header("content-type", "application/scim+json")
        .body(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    create_user(&running, "linus@example.com");
    let removed = running
        .scim
        .backend()
        .prune_events(unix_now_millis() + 1000)
        .unwrap();
    assert!(removed >= 2);
    assert_eq!(
        running.login("ada@example.com"),
        200,
        "the product missed it"
    );
    running.follow();
    // An event after the prune, so that the product has a cursor to catch up to.
    create_user(&running, "margaret@example.com");
    assert_eq!(running.check_agrees("after the resync"), 1);
    assert_eq!(running.login("ada@example.com"), 403);
    let tokens = tenants::tokens(
        running.scim.backend().as_ref(),
        &tenants::find(running.scim.backend().as_ref(), "idp").unwrap(),
    )
    .unwrap();
    assert!(
        tokens.len() >= 2 && tokens.iter().skip(1).all(|t| t.revoked),
        "the resync's token is revoked"
    );
}
