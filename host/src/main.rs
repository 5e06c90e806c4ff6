//! The `scimlet` binary: `serve`, `tenant …`, `config check`, `precompile`.

mod check;
mod data_dir;
mod directory;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::{Control, Handle};
use clap::{Args, Parser, Subcommand};
use scimlet::config::{Layer, LogFormat, Settings, StoreKind};
use scimlet::http::connections::{ConnectionLimits, LimitedAcceptor};
use scimlet::metrics::{Metrics, CONTENT_TYPE};
use scimlet::runtime::{Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::memory::MemoryBackend;
use scimlet::store::Backend;
use scimlet::tenants::{self, TokenView};
use scimlet::{admin, ScimService, ServiceConfig};

#[derive(Parser)]
#[command(
    name = "scimlet",
    version,
    about = "SCIM 2.0 provisioning as a WebAssembly component"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SCIM over HTTP (or HTTPS) at ADDR/scim/v2.
    Serve(ServeArgs),
    /// Manage tenants (one per customer organization).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Check the settings of `serve`.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Verify every tenant's store: indexes, membership edges, stamps (exit 1 on a problem).
    Check {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// Manage a tenant's teams (created by the product; IdP groups link to them by name).
    Team {
        #[command(subcommand)]
        command: directory::TeamCommand,
    },
    /// Import users (with roles and team memberships) and teams from CSV or JSON lines.
    Import {
        /// Tenant name or id.
        tenant: String,
        /// A `.csv` file, or JSON lines (any other extension).
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// Export a tenant's users and teams in the import format (JSON lines, or CSV with --csv).
    Export {
        tenant: String,
        /// Write CSV instead of JSON lines.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// Print a tenant's provisioning log as JSON lines, oldest first.
    Audit {
        /// Tenant name or id.
        tenant: String,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-28T10:00:00Z) or this
        /// long ago (90s, 15m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Compile the component ahead of time into the cache directory.
    Precompile {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
}

#[derive(Args)]
pub(crate) struct DataArgs {
    /// Data directory (the SQLite store lives inside).
    #[arg(long, env = "SCIMLET_DATA", default_value = "./scimlet-data")]
    pub(crate) data: PathBuf,
}

/// Which component runs the SCIM rules: every command that needs one takes these.
#[derive(Args)]
pub(crate) struct ComponentArgs {
    /// Load this SCIM component instead of the embedded one.
    #[arg(long, env = "SCIMLET_COMPONENT")]
    component: Option<PathBuf>,
    /// Where compiled components (.cwasm) are cached [default: DATA/cache].
    #[arg(long, env = "SCIMLET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML file of settings, keys named like the flags; flags and SCIMLET_* variables win.
    #[arg(long, env = "SCIMLET_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    layer: Layer,
}

impl ServeArgs {
    /// Flags and environment over the config file over the defaults, checked.
    fn settings(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => Layer::from_file(path)?,
            None => Layer::default(),
        };
        Ok(self.layer.over(file).resolve()?)
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the settings (file, environment, flags) and print the effective ones as TOML.
    Check(ServeArgs),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its bearer token alone on the last line.
    Create {
        name: String,
        /// Policy profile (the component's: `standard` and `writer` in the embedded one).
        #[arg(long, default_value = "standard")]
        profile: String,
        /// Team every SCIM-created user joins.
        #[arg(long)]
        default_team: Option<String>,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print a tenant's effective policy as JSON (every key, profile defaults filled in).
    Show {
        /// Tenant name or id.
        tenant: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// Set one policy key; VALUE is JSON if it parses (500, true, ["a","b"]), else a string.
    Set {
        /// Tenant name or id.
        tenant: String,
        key: String,
        value: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// Manage a tenant's bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Add a bearer token; prints it alone on the last line (it is shown only now).
    Add {
        /// Tenant name or id.
        tenant: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a tenant's tokens: id, creation time, revoked (never the tokens themselves).
    List {
        /// Tenant name or id.
        tenant: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a token; requests bearing it get 401 from now on.
    Revoke {
        /// Tenant name or id.
        tenant: String,
        token_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // Every command logs (e.g. the warning about a data directory other users can read).
    match &command {
        Command::Serve(_) => {}
        _ => init_tracing(log_format_from_env()),
    }
    match command {
        Command::Serve(args) => {
            let settings = args.settings()?;
            init_tracing(settings.log_format);
            serve(settings)
        }
        Command::Config {
            command: ConfigCommand::Check(args),
        } => config_check(args),
        Command::Tenant { command } => tenant(command),
        Command::Team { command } => directory::team(command),
        Command::Audit {
            tenant,
            since,
            limit,
            data,
        } => directory::audit(&tenant, since.as_deref(), limit, &data.data),
        Command::Import {
            tenant,
            file,
            data,
            component,
        } => directory::import_file(&tenant, &file, &data.data, &component),
        Command::Export {
            tenant,
            csv,
            data,
            component,
        } => directory::export(&tenant, csv, &data.data, &component),
        Command::Check { data, component } => {
            let runtime = offline_runtime(&data.data, &component)?;
            Ok(check::run(&runtime, &data.data)?)
        }
        Command::Precompile { data, component } => {
            let started = std::time::Instant::now();
            let cache = component
                .cache_dir
                .unwrap_or_else(|| data.data.join("cache"));
            load_runtime(component.component.as_deref(), &cache, Limits::default())?;
            println!("component ready in {:?}", started.elapsed());
            Ok(())
        }
    }
}

/// Commands other than `serve` have no `--log-format`; they follow `SCIMLET_LOG_FORMAT`.
fn log_format_from_env() -> LogFormat {
    match std::env::var("SCIMLET_LOG_FORMAT") {
        Ok(f) if f == "json" => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMLET_LOG")
        .unwrap_or_else(|_| "scimlet=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The component for a command other than `serve`, with [`Limits::offline`]; call it after the
/// data directory is opened (the compiled component is cached inside).
pub(crate) fn offline_runtime(data: &Path, args: &ComponentArgs) -> anyhow::Result<Runtime> {
    let cache = args.cache_dir.clone().unwrap_or_else(|| data.join("cache"));
    load_runtime(args.component.as_deref(), &cache, Limits::offline())
}

fn load_runtime(component: Option<&Path>, cache: &Path, limits: Limits) -> anyhow::Result<Runtime> {
    let wasm = match component {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("read component {}", path.display()))?
        }
        None => EMBEDDED_COMPONENT.to_vec(),
    };
    Runtime::new(&wasm, Some(cache), limits)
}

/// `config check`: everything `serve` checks before it opens the store and listens.
fn config_check(args: ServeArgs) -> anyhow::Result<()> {
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

fn serve(settings: Settings) -> anyhow::Result<()> {
    let backend: Arc<dyn Backend> = match settings.store {
        StoreKind::Sqlite => Arc::new(data_dir::open(&settings.data)?),
        StoreKind::Memory => Arc::new(MemoryBackend::new()),
    };
    let limits = Limits {
        memory_bytes: settings.guest_memory_mib << 20,
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_listeners(settings, scim, backend))
}

/// Binds every listener, prints their URLs (the admin one first: the SCIM line ends the
/// banner) and serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
async fn run_listeners(
    settings: Settings,
    scim: ScimService,
    backend: Arc<dyn Backend>,
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
    if let (Some(addr), Some(token)) = (settings.admin_listen, &settings.admin_token) {
        let listener = bind(addr)?;
        let app = admin::router(backend, scim.runtime().clone(), token)
            .route("/metrics", metrics_route(scim.metrics()));
        println!(
            "scimlet admin API at {scheme}://{}/admin",
            listener.local_addr()?
        );
        let acceptor = LimitedAcceptor::new(limits, scim.metrics().clone());
        servers.spawn(serve_on(
            listener,
            app,
            tls.clone(),
            acceptor,
            control.clone(),
        ));
    }
    let listener = bind(settings.listen)?;
    let addr = listener.local_addr()?;
    println!("scimlet serving SCIM at {scheme}://{addr}/scim/v2");
    tracing::info!(%addr, "listening");
    let acceptor = LimitedAcceptor::new(limits, scim.metrics().clone());
    servers.spawn(serve_on(
        listener,
        scim_router(scim),
        tls,
        acceptor,
        control.clone(),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        control.graceful_shutdown(None);
    });
    while let Some(done) = servers.join_next().await {
        done.context("server task failed")??;
    }
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

/// SCIM under /scim/v2 plus the operational endpoints.
fn scim_router(scim: ScimService) -> Router {
    let probe = scim.clone();
    Router::new()
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

/// On first start with an empty store, creates tenant `default` and prints its token once.
fn ensure_default_tenant(backend: &dyn Backend, runtime: &Runtime) -> anyhow::Result<()> {
    if !backend.tenants()?.is_empty() {
        return Ok(());
    }
    let (tenant, token) = tenants::create(backend, runtime, "default", "standard", None)?;
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

fn tenant(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            name,
            profile,
            default_team,
            data,
            component,
        } => {
            let backend = data_dir::open(&data.data)?;
            let runtime = offline_runtime(&data.data, &component)?;
            let (tenant, token) =
                tenants::create(&backend, &runtime, &name, &profile, default_team.as_deref())?;
            println!(
                "Created tenant '{}' (id {}, profile {profile}). Bearer token:",
                tenant.name, tenant.id
            );
            println!("{}", token.token);
        }
        TenantCommand::List { data } => {
            let backend = data_dir::open(&data.data)?;
            println!("{:<24} {:<20} {:<10} CREATED", "NAME", "ID", "PROFILE");
            for t in backend.tenants()? {
                let view = tenants::TenantView::from(&t);
                println!(
                    "{:<24} {:<20} {:<10} {}",
                    view.name, view.id, view.profile, view.created
                );
            }
        }
        TenantCommand::Show {
            tenant,
            data,
            component,
        } => {
            let backend = data_dir::open(&data.data)?;
            let runtime = offline_runtime(&data.data, &component)?;
            let policy = tenants::effective_policy(&runtime, &tenants::find(&backend, &tenant)?)?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
        }
        TenantCommand::Set {
            tenant,
            key,
            value,
            data,
            component,
        } => {
            let backend = data_dir::open(&data.data)?;
            let runtime = offline_runtime(&data.data, &component)?;
            let found = tenants::find(&backend, &tenant)?;
            let value = tenants::parse_value(&value);
            let changes = serde_json::Map::from_iter([(key.clone(), value.clone())]);
            tenants::set_policy(&backend, &runtime, &found, changes)
                .with_context(|| format!("{key} was not changed"))?;
            println!("Set {key} = {value} for tenant '{}'.", found.name);
        }
        TenantCommand::Token { command } => token(command)?,
    }
    Ok(())
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Add { tenant, data } => {
            let backend = data_dir::open(&data.data)?;
            let found = tenants::find(&backend, &tenant)?;
            let issued = tenants::issue_token(&backend, &found.id)?;
            println!(
                "Added token {} to tenant '{}'. Bearer token (shown only now; keep it secret):",
                issued.id, found.name
            );
            println!("{}", issued.token);
        }
        TokenCommand::List { tenant, data } => {
            let backend = data_dir::open(&data.data)?;
            let found = tenants::find(&backend, &tenant)?;
            println!("{:<20} {:<22} REVOKED", "ID", "CREATED");
            for TokenView {
                id,
                created,
                revoked,
            } in tenants::tokens(&backend, &found)?
            {
                let revoked = if revoked { "yes" } else { "no" };
                println!("{id:<20} {created:<22} {revoked}");
            }
        }
        TokenCommand::Revoke {
            tenant,
            token_id,
            data,
        } => {
            let backend = data_dir::open(&data.data)?;
            let found = tenants::find(&backend, &tenant)?;
            tenants::revoke_token(&backend, &found, &token_id)?;
            println!("Revoked token {token_id} of tenant '{}'.", found.name);
        }
    }
    Ok(())
}
