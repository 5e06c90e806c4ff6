//! A tenant's provisioning activity (the audit log, filtered by time and outcome, under a chart
//! of requests and errors per hour over the last 7 days, drawn as inline SVG) and its webhook
//! endpoints with their delivery state.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{page, when};
use super::tenant::{shell_of, tabs, tenant_page, Tab};
use super::{blocking, html, Ctx};
use crate::tenancy::TenantError;
use crate::usage::{self, HourCount};

/// Hours the chart covers.
const CHART_HOURS: i64 = 7 * 24;
/// Records listed at most.
const LISTED: usize = 200;

#[derive(Deserialize)]
pub(super) struct ActivityQuery {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

/// `GET /tenants/{tenant}/activity?since=24h&outcome=errors`.
pub(super) async fn show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<ActivityQuery>,
) -> Response {
    let (session, tenant) = match tenant_page(&ctx, &headers, name).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let since = query
        .since
        .as_deref()
        .filter(|s| matches!(*s, "1h" | "24h" | "7d" | "30d"))
        .unwrap_or("24h");
    let outcome = query
        .outcome
        .as_deref()
        .filter(|o| matches!(*o, "errors" | "success"))
        .unwrap_or("all");
    let (id, since_text, outcome_text) =
        (tenant.id.clone(), since.to_string(), outcome.to_string());
    let now_hour = super::layout::now() / 3600;
    let loaded = blocking(&ctx, move |b, _| {
        let from = crate::audit::parse_since(&since_text).map_err(TenantError::Invalid)?;
        let records = crate::audit::read(b.as_ref(), &id, from, 100_000)?;
        let mut kept: Vec<Value> = records
            .into_iter()
            .rev()
            .filter(|r| {
                let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
                match outcome_text.as_str() {
                    "errors" => status >= 400,
                    "success" => status < 400,
                    _ => true,
                }
            })
            .collect();
        let total = kept.len();
        kept.truncate(LISTED);
        let usage = usage::read(b.as_ref(), &id, now_hour - CHART_HOURS + 1)?;
        Ok((kept, total, usage.hours))
    })
    .await;
    let (records, total, hours) = match loaded {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let csrf = session.csrf(&ctx.key);
    let base = format!("/tenants/{}/activity", tenant.name);
    let body = html! {
        (tabs(&tenant, Tab::Activity))
        section.card aria-labelledby="chart-h" {
            h2 #chart-h { "Requests per hour, last 7 days" }
            (chart(&hours, now_hour))
        }
        section.card aria-labelledby="log-h" {
            h2 #log-h { "Provisioning log" }
            form.inline method="get" action=(base) {
                label for="since" { "Since" }
                select #since name="since" {
                    @for (v, l) in [("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days")] {
                        option value=(v) selected[v == since] { (l) }
                    }
                }
                label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    @for (v, l) in [("all", "All"), ("errors", "Errors"), ("success", "Successes")] {
                        option value=(v) selected[v == outcome] { (l) }
                    }
                }
                button.secondary type="submit" { "Filter" }
            }
            p.hint { (total) @if total == 1 { " record" } @else { " records" } @if total > LISTED { ", the newest " (LISTED) " shown" } "." }
            @if !records.is_empty() {
                div.table-wrap {
                    table {
                        thead { tr { th { "Time" } th { "Request" } th { "Status" } th { "Operation" } th.wide-only { "Client" } } }
                        tbody {
                            @for r in &records { (record_row(r)) }
                        }
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        page(&shell_of(&tenant, "Activity", &csrf), body),
    )
}

fn record_row(r: &Value) -> Markup {
    let s = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
    let op = r.get("operation").cloned().unwrap_or(Value::Null);
    let summary = match &op {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "action" | "resource" | "userName" | "displayName" | "detail" | "error"
                )
            })
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                )
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let time = s("time");
    html! {
        tr {
            td.mono { (time.get(..19).unwrap_or(&time).replace('T', " ")) }
            td.mono { (s("method")) " " (s("path")) }
            td { @if status >= 400 { span.pill.bad { (status) } } @else { span.pill.ok { (status) } } }
            td { (summary) }
            td.wide-only.muted { (s("userAgent")) }
        }
    }
}

