//! Data loader for `host/benches/compare.sh`: fills any SCIM 2.0 server through its API with many
//! connections, and writes the ids the load scenarios pick from. It measures nothing itself.
//!
//! ```text
//! cargo bench -p scimlet --bench loader -- preload --base URL [--token T] --out DIR
//!     [--users N] [--spares S] [--concurrency C] [--max-seconds SECS] [--group-in-one-post]
//! cargo bench -p scimlet --bench loader -- dump --base URL [--token T] --out DIR
//! cargo bench -p scimlet --bench loader -- tenants --base URL --admin URL --admin-token T
//!     --out DIR [--tenants N] [--users M] [--concurrency C]
//! ```
//!
//! `preload` creates N users `user-NNNNNN@bench.example` (stopping early once `--max-seconds` have
//! passed, for slow servers), S users `spare-NNNNNN@bench.example`, a group `Big` holding the N
//! users (added 1000 per PATCH, or all in the POST with `--group-in-one-post`, for servers whose
//! PATCH costs O(group size × added)) and an empty group `Small`, and writes into DIR: `members.tsv`
//! (id, userName of each member), `spares.txt` (ids of users in no group), `group.txt` and
//! `small.txt` (the groups' ids) and `loaded.txt` (how many members were loaded). `dump` writes the
//! same files for a store filled another way (for example by `scimlet import`), by paging through
//! `/Users`, finding `Big` by name and creating `Small` if it is missing. `tenants` creates N
//! tenants `many-NNN` through scimlet's admin API (`--admin`, the admin listener's URL) and M
//! users in each through the SCIM API with the tenant's token, and writes `tenants.tsv` into
//! DIR: one line `token<TAB>user id` per user (the many-tenants scenario picks a line at random,
//! so a random tenant per request).
//!
//! Run by `cargo bench` without arguments it prints this usage and exits successfully.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const GROUP_NAME: &str = "Big";
const SMALL_GROUP_NAME: &str = "Small";
const MEMBERS_PER_PATCH: usize = 1000;

struct Opts {
    base: String,
    token: Option<String>,
    out: PathBuf,
    users: usize,
    spares: usize,
    concurrency: usize,
    max_seconds: u64,
    group_in_one_post: bool,
    admin: String,
    admin_token: String,
    tenants: usize,
}

struct Api {
    client: Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(opts: &Opts) -> Api {
        let client = Client::builder()
            .timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(opts.concurrency)
            .build()
            .expect("HTTP client");
        Api {
            client,
            base: opts.base.trim_end_matches('/').to_string(),
            token: opts.token.clone(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/scim+json")
            .header("accept", "application/scim+json");
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends a request (retrying transport errors and 503s a few times) and returns the JSON body
    /// of a 2xx answer (`Null` when empty).
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let mut last = String::new();
        for attempt in 0..5 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            let mut r = self.req(method.clone(), path);
            if let Some(b) = body {
                r = r.body(b.to_string());
            }
            match r.send() {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().unwrap_or_default();
                    if status.is_success() {
                        return Ok(if text.trim().is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_str(&text).map_err(|e| e.to_string())?
                        });
                    }
                    last = format!("{method} {path}: {status} {}", truncate(&text));
                    if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        return Err(last);
                    }
                }
                Err(e) => last = format!("{method} {path}: {e}"),
            }
        }
        Err(last)
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(300) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn user_body(user_name: &str, i: usize) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Bench", "familyName": format!("User {i}")},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    })
}

