//! Mounting scimlet inside an existing axum application, beside the app's own routes.
//!
//! Run: `cargo run -p scimlet --example gateway`, then
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/scim/v2/ServiceProviderConfig`
//! with the token it prints.

use std::sync::Arc;

use scimlet::runtime::{Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::memory::MemoryBackend;
use scimlet::{tenants, ScimService, ServiceConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let runtime = Runtime::new(EMBEDDED_COMPONENT, None, Limits::default())?;
    let (_, token) = tenants::create(
        backend.as_ref(),
        &runtime,
        "acme",
        "writer",
        Some("Everyone"),
    )?;
    println!("tenant 'acme' token: {}", token.token);

    let scim = ScimService::new(runtime, backend, ServiceConfig::default());

    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { "the product's own home page" }),
        )
        // route_service keeps the full path, which the SCIM handle resolves against its base path.
        .route_service("/scim/v2/{*rest}", scim);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
