//! Signing in and out, and the tenants list with its "Create tenant" form.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use subtle::ConstantTimeEq;

use super::layout::{ago, csrf_field, page, Assets, Shell};
use super::session::{clear_cookie, Session};
use super::{blocking, form_refused, html, parse_form, posted_form, same_origin, see_other, Ctx};
use crate::store::Tenant;
use crate::tenancy::{self as tenants, TenantError};
use crate::usage::{self, LastRequest};

/// `GET /`: the tenants when signed in, else the sign-in form.
pub(super) async fn home(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    match Session::from_headers(&headers, &ctx.key) {
        Some(s) if s.signed_in => list_page(&ctx, &s, None, StatusCode::OK).await,
        Some(visitor) => sign_in_page(&ctx, &visitor, None, StatusCode::OK, false),
        None => sign_in_page(&ctx, &Session::new(false), None, StatusCode::OK, true),
    }
}

fn sign_in_page(
    ctx: &Ctx,
    visitor: &Session,
    error: Option<&str>,
    status: StatusCode,
    set_cookie: bool,
) -> Response {
    let csrf = visitor.csrf(&ctx.key);
    let shell = Shell {
        title: "Sign in",
        crumbs: Vec::new(),
        csrf: None,
        assets: Assets::Console,
    };
    let body = html! {
        div.signin {
            h1 { "scimlet console" }
            div.card {
                form.stack method="post" action="/sign-in" {
                    (csrf_field(&csrf))
                    @if let Some(e) = error { div.notice.bad role="alert" { (e) } }
                    input type="text" name="username" value="admin" autocomplete="username" hidden;
                    div {
                        label for="admin-token" { "Admin token" }
                        input #admin-token type="password" name="token" required autocomplete="current-password" autofocus;
                        p.hint { "The server's admin-token setting." }
                    }
                    button type="submit" { "Sign in" }
                }
            }
        }
    };
    let mut resp = html(status, page(&shell, body));
    if set_cookie {
        if let Ok(v) = visitor.set_cookie(&ctx.key, ctx.secure).parse() {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

/// `POST /sign-in`: the admin token checked in constant time, then a fresh signed-in session.
pub(super) async fn sign_in(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let visitor = Session::from_headers(&headers, &ctx.key);
    let csrf = form.get("csrf").map(String::as_str).unwrap_or_default();
    let Some(visitor) = visitor.filter(|v| {
        v.csrf_ok(&ctx.key, csrf) && same_origin(ctx.admin_origin.as_deref(), ctx.secure, &headers)
    }) else {
        return form_refused(false);
    };
    let presented = form.get("token").map(|t| t.trim()).unwrap_or_default();
    let expected = super::session::SessionKey::for_admin_token(presented);
    if presented.is_empty() || !bool::from(expected.as_bytes().ct_eq(ctx.key.as_bytes())) {
        return sign_in_page(
            &ctx,
            &visitor,
            Some("That is not the admin token."),
            StatusCode::UNAUTHORIZED,
            false,
        );
    }
    let session = Session::new(true);
    let mut resp = see_other("/");
    if let Ok(v) = session.set_cookie(&ctx.key, ctx.secure).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /sign-out`.
pub(super) async fn sign_out(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = posted_form(&ctx, &headers, &body) {
        return refused;
    }
    let mut resp = see_other("/");
    if let Ok(v) = clear_cookie(ctx.secure).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

struct Row {
    tenant: Tenant,
    profile: String,
    last: Option<LastRequest>,
    errors_24h: u64,
    requests_24h: u64,
}

async fn list_page(
    ctx: &Ctx,
    session: &Session,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let listed = blocking(ctx, |b, rt| {
        let since = super::layout::now() / 3600 - 23;
        let mut rows = Vec::new();
        for t in b.tenants()? {
            let u = usage::read(b.as_ref(), &t.id, since)?;
            rows.push(Row {
                profile: tenants::profile_of(&t).to_string(),
                errors_24h: u.hours.values().map(|h| h.errors).sum(),
                requests_24h: u.hours.values().map(|h| h.requests).sum(),
                last: u.last,
                tenant: t,
            });
        }
        let profiles = rt.profiles().unwrap_or_else(|_| vec!["standard".into()]);
        Ok((rows, profiles))
    })
    .await;
    let (rows, profiles) = match listed {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let csrf = session.csrf(&ctx.key);
    let shell = Shell {
        title: "Tenants",
        crumbs: vec![("Tenants".into(), None)],
        csrf: Some(&csrf),
        assets: Assets::Console,
    };
    html(
        status,
        page(&shell, list_body(&rows, &profiles, &csrf, error.as_deref())),
    )
}

fn list_body(rows: &[Row], profiles: &[String], csrf: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Tenants" }
        section.card aria-labelledby="list-h" {
            h2 #list-h { "Organizations" }
            @if rows.is_empty() {
                p.muted { "No tenants yet: create the first one below." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th { "Name" } th.wide-only { "Profile" } th { "Identity provider" }
                            th.wide-only { "Last request" } th.num { "Requests 24 h" } th.num { "Errors 24 h" }
                        } }
                        tbody {
                            @for r in rows {
                                tr {
                                    td { a href={ "/tenants/" (r.tenant.name) } { (r.tenant.name) } }
                                    td.wide-only { (r.profile) }
                                    td {
                                        @match r.last.as_ref().and_then(|l| l.user_agent.as_deref()) {
                                            Some(ua) => (usage::idp_of(ua).unwrap_or("other client")),
                                            None => span.muted { "not connected" },
                                        }
                                    }
                                    td.wide-only { @match &r.last { Some(l) => (ago(l.at)), None => span.muted { "never" } } }
                                    td.num { (r.requests_24h) }
                                    td.num { @if r.errors_24h > 0 { span.pill.bad { (r.errors_24h) } } @else { "0" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="create-h" {
            h2 #create-h { "Create tenant" }
            form.stack method="post" action="/tenants" {
                (csrf_field(csrf))
                @if let Some(e) = error { div.notice.bad role="alert" { (e) } }
                div {
                    label for="tenant-name" { "Name" }
                    input #tenant-name type="text" name="name" required maxlength="64" autocomplete="off";
                    p.hint { "Letters, digits, '-' and '_'; the customer organization, e.g. acme." }
                }
                div {
                    label for="tenant-profile" { "Profile" }
                    select #tenant-profile name="profile" {
                        @for p in profiles { option value=(p) selected[p == "standard"] { (p) } }
                    }
                }
                div {
                    label for="tenant-team" { "Default team" }
                    input #tenant-team type="text" name="default-team" maxlength="200" autocomplete="off";
                    p.hint { "Optional: the team every user created over SCIM joins." }
                }
                div { button type="submit" { "Create tenant" } }
            }
        }
    }
}

/// `POST /tenants`: creates the tenant and shows its page with its first token, once.
pub(super) async fn create(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, form) = match posted_form(&ctx, &headers, &body) {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let name = field("name").unwrap_or_default();
    let profile = field("profile").unwrap_or_else(|| "standard".into());
    let team = field("default-team");
    let created = tokio::task::spawn_blocking({
        let (b, rt) = (ctx.backend.clone(), ctx.runtime.clone());
        move || tenants::create(b.as_ref(), &rt, &name, &profile, team.as_deref())
    })
    .await;
    match created {
        Ok(Ok((tenant, token))) => {
            super::tenant::render(
                &ctx,
                &session,
                tenant,
                Some(token.token),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Ok(Err(e)) => {
            let status = match e {
                TenantError::AlreadyExists(_) => StatusCode::CONFLICT,
                TenantError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            list_page(&ctx, &session, Some(e.to_string()), status).await
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
