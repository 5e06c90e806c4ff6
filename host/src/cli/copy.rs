//! `scimlet copy --from DIR_OR_URL --to DIR_OR_URL`: moves a whole deployment between the
//! embedded store (a data directory) and PostgreSQL (a `postgres://` URL), in either direction.
//!
//! Everything is copied as it is: tenant ids, token hashes (existing bearer tokens keep
//! working), policies, every tenant's key-value entries with their versions (so ETags stay
//! valid; the audit log lives there too), and the change events at their own cursors (so feed
//! consumers continue where they were), then each tenant's commit sequence is raised past what
//! the source had handed out. Keys and events are read page by page, never all at once. The
//! target must be empty; the copy ends by running `scimlet check` on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use scimlet::events::Cursor;
use scimlet::store::postgres::{PgOptions, PostgresBackend};
use scimlet::store::{Backend, Scan, Tenant};

use super::{check, data_dir, offline_runtime, ComponentArgs};

/// Entries and events moved per read and per write.
const PAGE: u32 = 1000;
/// Past every key the component writes (keys are ASCII-prefixed paths).
const KEYS_END: &str = "\u{10FFFF}";
/// Key prefix of the audit log in a tenant's key space (`host/src/audit.rs`).
const AUDIT_PREFIX: &str = "a/";

#[derive(Args)]
pub struct CopyArgs {
    /// The deployment to copy: a data directory, or a postgres:// (postgresql://) URL.
    #[arg(long)]
    from: String,
    /// Where to copy it: an empty (or new) data directory, or a postgres:// URL of a database
    /// without scimlet tenants.
    #[arg(long)]
    to: String,
    #[command(flatten)]
    component: ComponentArgs,
}

/// One end of a copy.
enum Location {
    Dir(PathBuf),
    Postgres(String),
}

impl Location {
    fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_owned())
        } else {
            Location::Dir(PathBuf::from(s))
        }
    }

    /// Shown in messages; never the URL, which may hold a password.
    fn describe(&self) -> String {
        match self {
            Location::Dir(dir) => format!("data directory {}", dir.display()),
            Location::Postgres(_) => "PostgreSQL database".into(),
        }
    }

    fn open(&self, create: bool) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(match self {
            Location::Dir(dir) => {
                if !create && !dir.join("scimlet.db").is_file() {
                    bail!(
                        "no scimlet store at {} (expected scimlet.db inside)",
                        dir.display()
                    );
                }
                Arc::new(data_dir::open(dir)?)
            }
            Location::Postgres(url) => Arc::new(
                PostgresBackend::open(url, PgOptions::default())
                    .context("open the PostgreSQL store")?,
            ),
        })
    }
}

/// What was copied of one tenant.
#[derive(Default)]
struct Counts {
    tokens: usize,
    entries: u64,
    audit: u64,
    events: u64,
    webhooks: usize,
}

pub fn copy(args: &CopyArgs) -> anyhow::Result<()> {
    let (from, to) = (Location::parse(&args.from), Location::parse(&args.to));
    let source = from.open(false)?;
    let tenants = source.tenants()?;
    if tenants.is_empty() {
        bail!(
            "the source {} has no tenants: nothing to copy",
            from.describe()
        );
    }
    let target = to.open(true)?;
    let present = target.tenants()?;
    if !present.is_empty() {
        let names: Vec<&str> = present.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "the target {} is not empty: it has {} tenant(s) ({}); copy writes a whole \
             deployment into an empty store only (a new data directory, or a database without \
             scimlet tables or tenants)",
            to.describe(),
            present.len(),
            names.join(", ")
        );
    }
    let mut total = Counts::default();
    for tenant in &tenants {
        let n = copy_tenant(source.as_ref(), target.as_ref(), tenant)?;
        println!(
            "copied tenant '{}' ({}): {} token(s), {} entries ({} audit records), {} event(s)",
            tenant.name, tenant.id, n.tokens, n.entries, n.audit, n.events
        );
        let hooks = copy_webhooks(source.as_ref(), target.as_ref(), &tenant.id)?;
        if hooks > 0 {
            println!(
                "copied {hooks} webhook endpoint(s) of tenant '{}' with their positions",
                tenant.name
            );
        }
        total.webhooks += hooks;
        total.tokens += n.tokens;
        total.entries += n.entries;
        total.audit += n.audit;
        total.events += n.events;
    }
    println!(
        "copied {} tenant(s), {} token(s), {} entries ({} audit records), {} event(s) from the {} \
         to the {}; bearer tokens, ETags and event cursors are unchanged",
        tenants.len(),
        total.tokens,
        total.entries,
        total.audit,
        total.events,
        from.describe(),
        to.describe()
    );
    if total.webhooks > 0 {
        key_note(&from, &to)?;
    }
    println!("checking the target:");
    let cache = match (&to, &from) {
        (Location::Dir(dir), _) | (_, Location::Dir(dir)) => dir.clone(),
        _ => PathBuf::from("./scimlet-data"),
    };
    let runtime = offline_runtime(Path::new(&cache), &args.component)?;
    check::check_backend(&runtime, &target)?;
    Ok(())
}

