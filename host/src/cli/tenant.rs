//! `tenant …`: create, list, show and set a tenant's policy, and manage its bearer tokens.

use anyhow::Context;
use clap::Subcommand;
use scimlet::tenancy::{self as tenants, setup_links, TokenView};

use super::{offline_runtime, ComponentArgs, DataArgs};

#[derive(Subcommand)]
pub(super) enum TenantCommand {
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
    /// Make a self-serve setup link for the customer's IT administrator (a page with this
    /// tenant's SCIM settings and the identity provider steps); prints the URL alone on the last
    /// line. With --list, lists the tenant's links; with --revoke ID, revokes one.
    SetupLink {
        /// Tenant name or id.
        tenant: String,
        /// How long the link is valid (e.g. 72h, 30m, 7d; at most 30 days).
        #[arg(long, default_value = "72h")]
        expires: String,
        /// Public base URL of the SCIM listener (the server's public-url).
        #[arg(
            long,
            env = "SCIMLET_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
        /// List the tenant's links (id, created, expires, state) instead.
        #[arg(long, conflicts_with = "revoke")]
        list: bool,
        /// Revoke the link with this id instead.
        #[arg(long, value_name = "ID")]
        revoke: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage a tenant's bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
pub(super) enum TokenCommand {
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

pub(super) fn tenant(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            name,
            profile,
            default_team,
            data,
            component,
        } => {
            let backend = data.open()?;
            let runtime = offline_runtime(&data.data, &component)?;
            let (tenant, token) = tenants::create(
                backend.as_ref(),
                &runtime,
                &name,
                &profile,
                default_team.as_deref(),
            )?;
            println!(
                "Created tenant '{}' (id {}, profile {profile}). Bearer token:",
                tenant.name, tenant.id
            );
            println!("{}", token.token);
        }
        TenantCommand::List { data } => {
            let backend = data.open()?;
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
            let backend = data.open()?;
            let runtime = offline_runtime(&data.data, &component)?;
            let policy =
                tenants::effective_policy(&runtime, &tenants::find(backend.as_ref(), &tenant)?)?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
        }
        TenantCommand::Set {
            tenant,
            key,
            value,
            data,
            component,
        } => {
            let backend = data.open()?;
            let runtime = offline_runtime(&data.data, &component)?;
            let found = tenants::find(backend.as_ref(), &tenant)?;
            let value = tenants::parse_value(&value);
            let changes = serde_json::Map::from_iter([(key.clone(), value.clone())]);
            tenants::set_policy(backend.as_ref(), &runtime, &found, changes)
                .with_context(|| format!("{key} was not changed"))?;
            println!("Set {key} = {value} for tenant '{}'.", found.name);
        }
        TenantCommand::Token { command } => token(command)?,
        TenantCommand::SetupLink {
            tenant,
            expires,
            public_url,
            list,
            revoke,
            data,
        } => {
            let backend = data.open()?;
            let found = tenants::find(backend.as_ref(), &tenant)?;
            if list {
                println!("{:<20} {:<22} {:<22} STATE", "ID", "CREATED", "EXPIRES");
                let now = scimlet::store::unix_now();
                for l in setup_links::list(backend.as_ref(), &found)? {
                    let state = match (l.revoked, l.expires_at <= now) {
                        (true, _) => "revoked",
                        (false, true) => "expired",
                        (false, false) => "valid",
                    };
                    println!("{:<20} {:<22} {:<22} {state}", l.id, l.created, l.expires);
                }
            } else if let Some(id) = revoke {
                setup_links::revoke(backend.as_ref(), &found, &id)?;
                println!("Revoked setup link {id} of tenant '{}'.", found.name);
            } else {
                if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
                    anyhow::bail!("--public-url must start with http:// or https://");
                }
                let valid_for = setup_links::parse_expiry(&expires)?;
                let link = setup_links::create(backend.as_ref(), &found, valid_for, &public_url)?;
                println!(
                    "Setup link {} for tenant '{}', valid until {} (revoke with --revoke {}):",
                    link.link.id, found.name, link.link.expires, link.link.id
                );
                println!("{}", link.url);
            }
        }
    }
    Ok(())
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Add { tenant, data } => {
            let backend = data.open()?;
            let found = tenants::find(backend.as_ref(), &tenant)?;
            let issued = tenants::issue_token(backend.as_ref(), &found.id)?;
            println!(
                "Added token {} to tenant '{}'. Bearer token (shown only now; keep it secret):",
                issued.id, found.name
            );
            println!("{}", issued.token);
        }
        TokenCommand::List { tenant, data } => {
            let backend = data.open()?;
            let found = tenants::find(backend.as_ref(), &tenant)?;
            println!("{:<20} {:<22} REVOKED", "ID", "CREATED");
            for TokenView {
                id,
                created,
                revoked,
            } in tenants::tokens(backend.as_ref(), &found)?
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
            let backend = data.open()?;
            let found = tenants::find(backend.as_ref(), &tenant)?;
            tenants::revoke_token(backend.as_ref(), &found, &token_id)?;
            println!("Revoked token {token_id} of tenant '{}'.", found.name);
        }
    }
    Ok(())
}