/// Creates users `{prefix}-{i:06}@bench.example` for i in 0..n on `concurrency` threads; stops
/// starting new ones after `deadline`. Returns (id, userName) pairs in index order.
fn create_users(
    api: &Api,
    prefix: &str,
    n: usize,
    concurrency: usize,
    deadline: Option<Instant>,
) -> Vec<(String, String)> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let created: Mutex<Vec<(usize, String, String)>> = Mutex::new(Vec::with_capacity(n));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let user_name = format!("{prefix}-{i:06}@bench.example");
                match api.send(
                    reqwest::Method::POST,
                    "/Users",
                    Some(&user_body(&user_name, i)),
                ) {
                    Ok(v) => {
                        let id = v["id"]
                            .as_str()
                            .expect("created user has an id")
                            .to_string();
                        created.lock().unwrap().push((i, id, user_name));
                    }
                    Err(e) => panic!("creating {user_name}: {e}"),
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d.is_multiple_of(10_000) {
                    eprintln!(
                        "  {prefix}: {d}/{n} users in {:.1?} ({:.0}/s)",
                        started.elapsed(),
                        d as f64 / started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let mut created = created.into_inner().unwrap();
    created.sort_by_key(|(i, _, _)| *i);
    eprintln!(
        "  {prefix}: {} users in {:.1?} ({:.0}/s)",
        created.len(),
        started.elapsed(),
        created.len() as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    created.into_iter().map(|(_, id, u)| (id, u)).collect()
}

fn preload(opts: &Opts) {
    let api = Api::new(opts);
    let started = Instant::now();
    let deadline = (opts.max_seconds > 0).then(|| started + Duration::from_secs(opts.max_seconds));
    let members = create_users(&api, "user", opts.users, opts.concurrency, deadline);
    let spares = create_users(&api, "spare", opts.spares, opts.concurrency, None);
    let t = Instant::now();
    let group_id = if opts.group_in_one_post {
        create_group_with(&api, GROUP_NAME, &members)
    } else {
        create_group(&api, GROUP_NAME)
    };
    let to_patch: &[(String, String)] = if opts.group_in_one_post {
        &[]
    } else {
        &members
    };
    for chunk in to_patch.chunks(MEMBERS_PER_PATCH) {
        let value: Vec<Value> = chunk.iter().map(|(id, _)| json!({"value": id})).collect();
        let ops = json!({"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": value}]});
        api.send(
            reqwest::Method::PATCH,
            &format!("/Groups/{group_id}?excludedAttributes=members"),
            Some(&ops),
        )
        .expect("add members");
    }
    eprintln!(
        "  group {GROUP_NAME}: {} members in {:.1?}",
        members.len(),
        t.elapsed()
    );
    let small_id = create_group(&api, SMALL_GROUP_NAME);
    write_out(&opts.out, &members, &spares, &group_id, &small_id);
    eprintln!("preload done in {:.1?}", started.elapsed());
}

fn dump(opts: &Opts) {
    let api = Api::new(opts);
    let (mut members, mut spares) = (Vec::new(), Vec::new());
    let page = 1000;
    let mut start = 1;
    loop {
        let v = api
            .send(
                reqwest::Method::GET,
                &format!("/Users?attributes=userName&startIndex={start}&count={page}"),
                None,
            )
            .expect("list users");
        let resources = v["Resources"].as_array().cloned().unwrap_or_default();
        for r in &resources {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            let user_name = r["userName"].as_str().unwrap_or_default().to_string();
            if user_name.starts_with("user-") {
                members.push((id, user_name));
            } else if user_name.starts_with("spare-") {
                spares.push((id, user_name));
            }
        }
        if resources.len() < page {
            break;
        }
        start += page;
    }
    members.sort_by(|a, b| a.1.cmp(&b.1));
    spares.sort_by(|a, b| a.1.cmp(&b.1));
    let group_id = find_group(&api, GROUP_NAME).expect("group Big exists");
    let small_id =
        find_group(&api, SMALL_GROUP_NAME).unwrap_or_else(|| create_group(&api, SMALL_GROUP_NAME));
    write_out(&opts.out, &members, &spares, &group_id, &small_id);
}

/// `tenants`: N tenants of M users each, created on `concurrency` threads (a tenant each).
fn tenants(opts: &Opts) {
    let started = Instant::now();
    let client = Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("HTTP client");
    let next = AtomicUsize::new(0);
    let lines: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.concurrency.min(opts.tenants).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= opts.tenants {
                    return;
                }
                let name = format!("many-{i:03}");
                let resp = client
                    .post(format!(
                        "{}/admin/tenants",
                        opts.admin.trim_end_matches('/')
                    ))
                    .bearer_auth(&opts.admin_token)
                    .json(&json!({"name": name}))
                    .send()
                    .unwrap_or_else(|e| panic!("create tenant {name}: {e}"));
                let status = resp.status();
                let v: Value = resp.json().unwrap_or(Value::Null);
                assert!(status.is_success(), "create tenant {name}: {status} {v}");
                let token = v["token"]["token"]
                    .as_str()
                    .or_else(|| v["token"].as_str())
                    .unwrap_or_else(|| panic!("tenant {name}: no token in {v}"))
                    .to_string();
                let api = Api {
                    client: client.clone(),
                    base: opts.base.trim_end_matches('/').to_string(),
                    token: Some(token.clone()),
                };
                for u in 0..opts.users {
                    let user_name = format!("{name}-user-{u:03}@bench.example");
                    let created = api
                        .send(
                            reqwest::Method::POST,
                            "/Users",
                            Some(&user_body(&user_name, u)),
                        )
                        .unwrap_or_else(|e| panic!("creating {user_name}: {e}"));
                    let id = created["id"].as_str().expect("created user has an id");
                    lines.lock().unwrap().push((i, format!("{token}\t{id}")));
                }
            });
        }
    });
    let mut lines = lines.into_inner().unwrap();
    lines.sort_by_key(|(i, _)| *i);
    fs::create_dir_all(&opts.out).expect("create output dir");
    let mut f = std::io::BufWriter::new(fs::File::create(opts.out.join("tenants.tsv")).unwrap());
    for (_, line) in &lines {
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
    eprintln!(
        "created {} tenants of {} users in {:.1?} ({})",
        opts.tenants,
        opts.users,
        started.elapsed(),
        opts.out.join("tenants.tsv").display()
    );
}

