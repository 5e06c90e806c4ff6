//! `webhook …`: a tenant's webhook endpoints (add, list, remove, replay), in the data directory
//! a running server delivers from.

use std::sync::Arc;

use clap::{Args, Subcommand};
use scimlet::store::Backend;
use scimlet::webhooks::secrets::SecretKey;
use scimlet::webhooks::url_policy::UrlPolicy;
use scimlet::webhooks::Webhooks;

use scimlet::config::StoreKind;

use super::DataArgs;

#[derive(Subcommand)]
pub(super) enum WebhookCommand {
    /// Add an endpoint; prints its id, then its signing secret alone on the last line (shown
    /// only now).
    Add {
        /// Tenant name or id.
        tenant: String,
        /// Where events are POSTed (http:// or https://).
        url: String,
        /// Deliver only these event types (comma-separated, e.g. user.created,user.deactivated)
        /// [default: every type].
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a tenant's endpoints: id, state, position, last error (never the secrets).
    List {
        /// Tenant name or id.
        tenant: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove an endpoint: no more deliveries to it.
    Remove {
        /// Tenant name or id.
        tenant: String,
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Deliver again from the event after CURSOR (a feed cursor), and enable the endpoint.
    Replay {
        /// Tenant name or id.
        tenant: String,
        id: String,
        /// Position to deliver after (`cursor` of an event; "" for the oldest event kept).
        #[arg(long)]
        after: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// The settings `webhook add` shares with `serve`.
#[derive(Args)]
pub(super) struct KeyArgs {
    /// Key encrypting webhook secrets (base64 of 32 bytes) [default: DATA/webhook-secret.key].
    #[arg(long, env = "SCIMLET_WEBHOOK_SECRET_KEY", hide_env_values = true)]
    webhook_secret_key: Option<String>,
    /// Allow URLs on loopback, private and link-local addresses.
    #[arg(long, env = "SCIMLET_WEBHOOK_ALLOW_PRIVATE", num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    webhook_allow_private: Option<bool>,
}

fn open(data: &DataArgs, keys: Option<&KeyArgs>) -> anyhow::Result<Webhooks> {
    let backend: Arc<dyn Backend> = data.open()?;
    // Only `add` seals a secret; the other commands never read one.
    let Some(k) = keys else {
        return Ok(Webhooks::without_key(backend, UrlPolicy::default()));
    };
    let policy = UrlPolicy {
        allow_private: k.webhook_allow_private.unwrap_or(false),
    };
    Ok(match (k.webhook_secret_key.as_deref(), data.store) {
        // The hosts of a database share no data directory, hence no key file.
        (None, Some(StoreKind::Postgres)) => Webhooks::without_key(backend, policy),
        (configured, _) => {
            Webhooks::new(backend, SecretKey::resolve(configured, &data.data)?, policy)
        }
    })
}

pub(super) fn webhook(command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add {
            tenant,
            url,
            types,
            keys,
            data,
        } => {
            let hooks = open(&data, Some(&keys))?;
            let types = Webhooks::parse_types(&types.join(","))?;
            let added = hooks.add(&tenant, &url, types)?;
            let w = &added.webhook;
            let types = if w.types.is_empty() {
                "every event type".to_string()
            } else {
                w.types.join(",")
            };
            println!("{}", w.id);
            println!(
                "Added webhook {} of tenant '{tenant}' to {} ({types}). Signing secret (shown only now):",
                w.id, w.url
            );
            println!("{}", added.secret);
        }
        WebhookCommand::List { tenant, data } => {
            let hooks = open(&data, None)?;
            println!(
                "{:<20} {:<9} {:<24} {:<8} URL / LAST ERROR",
                "ID", "STATE", "CURSOR", "ATTEMPTS"
            );
            for w in hooks.list(&tenant)? {
                let state = if w.enabled { "enabled" } else { "disabled" };
                println!(
                    "{:<20} {:<9} {:<24} {:<8} {}",
                    w.id,
                    state,
                    w.cursor.as_deref().unwrap_or("-"),
                    w.attempts,
                    w.url
                );
                if let Some(why) = w.disabled_reason.as_ref().or(w.last_error.as_ref()) {
                    println!("{:<63} {why}", "");
                }
            }
        }
        WebhookCommand::Remove { tenant, id, data } => {
            open(&data, None)?.remove(&tenant, &id)?;
            println!("Removed webhook {id}");
        }
        WebhookCommand::Replay {
            tenant,
            id,
            after,
            data,
        } => {
            let w = open(&data, None)?.replay(&tenant, &id, &after)?;
            println!(
                "Webhook {} delivers again after cursor {}",
                w.id,
                w.cursor.as_deref().unwrap_or("(the oldest event kept)")
            );
        }
    }
    Ok(())
}
