//! The operator console and the self-serve setup page over HTTP: sign-in, the session cookie's
//! flags, the Content-Security-Policy, CSRF refusals, and setup links (CLI output, 403 when
//! altered, 410 when expired or revoked).

use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::support::{admin_json, admin_url, cli, get_as, Server, ADMIN_TOKEN};

fn start(extra: &[&str]) -> Server {
    start_in(tempfile::tempdir().unwrap(), extra)
}

fn start_in(data: tempfile::TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Server::start_with(data, &args, |cmd| {
        cmd.env("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN);
    })
}

/// A browser-like client: no redirects followed, cookies kept by hand.
struct Browser {
    client: Client,
    origin: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(origin: &str) -> Browser {
        Browser {
            client: Client::builder().redirect(Policy::none()).build().unwrap(),
            origin: origin.trim_end_matches('/').to_string(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, resp: &Response) {
        if let Some(set) = resp.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            self.cookie = Some(pair);
        }
    }

    fn get(&mut self, path: &str) -> Response {
        let mut req = self.client.get(format!("{}{path}", self.origin));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().unwrap();
        self.keep_cookie(&resp);
        resp
    }

    /// A form post from the console's own origin (as a browser sends it).
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_from(&self.origin.clone(), path, fields)
    }

    fn post_from(&mut self, origin: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.origin))
            .header("origin", origin)
            .form(fields);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().unwrap();
        self.keep_cookie(&resp);
        resp
    }
}

/// The value of the first `<input name="NAME" … value="…">` (maud renders attributes in
/// source order: `name` before `value` in every form here).
fn field(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name} in {html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    rest[v..v + rest[v..].find('"').unwrap()].to_string()
}

fn console_origin(s: &Server) -> String {
    admin_url(s).trim_end_matches("/admin").to_string()
}