fn create_group(api: &Api, name: &str) -> String {
    create_group_with(api, name, &[])
}

fn create_group_with(api: &Api, name: &str, members: &[(String, String)]) -> String {
    let mut body = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
    if !members.is_empty() {
        body["members"] = members.iter().map(|(id, _)| json!({"value": id})).collect();
    }
    let group = api
        .send(
            reqwest::Method::POST,
            "/Groups?excludedAttributes=members",
            Some(&body),
        )
        .unwrap_or_else(|e| panic!("create group {name}: {e}"));
    group["id"].as_str().expect("group id").to_string()
}

fn find_group(api: &Api, name: &str) -> Option<String> {
    let groups = api
        .send(
            reqwest::Method::GET,
            &format!("/Groups?filter=displayName%20eq%20%22{name}%22&excludedAttributes=members"),
            None,
        )
        .expect("find group");
    groups["Resources"][0]["id"].as_str().map(str::to_string)
}

fn write_out(
    out: &Path,
    members: &[(String, String)],
    spares: &[(String, String)],
    group: &str,
    small: &str,
) {
    fs::create_dir_all(out).expect("create output dir");
    let mut f = std::io::BufWriter::new(fs::File::create(out.join("members.tsv")).unwrap());
    for (id, user_name) in members {
        writeln!(f, "{id}\t{user_name}").unwrap();
    }
    f.flush().unwrap();
    let mut f = std::io::BufWriter::new(fs::File::create(out.join("spares.txt")).unwrap());
    for (id, _) in spares {
        writeln!(f, "{id}").unwrap();
    }
    f.flush().unwrap();
    fs::write(out.join("group.txt"), format!("{group}\n")).unwrap();
    fs::write(out.join("small.txt"), format!("{small}\n")).unwrap();
    fs::write(out.join("loaded.txt"), format!("{}\n", members.len())).unwrap();
    eprintln!(
        "wrote {} members, {} spares, group {group} to {}",
        members.len(),
        spares.len(),
        out.display()
    );
}

fn usage() {
    println!(
        "loader (used by host/benches/compare.sh): \
         preload|dump --base URL [--token T] --out DIR [--users N] [--spares S] \
         [--concurrency C] [--max-seconds SECS] [--group-in-one-post]; \
         tenants --base URL --admin URL --admin-token T --out DIR [--tenants N] [--users M]"
    );
}

fn main() {
    // `cargo bench` appends `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(command) = args.first().cloned() else {
        usage();
        return;
    };
    let mut opts = Opts {
        base: String::new(),
        token: None,
        out: PathBuf::from("."),
        users: 100_000,
        spares: 0,
        concurrency: 32,
        max_seconds: 0,
        group_in_one_post: false,
        admin: String::new(),
        admin_token: String::new(),
        tenants: 200,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        if flag == "--group-in-one-post" {
            opts.group_in_one_post = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"))
            .clone();
        let number = || -> usize { value.parse().unwrap_or_else(|_| panic!("{flag} {value}")) };
        match flag.as_str() {
            "--base" => opts.base = value.clone(),
            "--token" => opts.token = Some(value.clone()).filter(|t| !t.is_empty()),
            "--out" => opts.out = PathBuf::from(&value),
            "--users" => opts.users = number(),
            "--spares" => opts.spares = number(),
            "--concurrency" => opts.concurrency = number().max(1),
            "--max-seconds" => opts.max_seconds = number() as u64,
            "--admin" => opts.admin = value.clone(),
            "--admin-token" => opts.admin_token = value.clone(),
            "--tenants" => opts.tenants = number(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!opts.base.is_empty(), "--base is required");
    match command.as_str() {
        "preload" => preload(&opts),
        "dump" => dump(&opts),
        "tenants" => tenants(&opts),
        _ => usage(),
    }
}
