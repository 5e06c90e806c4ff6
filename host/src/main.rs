//! The `scimlet` binary: `serve`, `tenant …`, `precompile`.

mod check;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use scimlet::runtime::{Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::memory::MemoryBackend;
use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::Backend;
use scimlet::{tenants, ScimService, ServiceConfig};

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
    /// Serve SCIM over HTTP at http://ADDR/scim/v2.
    Serve(ServeArgs),
    /// Manage tenants (one per customer organization).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Verify every tenant's store: indexes, membership edges, stamps (exit 1 on a problem).
    Check {
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
struct DataArgs {
    /// Data directory (the SQLite store lives inside).
    #[arg(long, env = "SCIMLET_DATA", default_value = "./scimlet-data")]
    data: PathBuf,
}

#[derive(Args)]
struct ComponentArgs {
    /// Load this SCIM component instead of the embedded one.
    #[arg(long, env = "SCIMLET_COMPONENT")]
    component: Option<PathBuf>,
    /// Where compiled components (.cwasm) are cached [default: DATA/cache].
    #[arg(long, env = "SCIMLET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    Sqlite,
    Memory,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SCIMLET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    component: ComponentArgs,
    /// Storage backend.
    #[arg(long, value_enum, env = "SCIMLET_STORE", default_value = "sqlite")]
    store: StoreKind,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SCIMLET_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Requests served at once; beyond it clients get 503 with Retry-After.
    #[arg(long, env = "SCIMLET_MAX_CONCURRENCY", default_value_t = 64)]
    max_concurrency: usize,
    /// Guest memory cap per request, in MiB.
    #[arg(long, env = "SCIMLET_GUEST_MEMORY_MIB", default_value_t = 64)]
    guest_memory_mib: usize,
    /// Guest CPU deadline per request, in milliseconds.
    #[arg(long, env = "SCIMLET_GUEST_DEADLINE_MS", default_value_t = 5000)]
    guest_deadline_ms: u64,
    /// Public base URL (e.g. https://scim.example.com) for Location headers; default: from Host.
    #[arg(long, env = "SCIMLET_PUBLIC_URL")]
    public_url: Option<String>,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its bearer token alone on the last line.
    Create {
        name: String,
        /// Policy profile.
        #[arg(long, default_value = "standard", value_parser = ["standard", "writer"])]
        profile: String,
        /// Team every SCIM-created user joins.
        #[arg(long)]
        default_team: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

fn main() -> anyhow::Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Tenant { command } => tenant(command),
        Command::Check { data } => Ok(check::run(&data.data)?),
        Command::Precompile { data, component } => {
            let started = std::time::Instant::now();
            load_runtime(&data, &component, Limits::default())?;
            println!("component ready in {:?}", started.elapsed());
            Ok(())
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMLET_LOG")
        .unwrap_or_else(|_| "scimlet=info".into());
    let json = std::env::var("SCIMLET_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn open_sqlite(data: &Path) -> anyhow::Result<SqliteBackend> {
    std::fs::create_dir_all(data).with_context(|| format!("create data dir {}", data.display()))?;
    let db = data.join("scimlet.db");
    SqliteBackend::open(&db).with_context(|| format!("open {}", db.display()))
}

fn load_runtime(
    data: &DataArgs,
    component: &ComponentArgs,
    limits: Limits,
) -> anyhow::Result<Runtime> {
    let wasm = match &component.component {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("read component {}", path.display()))?
        }
        None => EMBEDDED_COMPONENT.to_vec(),
    };
    let cache = component
        .cache_dir
        .clone()
        .unwrap_or_else(|| data.data.join("cache"));
    Runtime::new(&wasm, Some(&cache), limits)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let backend: Arc<dyn Backend> = match args.store {
        StoreKind::Sqlite => Arc::new(open_sqlite(&args.data.data)?),
        StoreKind::Memory => Arc::new(MemoryBackend::new()),
    };
    ensure_default_tenant(backend.as_ref())?;
    let limits = Limits {
        memory_bytes: args.guest_memory_mib << 20,
        cpu_deadline: Duration::from_millis(args.guest_deadline_ms),
        ..Limits::default()
    };
    let runtime = load_runtime(&args.data, &args.component, limits)?;
    let config = ServiceConfig {
        max_body_bytes: args.max_body_bytes,
        max_concurrency: args.max_concurrency,
        public_url: args.public_url.clone(),
        ..ServiceConfig::default()
    };
    let scim = ScimService::new(runtime, backend, config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .fallback_service(scim);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("scimlet serving SCIM at http://{addr}/scim/v2");
        tracing::info!(%addr, "listening");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        anyhow::Ok(())
    })
}

/// On first start with an empty store, creates tenant `default` and prints its token once.
fn ensure_default_tenant(backend: &dyn Backend) -> anyhow::Result<()> {
    if !backend.tenants()?.is_empty() {
        return Ok(());
    }
    let (tenant, token) = tenants::create(backend, "default", "standard", None)?;
    println!(
        "Created tenant '{}'. Its bearer token (shown only now; keep it secret):",
        tenant.name
    );
    println!("{token}");
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
        } => {
            let backend = open_sqlite(&data.data)?;
            let (tenant, token) =
                match tenants::create(&backend, &name, &profile, default_team.as_deref()) {
                    Ok(created) => created,
                    Err(scimlet::store::StoreError::AlreadyExists(_)) => {
                        bail!("tenant '{name}' already exists")
                    }
                    Err(e) => return Err(e.into()),
                };
            println!(
                "Created tenant '{}' (id {}, profile {profile}). Bearer token:",
                tenant.name, tenant.id
            );
            println!("{token}");
        }
        TenantCommand::List { data } => {
            let backend = open_sqlite(&data.data)?;
            println!("{:<24} {:<20} {:<10} CREATED", "NAME", "ID", "PROFILE");
            for t in backend.tenants()? {
                let profile = t
                    .policy
                    .get("profile")
                    .and_then(|p| p.as_str())
                    .unwrap_or("standard");
                println!(
                    "{:<24} {:<20} {:<10} {}",
                    t.name, t.id, profile, t.created_at
                );
            }
        }
    }
    Ok(())
}
