//! The `scimlet` command line: its clap types and the dispatch of each command to its module
//! (`serve` and `config check` in [`serve`], `tenant …` in [`tenant`], `team`, `import`,
//! `export` and `audit` in [`directory`], `check` in [`check`], `events` in [`events`],
//! `copy` in [`copy`]; `migrate` here).

mod check;
mod copy;
mod data_dir;
mod directory;
mod events;
mod serve;
mod tenant;
mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use scimlet::config::{Layer, LogFormat, Settings, StoreKind};
use scimlet::runtime::{Limits, Runtime, EMBEDDED_COMPONENT};
use scimlet::store::postgres::PgOptions;
use scimlet::store::Backend;

use tenant::TenantCommand;

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
    /// Print a tenant's change events as JSON lines, in feed order.
    Events {
        /// Tenant name or id.
        tenant: String,
        /// Only events after this cursor (an event's `cursor`); default: from the oldest kept.
        #[arg(long)]
        after: Option<String>,
        /// At most this many events in all.
        #[arg(long)]
        limit: Option<u64>,
        /// Keep printing new events as they are committed, until interrupted.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Copy a whole deployment (tenants, tokens, data, audit log, events) between a data
    /// directory and PostgreSQL, into an empty target, then check the target.
    Copy(copy::CopyArgs),
    /// Create or upgrade the PostgreSQL schema ahead of starting the hosts (they also do it on
    /// start), then exit.
    Migrate {
        /// PostgreSQL connection URL.
        #[arg(long, env = "SCIMLET_DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Manage a tenant's webhook endpoints (its change events POSTed, signed, in order).
    Webhook {
        #[command(subcommand)]
        command: webhook::WebhookCommand,
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
    /// Storage backend: sqlite (in the data directory) or postgres (--database-url)
    /// [default: sqlite].
    #[arg(long, value_enum, env = "SCIMLET_STORE")]
    pub(crate) store: Option<StoreKind>,
    /// PostgreSQL connection URL of --store postgres.
    #[arg(long, env = "SCIMLET_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
}

impl DataArgs {
    /// The store these arguments select; the memory store exists only inside `serve`.
    pub(crate) fn open(&self) -> anyhow::Result<Arc<dyn Backend>> {
        let kind = self.store.unwrap_or(StoreKind::Sqlite);
        if kind == StoreKind::Memory {
            anyhow::bail!(
                "--store memory lives inside one `scimlet serve` process; \
                 this command needs sqlite or postgres"
            );
        }
        let url = self.database_url.as_deref();
        data_dir::open_store(kind, &self.data, url, PgOptions::default())
    }
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

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
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
            serve::serve(settings)
        }
        Command::Config {
            command: ConfigCommand::Check(args),
        } => serve::config_check(args),
        Command::Tenant { command } => tenant::tenant(command),
        Command::Webhook { command } => webhook::webhook(command),
        Command::Team { command } => directory::team(command),
        Command::Audit {
            tenant,
            since,
            limit,
            data,
        } => directory::audit(&tenant, since.as_deref(), limit, &data),
        Command::Events {
            tenant,
            after,
            limit,
            follow,
            data,
        } => events::events(&tenant, after.as_deref(), limit, follow, &data),
        Command::Import {
            tenant,
            file,
            data,
            component,
        } => directory::import_file(&tenant, &file, &data, &component),
        Command::Export {
            tenant,
            csv,
            data,
            component,
        } => directory::export(&tenant, csv, &data, &component),
        Command::Check { data, component } => {
            let runtime = offline_runtime(&data.data, &component)?;
            Ok(check::run(&runtime, &data)?)
        }
        Command::Copy(args) => copy::copy(&args),
        Command::Migrate { database_url } => {
            let version = scimlet::store::postgres::migrate(&database_url, PgOptions::default())
                .context("migrate the PostgreSQL schema")?;
            println!("PostgreSQL schema is at version {version}");
            Ok(())
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
