//! The product's side of the loop: its own tables, kept up to date from scimlet's change feed,
//! and a sign-in that asks them. Shared by `main.rs` and the end-to-end test that replays the
//! identity-provider vectors through it (`tests/e2e/product.rs`).
//!
//! Delivery is at least once: after a crash between applying a page and storing the cursor a
//! page would come again, so every change is applied idempotently (upserts, `INSERT OR IGNORE`,
//! deletes) and the cursor is stored in the same transaction as the changes it covers.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use scimlet::events::{Cursor, EventKind, FeedError, FeedPage, StoredEvent};
use scimlet::{tenants, ScimService};
use serde_json::{json, Value};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY, user_name TEXT NOT NULL, active INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS teams (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS team_members (
        team_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (team_id, user_id));
    -- Where the product is in scimlet's feed: no row yet means from the beginning.
    CREATE TABLE IF NOT EXISTS feed_cursor (tenant TEXT PRIMARY KEY, cursor TEXT NOT NULL);
";

/// The product: its database and the scimlet tenant it follows.
pub struct Product {
    db: Mutex<Connection>,
    tenant: String,
}

impl Product {
    /// Opens (or creates) the product's SQLite file.
    pub fn open(path: &Path, tenant: &str) -> anyhow::Result<Product> {
        let db = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        db.execute_batch(SCHEMA)?;
        Ok(Product {
            db: Mutex::new(db),
            tenant: tenant.to_string(),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cursor of the last event applied.
    pub fn cursor(&self) -> anyhow::Result<Option<Cursor>> {
        let db = self.db();
        let text: Option<String> = db
            .query_row(
                "SELECT cursor FROM feed_cursor WHERE tenant = ?1",
                [&self.tenant],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.map(|t| t.parse()).transpose()?)
    }

    /// Applies a page and stores its cursor, in one transaction.
    pub fn apply(&self, page: &FeedPage) -> anyhow::Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        for event in &page.events {
            apply_event(&tx, event)?;
        }
        if let Some(c) = page.next_cursor {
            set_cursor(&tx, &self.tenant, Some(c))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Follows the tenant's feed in-process until an error: long polls of up to 30 s, each
    /// page applied as it comes. When the product fell further behind than scimlet keeps
    /// events, it resyncs through the SCIM lists and goes on.
    pub async fn follow(self: Arc<Self>, scim: ScimService) -> anyhow::Result<()> {
        let feed = scim.feed();
        loop {
            let after = self.cursor()?;
            let page = match feed
                .wait(&self.tenant, after, 100, Duration::from_secs(30))
                .await
            {
                Ok(page) => page,
                Err(FeedError::Expired { resume, .. }) => {
                    self.resync(&scim, resume).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if page.events.is_empty() {
                continue;
            }
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.apply(&page)).await??;
        }
    }

    /// Replaces the tables with what the SCIM lists hold and continues after `resume`, the
    /// newest event when the feed refused the old cursor: events committed while the lists are
    /// read come after it and replay harmlessly, as each carries the whole resource. The lists
    /// are read with a bearer token issued for this and revoked after.
    pub async fn resync(&self, scim: &ScimService, resume: Cursor) -> anyhow::Result<()> {
        let backend = scim.backend().clone();
        let name = self.tenant.clone();
        let (tenant, token) = tokio::task::spawn_blocking(move || {
            let tenant = tenants::find(backend.as_ref(), &name)?;
            let token = tenants::issue_token(backend.as_ref(), &tenant.id)?;
            anyhow::Ok((tenant, token))
        })
        .await??;
        let lists = async {
            let users = list_all(scim, &token.token, "/Users").await?;
            let groups = list_all(scim, &token.token, "/Groups").await?;
            anyhow::Ok((users, groups))
        }
        .await;
        let backend = scim.backend().clone();
        tokio::task::spawn_blocking(move || {
            tenants::revoke_token(backend.as_ref(), &tenant, &token.id)
        })
        .await??;
        let (users, groups) = lists?;
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute_batch("DELETE FROM team_members; DELETE FROM teams; DELETE FROM users;")?;
        for u in &users {
            upsert_user(&tx, u)?;
        }
        for g in &groups {
            upsert_team(&tx, g)?;
            for m in g["members"].as_array().into_iter().flatten() {
                add_member(&tx, str_of(g, "id"), str_of(m, "value"))?;
            }
        }
        set_cursor(&tx, &self.tenant, Some(resume))?;
        tx.commit()?;
        Ok(())
    }

    /// Whether `user_name` may sign in: known and active. SCIM user names compare
    /// case-insensitively.
    pub fn may_sign_in(&self, user_name: &str) -> anyhow::Result<Option<String>> {
        let db = self.db();
        Ok(db
            .query_row(
                "SELECT id FROM users WHERE user_name = ?1 COLLATE NOCASE AND active = 1",
                [user_name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The tables' contents, sorted: users `(id, userName, active)`, teams `(id, name)` and
    /// memberships `(team id, user id)`.
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let db = self.db();
        let mut users = Vec::new();
        let mut stmt = db.prepare("SELECT id, user_name, active FROM users ORDER BY id")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
            users.push(row?);
        }
        let mut teams = Vec::new();
        let mut stmt = db.prepare("SELECT id, name FROM teams ORDER BY id")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            teams.push(row?);
        }
        let mut members = Vec::new();
        let mut stmt = db.prepare("SELECT team_id, user_id FROM team_members ORDER BY 1, 2")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            members.push(row?);
        }
        Ok(Snapshot {
            users,
            teams,
            members,
        })
    }
}

/// What the product's tables hold (or what SCIM holds, to compare).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// `(id, userName, active)`, by id.
    pub users: Vec<(String, String, bool)>,
    /// `(id, name)`, by id.
    pub teams: Vec<(String, String)>,
    /// `(team id, user id)`, sorted.
    pub members: Vec<(String, String)>,
}

/// The product's routes: its sign-in, and SCIM mounted at `/scim/v2`.
pub fn router(product: Arc<Product>, scim: ScimService) -> Router {
    Router::new()
        .route("/login", post(login))
        .with_state(product)
        .route_service("/scim/v2/{*rest}", scim)
}

/// `POST /login {"userName"}`: 200 for an active user, 403 for a deactivated or unknown one.
async fn login(
    State(product): State<Arc<Product>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let user_name = str_of(&body, "userName").to_string();
    let found = tokio::task::spawn_blocking(move || product.may_sign_in(&user_name)).await;
    match found {
        Ok(Ok(Some(id))) => (StatusCode::OK, Json(json!({"id": id}))),
        Ok(Ok(None)) => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "unknown or deactivated user"})),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "try again"})),
        ),
    }
}

