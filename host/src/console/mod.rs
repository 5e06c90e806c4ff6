//! The operator console (`GET /` of the admin listener) and the self-serve setup page (`/setup/…`
//! of the SCIM listener): server-rendered HTML, its stylesheet and its one small script embedded
//! in the binary, so that it works on a network with no internet.
//!
//! The console is signed in with the admin token and then carried by a signed, stateless
//! session cookie ([`session`]); every form carries the session's CSRF token and is refused
//! (403) without it or from another origin. Every page is served under a strict
//! Content-Security-Policy.

// Handlers answer with a page either way: the `Err` of their helpers is the page to send (a
// redirect to sign in, a refusal), made at most once per request, not worth a box.
#![allow(clippy::result_large_err)]

mod activity;
mod guides;
mod layout;
mod scim;
pub mod session;
mod setup;
mod tenant;
mod tenants;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use crate::runtime::Runtime;
use crate::store::Backend;
use crate::tenancy::TenantError;
use crate::webhooks::Webhooks;
use session::{Session, SessionKey};

pub use setup::router as setup_router;

/// The Content-Security-Policy of every page: nothing but this origin's stylesheet and script,
/// no inline script or style, no framing, forms posted only here.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' \
                       data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How the console and the setup page are reached and what they show.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The admin token, which signs operators in.
    pub admin_token: String,
    /// Whether the listeners serve HTTPS (cookies are then `Secure`).
    pub https: bool,
    /// Scheme and authority the SCIM listener is reached at (`public-url`, else its address):
    /// the SCIM base URL shown and the base of setup links.
    pub public_url: String,
    /// Scheme and authority the admin listener is reached at (`admin-public-url`): the origin
    /// forms must come from; unset, the request's `Host`.
    pub admin_public_url: Option<String>,
}

/// Everything a console handler needs.
#[derive(Clone)]
pub(crate) struct Ctx {
    backend: Arc<dyn Backend>,
    runtime: Runtime,
    key: SessionKey,
    secure: bool,
    public_url: String,
    admin_origin: Option<String>,
    webhooks: Option<Webhooks>,
}

impl Ctx {
    fn new(
        backend: Arc<dyn Backend>,
        runtime: Runtime,
        webhooks: Option<Webhooks>,
        config: &ConsoleConfig,
    ) -> Ctx {
        let admin_origin = config
            .admin_public_url
            .as_deref()
            .map(|u| origin_of(u).to_string());
        let secure = config.https
            || admin_origin
                .as_deref()
                .is_some_and(|o| o.starts_with("https://"));
        Ctx {
            backend,
            runtime,
            key: SessionKey::for_admin_token(&config.admin_token),
            secure,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            admin_origin,
            webhooks,
        }
    }

    /// The SCIM base URL customers configure in their identity provider.
    fn scim_url(&self) -> String {
        format!("{}/scim/v2", self.public_url)
    }
}

/// `scheme://authority` of a URL (the URL itself if it has no path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The console's routes, to merge into the admin listener's router (next to `/admin`).
pub fn router(
    backend: Arc<dyn Backend>,
    runtime: Runtime,
    webhooks: Option<Webhooks>,
    config: &ConsoleConfig,
) -> Router {
    let ctx = Ctx::new(backend, runtime, webhooks, config);
    Router::new()
        .route("/", get(tenants::home))
        .route("/sign-in", post(tenants::sign_in))
        .route("/sign-out", post(tenants::sign_out))
        .route("/tenants", post(tenants::create))
        .route("/tenants/{tenant}", get(tenant::show))
        .route("/tenants/{tenant}/tokens", post(tenant::generate_token))
        .route(
            "/tenants/{tenant}/tokens/{id}/revoke",
            post(tenant::revoke_token),
        )
        .route(
            "/tenants/{tenant}/default-team",
            post(tenant::save_default_team),
        )
        .route("/tenants/{tenant}/teams", post(tenant::create_team))
        .route(
            "/tenants/{tenant}/setup-links",
            post(tenant::create_setup_link),
        )
        .route(
            "/tenants/{tenant}/setup-links/{id}/revoke",
            post(tenant::revoke_setup_link),
        )
        .route("/tenants/{tenant}/users", get(users::show))
        .route("/tenants/{tenant}/activity", get(activity::show))
        .route("/tenants/{tenant}/webhooks", get(activity::webhooks))
        .route("/tenants/{tenant}/guide/{idp}", get(guides::show))
        .merge(asset_routes("/assets"))
        .route(
            "/favicon.ico",
            get(|| async { see_other("/assets/icon.svg") }),
        )
        .layer(middleware::from_fn(security_headers))
        .with_state(ctx)
}

