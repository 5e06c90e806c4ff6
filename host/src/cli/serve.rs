//! `serve` and `config check`: the settings checked, the store and component loaded, and the
//! SCIM and admin listeners run until a shutdown signal.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::{Control, Handle};
use scimlet::config::{Settings, StoreKind};
use scimlet::console::{self, ConsoleConfig};
use scimlet::events::retention;
use scimlet::http::connections::{ConnectionLimits, LimitedAcceptor};
use scimlet::metrics::{Metrics, CONTENT_TYPE};
use scimlet::runtime::{Limits, Runtime};
use scimlet::store::Backend;
use scimlet::tenancy::{self as tenants, admin};
use scimlet::webhooks::delivery::{Deliverer, DeliveryConfig};
use scimlet::webhooks::secrets::SecretKey;
use scimlet::webhooks::url_policy::UrlPolicy;
use scimlet::webhooks::Webhooks;
use scimlet::{ScimService, ServiceConfig};

use super::{data_dir, load_runtime, ServeArgs};

/// `config check`: everything `serve` checks before it opens the store and listens.
pub(super) fn config_check(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    if let Some((cert, key)) = tls_files(&settings) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(load_tls(cert, key))?;
    }
    print!("{}", settings.to_toml());
    eprintln!("configuration OK");
    Ok(())
}

fn tls_files(settings: &Settings) -> Option<(&Path, &Path)> {
    Some((settings.tls_cert.as_deref()?, settings.tls_key.as_deref()?))
}

