//! A tenant's users: search by userName, page through, each with its teams, role and active
//! state (from the component's export, in its order).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::layout::page;
use super::tenant::{shell_of, tabs, tenant_page, Tab};
use super::{blocking, html, Ctx};
use crate::tenancy::TenantError;

/// Users per page.
const PAGE: usize = 50;

#[derive(Deserialize)]
pub(super) struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
}

/// `GET /tenants/{tenant}/users?q=&after=`.
pub(super) async fn show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<UsersQuery>,
) -> Response {
    let (session, tenant) = match tenant_page(&ctx, &headers, name).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let t = tenant.clone();
    let needle = query.q.trim().to_lowercase();
    let start = query.after.clone().filter(|a| !a.is_empty());
    let found = blocking(&ctx, move |b, rt| {
        let mut users = Vec::new();
        let mut cursor = start;
        loop {
            let want = (PAGE - users.len()) as u32;
            let page = rt
                .export_rows(b, &t, cursor.as_deref(), want.max(1))
                .map_err(TenantError::from)?;
            for row in page.rows {
                let is_user = row.get("type").and_then(Value::as_str) == Some("user");
                let name = row
                    .get("userName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase();
                if is_user && (needle.is_empty() || name.contains(&needle)) {
                    users.push(row);
                }
            }
            cursor = page.next;
            if cursor.is_none() || users.len() >= PAGE {
                break;
            }
        }
        Ok((users, cursor))
    })
    .await;
    let (users, next) = match found {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let csrf = session.csrf(&ctx.key);
    let base = format!("/tenants/{}/users", tenant.name);
    let href = |after: Option<&str>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("q", &query.q);
        if let Some(a) = after {
            q.append_pair("after", a);
        }
        format!("{base}?{}", q.finish())
    };
    let str_of = |row: &Value, k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let body = html! {
        (tabs(&tenant, Tab::Users))
        section.card aria-labelledby="users-h" {
            h2 #users-h { "Users" }
            form.inline method="get" action=(base) role="search" {
                label for="user-q" { "Search userName" }
                input #user-q type="search" name="q" value=(query.q);
                button.secondary type="submit" { "Search" }
            }
            @if users.is_empty() {
                p.muted { @if query.q.is_empty() { "No users yet: they appear here once the identity provider creates them." } @else { "No user matches." } }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th { "userName" } th.wide-only { "Name" } th { "Teams" } th { "Role" } th { "Active" } } }
                        tbody {
                            @for u in &users {
                                tr {
                                    td.mono { (str_of(u, "userName")) }
                                    td.wide-only { (str_of(u, "givenName")) " " (str_of(u, "familyName")) }
                                    td { @for t in u.get("teams").and_then(Value::as_array).into_iter().flatten() { span.pill { (t.as_str().unwrap_or_default()) } " " } }
                                    td { @match u.get("role").and_then(Value::as_str) { Some(r) => (r), None => span.muted { "—" } } }
                                    td { @if u.get("active").and_then(Value::as_bool).unwrap_or(true) { span.pill.ok { "active" } } @else { span.pill { "inactive" } } }
                                }
                            }
                        }
                    }
                }
            }
            div.pager {
                @if query.after.is_some() { a href=(href(None)) { "First page" } }
                @if let Some(n) = &next { a href=(href(Some(n))) { "Next page" } }
            }
        }
    };
    html(
        StatusCode::OK,
        page(&shell_of(&tenant, "Users", &csrf), body),
    )
}
