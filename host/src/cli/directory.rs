//! The `team`, `import` and `export` subcommands: the product's own view of its directory.

use std::io::{IsTerminal, Write};
use std::path::Path;

use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use scimlet::import::{self, Format};
use scimlet::runtime::Runtime;
use scimlet::store::{Backend, Tenant};

use super::{offline_runtime, ComponentArgs, DataArgs};

#[derive(Subcommand)]
pub enum TeamCommand {
    /// Create a team in the product (identity providers can then link a group to it by name).
    Create {
        /// Tenant name or id.
        tenant: String,
        /// Team name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
    /// List a tenant's teams: name, id, whether an IdP group is linked, member count.
    List {
        tenant: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        component: ComponentArgs,
    },
}

/// The store of `data`, the component, and the tenant named `name` in that store.
fn open_tenant(
    data: &DataArgs,
    component: &ComponentArgs,
    name: &str,
) -> anyhow::Result<(Arc<dyn Backend>, Runtime, Tenant)> {
    let backend = data.open()?;
    let runtime = offline_runtime(&data.data, component)?;
    let tenant = tenant(backend.as_ref(), name)?;
    Ok((backend, runtime, tenant))
}

fn tenant(backend: &dyn Backend, name: &str) -> anyhow::Result<Tenant> {
    match backend.tenant(name)? {
        Some(t) => Ok(t),
        None => bail!("no tenant '{name}' (see `scimlet tenant list`)"),
    }
}

pub fn team(command: TeamCommand) -> anyhow::Result<()> {
    match command {
        TeamCommand::Create {
            tenant: t,
            name,
            data,
            component,
        } => {
            let (backend, runtime, tenant) = open_tenant(&data, &component, &t)?;
            let request_id = format!("cli-{:016x}", rand::random::<u64>());
            let team = runtime.create_team(&backend, &tenant, &name, &request_id)?;
            println!(
                "Created team '{}' (id {}) in tenant '{}'.",
                team.name, team.id, tenant.name
            );
        }
        TeamCommand::List {
            tenant: t,
            data,
            component,
        } => {
            let (backend, runtime, tenant) = open_tenant(&data, &component, &t)?;
            println!("{:<32} {:<38} {:<7} MEMBERS", "NAME", "ID", "LINKED");
            for team in runtime.list_teams(&backend, &tenant)? {
                println!(
                    "{:<32} {:<38} {:<7} {}",
                    team.name,
                    team.id,
                    if team.linked { "yes" } else { "no" },
                    team.members
                );
            }
        }
    }
    Ok(())
}

/// `scimlet import TENANT FILE`: exits non-zero if any row failed (after importing the rest).
pub fn import_file(
    tenant_name: &str,
    file: &Path,
    data: &DataArgs,
    component: &ComponentArgs,
) -> anyhow::Result<()> {
    let (backend, runtime, tenant) = open_tenant(data, component, tenant_name)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = std::time::Instant::now();
    let report = import::import_file(&runtime, &backend, &tenant, file, |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for (line, why) in &report.failed {
        eprintln!("{}:{line}: {why}", file.display());
    }
    let rows = report.created + report.updated + report.unchanged;
    println!(
        "imported {rows} rows into '{}' in {:.2?}: {} created, {} updated, {} unchanged, {} failed",
        tenant.name,
        started.elapsed(),
        report.created,
        report.updated,
        report.unchanged,
        report.failed.len()
    );
    if !report.failed.is_empty() {
        bail!(
            "{} rows were not imported (listed above with their line numbers)",
            report.failed.len()
        );
    }
    Ok(())
}

/// `scimlet export TENANT`: JSON lines (or CSV) on stdout, the format `import` reads.
pub fn export(
    tenant_name: &str,
    csv: bool,
    data: &DataArgs,
    component: &ComponentArgs,
) -> anyhow::Result<()> {
    let (backend, runtime, tenant) = open_tenant(data, component, tenant_name)?;
    let format = if csv { Format::Csv } else { Format::JsonLines };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    import::export(&runtime, &backend, &tenant, format, &mut out)?;
    Ok(())
}

/// `scimlet audit TENANT [--since …]`: the provisioning log as JSON lines.
pub fn audit(
    tenant_name: &str,
    since: Option<&str>,
    limit: u32,
    data: &DataArgs,
) -> anyhow::Result<()> {
    let backend = data.open()?;
    let tenant = tenant(backend.as_ref(), tenant_name)?;
    let since = match since {
        Some(s) => scimlet::audit::parse_since(s).map_err(anyhow::Error::msg)?,
        None => 0,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for record in scimlet::audit::read(backend.as_ref(), &tenant.id, since, limit)? {
        writeln!(out, "{record}")?;
    }
    Ok(())
}