async fn load_tls(cert: &Path, key: &Path) -> anyhow::Result<RustlsConfig> {
    RustlsConfig::from_pem_file(cert, key)
        .await
        .with_context(|| {
            format!(
                "load TLS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })
}

pub(super) fn serve(settings: Settings) -> anyhow::Result<()> {
    let backend = data_dir::open_store(
        settings.store,
        &settings.data,
        settings.database_url.as_deref(),
        settings.pg_options(),
    )?;
    let limits = Limits {
        memory_bytes: settings.guest_memory_mib << 20,
        large_memory_bytes: settings.guest_large_memory_mib << 20,
        cpu_deadline: Duration::from_millis(settings.guest_deadline_ms),
        warm_instances: settings.guest_warm_instances,
        ..Limits::default()
    };
    let runtime = load_runtime(settings.component.as_deref(), &settings.cache_dir, limits)?;
    ensure_default_tenant(backend.as_ref(), &runtime)?;
    let config = ServiceConfig {
        max_body_bytes: settings.max_body_bytes,
        max_large_body_bytes: settings.max_large_body_bytes,
        max_concurrency: settings.max_concurrency,
        public_url: settings.public_url.clone(),
        https: settings.tls_cert.is_some(),
        request_timeout: Duration::from_millis(settings.request_timeout_ms),
        tenant_rate_limit: settings.tenant_rate_limit,
        audit_retention: (settings.audit_retention > 0).then_some(settings.audit_retention),
        ..ServiceConfig::default()
    };
    let scim = ScimService::new(runtime, backend.clone(), config);
    let key = match (&settings.webhook_secret_key, settings.store) {
        (None, StoreKind::Memory) => Some(SecretKey::random()),
        // Each host's own key file would seal secrets the other hosts cannot open.
        (None, StoreKind::Postgres) => None,
        (configured, _) => Some(SecretKey::resolve(configured.as_deref(), &settings.data)?),
    };
    let policy = UrlPolicy {
        allow_private: settings.webhook_allow_private,
    };
    let (webhooks, deliverer) = match key {
        Some(key) => (
            Webhooks::new(backend.clone(), key.clone(), policy),
            Some(Deliverer::new(
                backend.clone(),
                key,
                policy,
                DeliveryConfig::default(),
            )?),
        ),
        None => {
            tracing::warn!(
                "webhooks are neither added nor delivered by this host: set \
                 webhook-secret-key, the same on every host of the database"
            );
            (Webhooks::without_key(backend.clone(), policy), None)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_listeners(settings, scim, backend, webhooks, deliverer))
}

/// Binds every listener, prints their URLs (the admin one first: the SCIM line ends the
/// banner) and serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
async fn run_listeners(
    settings: Settings,
    scim: ScimService,
    backend: Arc<dyn Backend>,
    webhooks: Webhooks,
    deliverer: Option<Deliverer>,
) -> anyhow::Result<()> {
    let tls = match tls_files(&settings) {
        Some((cert, key)) => Some(load_tls(cert, key).await?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
        keep_alive_timeout: Duration::from_millis(settings.keep_alive_timeout_ms),
        max_connections: settings.max_connections,
    };
    let control = Control::new();
    let mut servers = tokio::task::JoinSet::new();
    // Off the request path: on start, then hourly.
    retention::spawn_pruner(backend.clone(), settings.event_retention());
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    // Off the request path too: a slow or dead receiver never delays an IdP.
    let stop = closing.clone();
    let delivery = tokio::spawn(async move {
        if let Some(deliverer) = deliverer {
            deliverer.run(stop).await;
        }
    });
    // The SCIM listener is bound first: the console shows its URL.
    let scim_listener = bind(settings.listen)?;
    let addr = scim_listener.local_addr()?;
    let console = ConsoleConfig {
        admin_token: settings.admin_token.clone().unwrap_or_default(),
        https: tls.is_some(),
        public_url: settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}")),
        admin_public_url: settings.admin_public_url.clone(),
    };
    let setup = console::setup_router(backend.clone(), scim.runtime().clone(), &console);
    if let (Some(admin_addr), Some(token)) = (settings.admin_listen, &settings.admin_token) {
        let listener = bind(admin_addr)?;
        let app = admin::router_with(
            backend.clone(),
            scim.runtime().clone(),
            token,
            closing,
            Some(webhooks.clone()),
            console.public_url.clone(),
        )
        .merge(console::router(
            backend,
            scim.runtime().clone(),
            Some(webhooks),
            &console,
        ))
        .route("/metrics", metrics_route(scim.metrics()));
        let admin_addr = listener.local_addr()?;
        println!("scimlet admin API at {scheme}://{admin_addr}/admin");
        println!("scimlet console at {scheme}://{admin_addr}/");
        let acceptor = LimitedAcceptor::new(limits, scim.metrics().clone());
        servers.spawn(serve_on(
            listener,
            app,
            tls.clone(),
            acceptor,
            control.clone(),
        ));
    }
    println!("scimlet serving SCIM at {scheme}://{addr}/scim/v2");
    tracing::info!(%addr, "listening");
    let acceptor = LimitedAcceptor::new(limits, scim.metrics().clone());
    servers.spawn(serve_on(
        scim_listener,
        scim_router(scim, setup),
        tls,
        acceptor,
        control.clone(),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        closing_tx.send_replace(true);
        control.graceful_shutdown(None);
    });
    while let Some(done) = servers.join_next().await {
        done.context("server task failed")??;
    }
    // Attempts under way are dropped (they are delivered again later: at least once), the
    // positions reached are stored and the leases given up so another host need not wait.
    let _ = tokio::time::timeout(Duration::from_secs(5), delivery).await;
    Ok(())
}

fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("listen on {addr}"))
}

/// Serves `app` on `listener` (over TLS when configured), its connections under `acceptor`'s
/// limits, until `control` shuts it down.
async fn serve_on(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    acceptor: LimitedAcceptor,
    control: Control,
) -> anyhow::Result<()> {
    let handle = Handle::<SocketAddr>::with_control(control);
    let service = app.into_make_service();
    let server = axum_server::from_tcp(listener)?.handle(handle);
    match tls {
        Some(config) => {
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(config).acceptor(acceptor);
            server.acceptor(tls).serve(service).await?
        }
        None => server.acceptor(acceptor).serve(service).await?,
    }
    Ok(())
}

/// SCIM under /scim/v2 plus the operational endpoints, and the setup pages.
fn scim_router(scim: ScimService, setup: Router) -> Router {
    let probe = scim.clone();
    Router::new()
        .merge(setup)
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let scim = probe.clone();
                async move {
                    match scim.ready().await {
                        Ok(()) => (StatusCode::OK, "ready".to_string()),
                        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
                    }
                }
            }),
        )
        .route("/metrics", metrics_route(scim.metrics()))
        .fallback_service(scim)
}

fn metrics_route(metrics: &Metrics) -> axum::routing::MethodRouter {
    let metrics = metrics.clone();
    get(move || {
        let text = metrics.encode();
        async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response() }
    })
}

/// On first start with an empty store, creates tenant `default` and prints its token once
/// (hosts starting together on one empty database: one creates it, the others go on).
fn ensure_default_tenant(backend: &dyn Backend, runtime: &Runtime) -> anyhow::Result<()> {
    if !backend.tenants()?.is_empty() {
        return Ok(());
    }
    let (tenant, token) = match tenants::create(backend, runtime, "default", "standard", None) {
        Ok(created) => created,
        // Another host on the same database created it first: that host printed the token.
        Err(tenants::TenantError::AlreadyExists(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    println!(
        "Created tenant '{}'. Its bearer token (shown only now; keep it secret):",
        tenant.name
    );
    println!("{}", token.token);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
