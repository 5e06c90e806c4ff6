//! `tenant …`: create, list, show and set a tenant's policy, and manage its bearer tokens.

use anyhow::Context;
use clap::Subcommand;
use scimlet::tenancy::{self as tenants, TokenView};

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