#[test]
fn the_console_signs_in_with_a_strict_cookie_and_refuses_forms_without_their_token() {
    let s = start(&[]);
    let mut b = Browser::new(&console_origin(&s));

    let resp = b.get("/");
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(resp.headers()["referrer-policy"], "same-origin");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let page = resp.text().unwrap();
    assert!(
        page.contains("Admin token") && page.contains("Sign in"),
        "{page}"
    );
    let visitor_csrf = field(&page, "csrf");

    // The stylesheet is served from the binary.
    let css = b.get("/assets/console.css");
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));

    // A wrong token, or a sign-in form without its token, signs nobody in.
    let wrong = b.post(
        "/sign-in",
        &[("csrf", &visitor_csrf), ("token", "not-the-admin-token")],
    );
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().unwrap().contains("not the admin token"));
    let forged = b.post("/sign-in", &[("token", ADMIN_TOKEN)]);
    assert_eq!(forged.status(), 403);
    assert!(forged.text().unwrap().contains("Form refused"));

    let resp = b.post(
        "/sign-in",
        &[("csrf", &visitor_csrf), ("token", ADMIN_TOKEN)],
    );
    assert_eq!(resp.status(), 303);
    let session = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let home = b.get("/").text().unwrap();
    assert!(home.contains("Create tenant"), "{home}");
    let csrf = field(&home, "csrf");
    assert_ne!(csrf, visitor_csrf, "signing in starts a new session");

    // A state-changing form without its CSRF token, or from another origin: 403, nothing made.
    let resp = b.post("/tenants", &[("name", "acme")]);
    assert_eq!(resp.status(), 403);
    assert!(resp.text().unwrap().contains("Form refused"));
    let resp = b.post_from(
        "http://evil.example",
        "/tenants",
        &[("csrf", &csrf), ("name", "acme")],
    );
    assert_eq!(resp.status(), 403);
    let (_, listed) = admin_json(
        s.raw()
            .get(format!("{}/tenants", admin_url(&s)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap(),
    );
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 1, "{listed}");

    // The real form: the tenant's page shows its first token once, and it works.
    let resp = b.post(
        "/tenants",
        &[("csrf", &csrf), ("name", "acme"), ("profile", "standard")],
    );
    assert_eq!(resp.status(), 201);
    let page = resp.text().unwrap();
    assert!(
        page.contains("SCIM base URL") && page.contains("New bearer token"),
        "{page}"
    );
    assert!(
        page.contains(&format!("value=\"{}\"", s.base)),
        "the SCIM URL shown is the listener's"
    );
    let token = field(&page, "new-token");
    assert_eq!(get_as(&s, &token, "/Users").0, 200);

    // What the IdP does shows on the page: who called last, the token's last use, and the
    // request it got refused, in words (all written in the background, so polled for).
    let okta_post = || {
        s.raw()
            .post(s.url("/Users"))
            .bearer_auth(&token)
            .header("user-agent", "Okta SCIM Client 1.0.0")
            .header("content-type", "application/scim+json")
            .body(crate::support::new_user("ada@example.com").to_string())
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(okta_post(), 201);
    assert_eq!(okta_post(), 409);
    let mut shown = String::new();
    for _ in 0..100 {
        shown = b.get("/tenants/acme").text().unwrap();
        if shown.contains("<strong>Okta</strong>") && shown.contains("uniqueness") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(shown.contains("Connected"), "{shown}");
    assert!(
        shown.contains("Last request from <strong>Okta</strong>"),
        "{shown}"
    );
    assert!(
        shown.contains("ada@example.com") && shown.contains("uniqueness"),
        "{shown}"
    );
    assert!(
        !shown.contains(">never<"),
        "the token's last use is shown: {shown}"
    );
    let users = b.get("/tenants/acme/users?q=ADA").text().unwrap();
    assert!(users.contains("ada@example.com"), "{users}");
    let activity = b
        .get("/tenants/acme/activity?since=1h&outcome=errors")
        .text()
        .unwrap();
    assert!(
        activity.contains("409") && !activity.contains(">201<"),
        "{activity}"
    );

    // Without the session cookie, pages lead to the sign-in form.
    let mut stranger = Browser::new(&console_origin(&s));
    let resp = stranger.get("/tenants/acme");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/");

    // Signing out ends the session.
    assert_eq!(b.post("/sign-out", &[("csrf", &csrf)]).status(), 303);
    assert_eq!(b.get("/tenants/acme").status(), 303);
}

#[test]
fn the_cookie_is_secure_behind_an_https_admin_url() {
    let s = start(&["--admin-public-url", "https://admin.example.com"]);
    let mut b = Browser::new(&console_origin(&s));
    let set = b.get("/").headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("Secure"), "{set}");
    // Forms must come from the configured origin.
    let page = b.get("/").text().unwrap();
    let csrf = field(&page, "csrf");
    let resp = b.post("/sign-in", &[("csrf", &csrf), ("token", ADMIN_TOKEN)]);
    assert_eq!(resp.status(), 403);
    let resp = b.post_from(
        "https://admin.example.com",
        "/sign-in",
        &[("csrf", &csrf), ("token", ADMIN_TOKEN)],
    );
    assert_eq!(resp.status(), 303);
}

#[test]
fn setup_links_open_one_tenant_until_altered_expired_or_revoked() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    cli(&[
        "tenant",
        "create",
        "acme",
        "--profile",
        "writer",
        "--data",
        &dir,
    ]);
    let out = cli(&[
        "tenant",
        "setup-link",
        "acme",
        "--public-url",
        "https://scim.example.com",
        "--data",
        &dir,
    ]);
    let url = out.lines().last().unwrap().trim().to_string();
    assert!(
        url.starts_with("https://scim.example.com/setup/t_"),
        "{out}"
    );
    assert!(!url.contains(' '), "the URL alone on the last line: {out}");
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("l_"))
        .unwrap()
        .to_string();

    let s = start_in(data, &[]);
    let root = s.base.trim_end_matches("/scim/v2").to_string();
    let path = url
        .trim_start_matches("https://scim.example.com")
        .to_string();
    let mut b = Browser::new(&root);
    let resp = b.get(&path);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(resp.headers()["referrer-policy"], "same-origin");
    let page = resp.text().unwrap();
    assert!(
        page.contains("acme") && page.contains("SCIM base URL") && page.contains("Generate token")
    );
    assert!(
        page.contains("Default team")
            && page.contains("Okta")
            && page.contains("Microsoft Entra ID")
    );
    assert!(
        !page.contains("Create tenant") && !page.contains("Create setup link"),
        "one tenant only"
    );

    // Generating a token from the page: shown once, and it works.
    let csrf = field(&page, "csrf");
    let resp = b.post(&format!("{path}/tokens"), &[("csrf", &csrf)]);
    assert_eq!(resp.status(), 201);
    let token = field(&resp.text().unwrap(), "new-token");
    assert_eq!(get_as(&s, &token, "/Users").0, 200);
    // Without the form's token: refused.
    assert_eq!(b.post(&format!("{path}/tokens"), &[]).status(), 403);

    // Any altered character: 403.
    let mut altered = path.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(b.get(&altered).status(), 403);

    // Revoked: 410, and listed as such.
    cli(&[
        "tenant",
        "setup-link",
        "acme",
        "--revoke",
        &id,
        "--data",
        s.data_dir().to_str().unwrap(),
    ]);
    let resp = b.get(&path);
    assert_eq!(resp.status(), 410);
    assert!(resp.text().unwrap().contains("This setup link has expired"));
    let listed = cli(&[
        "tenant",
        "setup-link",
        "acme",
        "--list",
        "--data",
        s.data_dir().to_str().unwrap(),
    ]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.ends_with("revoked")),
        "{listed}"
    );

    // The admin API makes them too; an expired one is gone.
    let admin = admin_url(&s);
    let (status, made) = admin_json(
        s.raw()
            .post(format!("{admin}/tenants/acme/setup-links"))
            .bearer_auth(ADMIN_TOKEN)
            .body(json!({"expires": "1s"}).to_string())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{made}");
    let short = made["url"].as_str().unwrap();
    assert!(
        short.starts_with(&root),
        "the SCIM listener's address by default: {short}"
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(b.get(short.trim_start_matches(&root)).status(), 410);
    let (status, all) = admin_json(
        s.raw()
            .get(format!("{admin}/tenants/acme/setup-links"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(all["setup_links"].as_array().unwrap().len(), 2, "{all}");
    let resp = s
        .raw()
        .delete(format!(
            "{admin}/tenants/acme/setup-links/l_0000000000000000"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    let bad = cli_fails(&[
        "tenant",
        "setup-link",
        "acme",
        "--expires",
        "forever",
        "--data",
        s.data_dir().to_str().unwrap(),
    ]);
    assert!(bad.contains("72h"), "{bad}");
}

/// Runs the CLI expecting a failure; its stderr.
fn cli_fails(args: &[&str]) -> String {
    let out = crate::support::cli_output(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