fn apply_event(tx: &Transaction, event: &StoredEvent) -> rusqlite::Result<()> {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    match event.kind {
        EventKind::UserCreated
        | EventKind::UserUpdated
        | EventKind::UserDeactivated
        | EventKind::UserReactivated => upsert_user(tx, &data),
        EventKind::UserDeleted => {
            let id = str_of(&data, "id");
            tx.execute("DELETE FROM team_members WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(())
        }
        EventKind::GroupCreated
        | EventKind::GroupLinked
        | EventKind::GroupUpdated
        | EventKind::GroupUnlinked => upsert_team(tx, &data),
        EventKind::GroupDeleted => {
            let id = str_of(&data, "id");
            tx.execute("DELETE FROM team_members WHERE team_id = ?1", [id])?;
            tx.execute("DELETE FROM teams WHERE id = ?1", [id])?;
            Ok(())
        }
        EventKind::GroupMemberAdded => add_member(
            tx,
            str_of(&data["group"], "id"),
            str_of(&data["user"], "id"),
        ),
        EventKind::GroupMemberRemoved => {
            tx.execute(
                "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2",
                [str_of(&data["group"], "id"), str_of(&data["user"], "id")],
            )?;
            Ok(())
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `active` absent counts as active, as scimlet treats it.
fn upsert_user(tx: &Transaction, user: &Value) -> rusqlite::Result<()> {
    let active = user.get("active").and_then(Value::as_bool) != Some(false);
    tx.execute(
        "INSERT INTO users(id, user_name, active) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET user_name = excluded.user_name, active = excluded.active",
        params![str_of(user, "id"), str_of(user, "userName"), active],
    )?;
    Ok(())
}

fn upsert_team(tx: &Transaction, group: &Value) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO teams(id, name) VALUES (?1, ?2)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name",
        [str_of(group, "id"), str_of(group, "displayName")],
    )?;
    Ok(())
}

fn add_member(tx: &Transaction, team: &str, user: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO team_members(team_id, user_id) VALUES (?1, ?2)",
        [team, user],
    )?;
    Ok(())
}

fn set_cursor(tx: &Transaction, tenant: &str, cursor: Option<Cursor>) -> rusqlite::Result<()> {
    match cursor {
        Some(c) => tx.execute(
            "INSERT INTO feed_cursor(tenant, cursor) VALUES (?1, ?2)
             ON CONFLICT(tenant) DO UPDATE SET cursor = excluded.cursor",
            [tenant, &c.to_string()],
        )?,
        None => tx.execute("DELETE FROM feed_cursor WHERE tenant = ?1", [tenant])?,
    };
    Ok(())
}

/// Every resource of a SCIM list, page by page, through the service in-process.
async fn list_all(scim: &ScimService, token: &str, endpoint: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    loop {
        let uri = format!("/scim/v2{endpoint}?startIndex={}&count=100", out.len() + 1);
        let req = http::Request::get(uri)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        let resp = scim.handle(req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "GET {endpoint}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: Value = serde_json::from_slice(&body)?;
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        let total = page["totalResults"].as_u64().unwrap_or(0);
        let done = resources.is_empty();
        out.extend(resources);
        if done || out.len() as u64 >= total {
            return Ok(out);
        }
    }
}
