//! A product embedding scimlet: it mounts `ScimService` at `/scim/v2`, keeps its own `users`
//! and `team_members` tables (its own SQLite file) up to date from the change feed, remembers
//! its cursor, and refuses sign-in to deactivated users.
//!
//! Run: `cargo run -p scimlet --example product [DATA_DIR]`, then point an identity provider
//! (or curl) at `http://127.0.0.1:3000/scim/v2` with the printed token, and try
//! `curl -d '{"userName":"ada@example.com"}' -H 'content-type: application/json'
//! http://127.0.0.1:3000/login`.

mod app;

use std::path::PathBuf;
use std::sync::Arc;

use scimlet::runtime::{Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::Backend;
use scimlet::{tenants, ScimService, ServiceConfig};

const TENANT: &str = "acme";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = PathBuf::from(std::env::args().nth(1).unwrap_or("product-data".into()));
    scimlet::private_files::create_dir(&data)?;
    // scimlet's store and the product's own database, side by side.
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&data.join("scimlet.db"))?);
    let product = Arc::new(app::Product::open(&data.join("product.db"), TENANT)?);
    let runtime = Runtime::new(
        EMBEDDED_COMPONENT,
        Some(&data.join("cache")),
        Limits::default(),
    )?;
    if backend.tenant(TENANT)?.is_none() {
        let (_, token) = tenants::create(backend.as_ref(), &runtime, TENANT, "standard", None)?;
        println!("tenant '{TENANT}' token: {}", token.token);
    }
    let scim = ScimService::new(runtime, backend, ServiceConfig::default());
    let known = product.snapshot()?;
    println!(
        "product: {} users, {} teams; following the feed after {:?}",
        known.users.len(),
        known.teams.len(),
        product.cursor()?.map(|c| c.to_string())
    );

    // The feed, from the cursor stored with the last changes applied.
    let follower = tokio::spawn(product.clone().follow(scim.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    tokio::select! {
        served = axum::serve(listener, app::router(product.clone(), scim)) => served?,
        followed = follower => followed??,
    }
    Ok(())
}