/// The embedded stylesheet and script under `prefix`.
fn asset_routes(prefix: &str) -> Router<Ctx> {
    const CSS: &str = include_str!("assets/console.css");
    const JS: &str = include_str!("assets/copy.js");
    const ICON: &str = include_str!("assets/icon.svg");
    Router::new()
        .route(
            &format!("{prefix}/icon.svg"),
            get(|| async { ([(header::CONTENT_TYPE, "image/svg+xml")], ICON) }),
        )
        .route(
            &format!("{prefix}/console.css"),
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
        )
        .route(
            &format!("{prefix}/copy.js"),
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    JS,
                )
            }),
        )
}

/// Headers of every console and setup response: the CSP, no sniffing, the referrer only to
/// this origin (a setup link must not leak through `Referer`; `no-referrer` would make
/// browsers send `Origin: null` with the forms), not cached.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// An HTML page with a status.
fn html(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

/// 303 to `to`.
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// A submitted form's fields.
type Form = HashMap<String, String>;

fn parse_form(body: &[u8]) -> Form {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Whether a POST comes from the console's own pages: `Origin` (or, without it,
/// `Sec-Fetch-Site`) must name this origin. Clients sending neither (scripts) rely on the
/// CSRF token alone.
fn same_origin(ctx_origin: Option<&str>, secure: bool, headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let expected = match ctx_origin {
            Some(o) => o.to_string(),
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                format!("{}://{host}", if secure { "https" } else { "http" })
            }
        };
        return origin.eq_ignore_ascii_case(&expected);
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

/// The 403 page of a form that is not this session's.
fn form_refused(signed_in: bool) -> Response {
    html(
        StatusCode::FORBIDDEN,
        layout::message_page(
            "Form refused",
            "This form was not sent from this console's own page in your current session (it \
             may have expired), so nothing was changed. Go back, reload the page and try again.",
            signed_in,
        ),
    )
}

/// The signed-in session of a page request; otherwise the sign-in page is where to go.
fn page_session(ctx: &Ctx, headers: &HeaderMap) -> Result<Session, Response> {
    match Session::from_headers(headers, &ctx.key) {
        Some(s) if s.signed_in => Ok(s),
        _ => Err(see_other("/")),
    }
}

/// The signed-in session and fields of a state-changing form, or its 403 page.
fn posted_form(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<(Session, Form), Response> {
    let session = Session::from_headers(headers, &ctx.key);
    let signed_in = session.as_ref().is_some_and(|s| s.signed_in);
    let form = parse_form(body);
    let csrf = form.get("csrf").map(String::as_str).unwrap_or_default();
    match session {
        Some(s)
            if s.signed_in
                && s.csrf_ok(&ctx.key, csrf)
                && same_origin(ctx.admin_origin.as_deref(), ctx.secure, headers) =>
        {
            Ok((s, form))
        }
        _ => Err(form_refused(signed_in)),
    }
}

/// Runs blocking store or component work off the async workers.
async fn blocking<T, F>(ctx: &Ctx, op: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&Arc<dyn Backend>, &Runtime) -> Result<T, TenantError> + Send + 'static,
{
    let (backend, runtime) = (ctx.backend.clone(), ctx.runtime.clone());
    match tokio::task::spawn_blocking(move || op(&backend, &runtime)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error_page(&e)),
        Err(_) => Err(error_page(&TenantError::Component(
            "the operation failed".into(),
        ))),
    }
}

/// The page of a failed operation.
fn error_page(e: &TenantError) -> Response {
    let (status, title) = match e {
        TenantError::NoSuchTenant(_)
        | TenantError::NoSuchToken { .. }
        | TenantError::NoSuchLink { .. } => (StatusCode::NOT_FOUND, "Not found"),
        TenantError::AlreadyExists(_) => (StatusCode::CONFLICT, "Already exists"),
        TenantError::Invalid(_) | TenantError::InvalidPolicy(_) => {
            (StatusCode::BAD_REQUEST, "Not accepted")
        }
        TenantError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable"),
        TenantError::Component(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    };
    html(status, layout::message_page(title, &e.to_string(), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_to_the_configured_or_the_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(None, false, &h), "scripts send neither header");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9001"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9001"),
        );
        assert!(same_origin(None, false, &h));
        assert!(!same_origin(None, true, &h));
        assert!(!same_origin(Some("https://admin.example.com"), false, &h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://admin.example.com"),
        );
        assert!(same_origin(Some("https://admin.example.com"), false, &h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(None, false, &h));
        assert_eq!(
            origin_of("https://a.example.com/console"),
            "https://a.example.com"
        );
        assert_eq!(origin_of("http://a:8080"), "http://a:8080");
    }
}