/// Bars of requests (and, over them, errors) per hour; hours without requests stay empty.
fn chart(hours: &HashMap<i64, HourCount>, now_hour: i64) -> Markup {
    let (w, h, pad) = (840.0_f64, 160.0_f64, 24.0_f64);
    let max = hours.values().map(|c| c.requests).max().unwrap_or(0).max(1) as f64;
    let bar = w / CHART_HOURS as f64;
    let total: u64 = hours.values().map(|c| c.requests).sum();
    let errors: u64 = hours.values().map(|c| c.errors).sum();
    html! {
        div.chart {
            svg viewBox={ "0 0 " (w) " " (h + pad) } role="img" aria-label={ (total) " requests and " (errors) " errors in the last 7 days" } {
                line.axis x1="0" y1=(h) x2=(w) y2=(h) {}
                @for i in 0..CHART_HOURS {
                    @let hour = now_hour - CHART_HOURS + 1 + i;
                    @if let Some(c) = hours.get(&hour) {
                        @let x = i as f64 * bar;
                        @let rh = (c.requests as f64 / max * (h - 8.0)).max(1.0);
                        rect.req x=(format!("{x:.1}")) y=(format!("{:.1}", h - rh)) width=(format!("{:.1}", (bar - 1.0).max(1.0))) height=(format!("{rh:.1}")) {
                            title { (c.requests) " requests, " (c.errors) " errors" }
                        }
                        @if c.errors > 0 {
                            @let eh = (c.errors as f64 / max * (h - 8.0)).max(1.0);
                            rect.err x=(format!("{x:.1}")) y=(format!("{:.1}", h - eh)) width=(format!("{:.1}", (bar - 1.0).max(1.0))) height=(format!("{eh:.1}")) {}
                        }
                    }
                }
                @for d in 0..7 {
                    @let x = (d * 24) as f64 * bar;
                    text x=(format!("{:.1}", x + 2.0)) y=(h + 16.0) { (when((now_hour - CHART_HOURS + 1 + d * 24) * 3600).get(5..10).unwrap_or_default()) }
                }
            }
            div.legend {
                span { span.sw.req {} "Requests (" (total) ")" }
                span { span.sw.err {} "Errors (" (errors) ")" }
                span { "Peak " (max as u64) " per hour" }
            }
        }
    }
}

/// `GET /tenants/{tenant}/webhooks`.
pub(super) async fn webhooks(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let (session, tenant) = match tenant_page(&ctx, &headers, name).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let listed = match ctx.webhooks.clone() {
        None => Ok(None),
        Some(hooks) => {
            let id = tenant.id.clone();
            tokio::task::spawn_blocking(move || {
                hooks.list(&id).map(Some).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err("the operation failed".into()))
        }
    };
    let csrf = session.csrf(&ctx.key);
    let body = html! {
        (tabs(&tenant, Tab::Webhooks))
        section.card aria-labelledby="hooks-h" {
            h2 #hooks-h { "Webhook endpoints" }
            @match &listed {
                Err(e) => div.notice.bad role="alert" { (e) },
                Ok(None) => p.muted { "Webhooks are not served by this host." },
                Ok(Some(list)) if list.is_empty() => p.muted { "No endpoint: add one with " code { "scimlet webhook add" } " or the admin API." },
                Ok(Some(list)) => div.table-wrap {
                    table {
                        thead { tr { th { "Endpoint" } th { "Status" } th.num { "Failed attempts" } th { "Next attempt" } th { "Last error" } } }
                        tbody {
                            @for w in list {
                                tr {
                                    td.mono { (w.url) }
                                    td {
                                        @if w.enabled { span.pill.ok { "delivering" } }
                                        @else { span.pill.bad { "disabled" } " " span.muted { (w.disabled_reason.clone().unwrap_or_default()) } }
                                    }
                                    td.num { (w.attempts) }
                                    td { (w.next_attempt.clone().unwrap_or_default()) }
                                    td { (w.last_error.clone().unwrap_or_default()) }
                                }
                            }
                        }
                    }
                },
            }
        }
    };
    html(
        StatusCode::OK,
        page(&shell_of(&tenant, "Webhooks", &csrf), body),
    )
}