/// Moves the tenant's webhook endpoints as they are: ids, URLs, types, sealed secrets,
/// positions, failures and disabled state; no lease is held on the target, so any of its hosts
/// may claim them at once. Answers how many moved.
fn copy_webhooks(
    source: &dyn Backend,
    target: &dyn Backend,
    tenant: &str,
) -> anyhow::Result<usize> {
    let Some(from) = source.webhooks() else {
        return Ok(0);
    };
    let endpoints = from.webhooks(tenant)?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let Some(to) = target.webhooks() else {
        bail!("the target keeps no webhook endpoints");
    };
    let moved = endpoints.len();
    for mut hook in endpoints {
        hook.lease_owner = None;
        hook.lease_expiry_ms = 0;
        to.add_webhook(&hook)
            .with_context(|| format!("copy webhook {} of tenant {tenant}", hook.id))?;
    }
    Ok(moved)
}

/// The moved endpoints' secrets stay sealed with the source's key: the target's hosts must
/// open them with the same one. A data directory's generated key file is copied along into a
/// target directory that has none; otherwise the operator is told which key to configure.
fn key_note(from: &Location, to: &Location) -> anyhow::Result<()> {
    use scimlet::webhooks::secrets::KEY_FILE;
    match (from, to) {
        (Location::Dir(src), Location::Dir(dst)) if src.join(KEY_FILE).is_file() => {
            let target = dst.join(KEY_FILE);
            if !target.exists() {
                std::fs::copy(src.join(KEY_FILE), &target)
                    .with_context(|| format!("copy {}", target.display()))?;
                println!(
                    "copied the webhook secret key file to {}: the endpoints' secrets are \
                     sealed with it",
                    target.display()
                );
            }
        }
        (Location::Dir(src), _) if src.join(KEY_FILE).is_file() => println!(
            "the webhook endpoints' secrets are sealed with the source's key: run every host \
             of the target with webhook-secret-key set to the content of {} (unless the \
             source was run with a webhook-secret-key of its own: then that one)",
            src.join(KEY_FILE).display()
        ),
        _ => println!(
            "the webhook endpoints' secrets are sealed with the source's webhook-secret-key: \
             run the target's hosts with the same key"
        ),
    }
    Ok(())
}

fn copy_tenant(
    source: &dyn Backend,
    target: &dyn Backend,
    tenant: &Tenant,
) -> anyhow::Result<Counts> {
    let id = tenant.id.as_str();
    // A commit without writes answers the tenant's sequence number and changes nothing.
    let seq = source.commit(id, &[], &[])?;
    let tokens = source.stored_tokens(id)?;
    target
        .restore_tenant(tenant, &tokens)
        .with_context(|| format!("register tenant '{}' in the target", tenant.name))?;
    let mut counts = Counts {
        tokens: tokens.len(),
        ..Counts::default()
    };
    let mut start = String::new();
    loop {
        let page = source.scan(
            id,
            &Scan {
                start: start.clone(),
                end: KEYS_END.into(),
                skip: 0,
                limit: PAGE,
                descending: false,
                keys_only: false,
            },
        )?;
        let Some(last) = page.last() else { break };
        // The next key after `last` in bytewise order.
        start = format!("{}\0", last.key);
        counts.entries += page.len() as u64;
        counts.audit += page
            .iter()
            .filter(|e| e.key.starts_with(AUDIT_PREFIX))
            .count() as u64;
        target.restore_entries(id, &page)?;
    }
    let mut after: Option<Cursor> = None;
    loop {
        let page = source.events_after(id, after, PAGE as usize)?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor);
        counts.events += page.len() as u64;
        target.restore_events(id, &page)?;
    }
    if source.commit(id, &[], &[])? != seq {
        bail!(
            "tenant '{}' changed in the source while it was copied: stop every host (and \
             command) writing to the source, then copy again into an empty target",
            tenant.name
        );
    }
    target.restore_sequence(id, seq, source.event_horizon(id)?)?;
    Ok(counts)
}
