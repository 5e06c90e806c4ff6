//! Webhooks: each tenant's change events POSTed to the endpoints its operator registered,
//! signed the Standard Webhooks way, in order, at least once.
//!
//! [`Webhooks`] is what the CLI (`scimlet webhook …`) and the admin API do: add (the secret is
//! shown once, stored encrypted), list, remove, replay. [`delivery`] is the worker `serve`
//! runs; [`signing`], [`secrets`], [`url_policy`] and [`backoff`] are its rules.

pub mod backoff;
pub mod delivery;
pub mod secrets;
pub mod signing;
pub mod url_policy;

use std::sync::Arc;

use serde::Serialize;

use crate::events::{rfc3339_millis, BadCursor, Cursor, EventKind};
use crate::store::webhooks::{new_webhook_id, Webhook};
use crate::store::{Backend, StoreError, Tenant, WebhookStore};
use secrets::{SecretError, SecretKey};
use url_policy::{UrlError, UrlPolicy};

/// Why a webhook operation failed; the messages are meant for operators.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No tenant has this name or id.
    #[error("no tenant named '{0}' (nor with that id)")]
    NoSuchTenant(String),
    /// The tenant has no endpoint with this id.
    #[error("tenant '{tenant}' has no webhook '{id}'")]
    NoSuchWebhook {
        /// The tenant's name.
        tenant: String,
        /// The id asked for.
        id: String,
    },
    /// The URL is refused.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// An unknown event type.
    #[error("unknown event type '{0}' (known: {known})", known = known_types())]
    BadType(String),
    /// Not a cursor.
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    /// The cursor lies before what retention kept.
    #[error(
        "cursor {after} is older than the oldest event kept (retention removed every event up \
         to {horizon}): replay from {horizon} or later"
    )]
    Expired {
        /// The cursor asked for.
        after: Cursor,
        /// The newest event removed.
        horizon: Cursor,
    },
    /// The cursor lies past the tenant's newest event.
    #[error("cursor {after} is past the newest event of this tenant")]
    Ahead {
        /// The cursor asked for.
        after: Cursor,
    },
    /// The secret key is unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The backend keeps no webhooks.
    #[error("this store does not keep webhooks")]
    Unsupported,
    /// No key to seal a new secret with: on PostgreSQL it must be configured.
    #[error(
        "no webhook-secret-key is set: on PostgreSQL every host seals and opens webhook \
         secrets with one key, so set webhook-secret-key (SCIMLET_WEBHOOK_SECRET_KEY, base64 of \
         32 bytes) to the same value on every host and for `scimlet webhook add`"
    )]
    NoKey,
    /// The store failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        WebhookError::Unavailable(e.to_string())
    }
}

fn known_types() -> String {
    EventKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An endpoint as operators see it (CLI and admin API): never its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebhookView {
    /// `wh_…`.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// The event types delivered; empty: every type.
    pub types: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// Whether delivery runs.
    pub enabled: bool,
    /// Why it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The last event delivered (or skipped by `types`).
    pub cursor: Option<String>,
    /// Failed attempts at the pending event.
    pub attempts: u32,
    /// When the next attempt is due after a failure (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            types: w.types.iter().map(|k| k.name().to_string()).collect(),
            created: rfc3339_millis(w.created_at.saturating_mul(1000)),
            enabled: w.disabled.is_none(),
            disabled_reason: w.disabled.clone(),
            cursor: w.cursor.map(|c| c.to_string()),
            attempts: w.attempts,
            next_attempt: (w.attempts > 0 && w.disabled.is_none())
                .then(|| rfc3339_millis(w.next_attempt_ms)),
            last_error: w.last_error.clone(),
        }
    }
}

/// A newly added endpoint with its secret, shown only now.
#[derive(Debug, Clone, Serialize)]
pub struct AddedWebhook {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: the signing secret.
    pub secret: String,
}

/// Webhook administration over a backend. Blocking.
#[derive(Clone)]
pub struct Webhooks {
    backend: Arc<dyn Backend>,
    key: Option<SecretKey>,
    policy: UrlPolicy,
}

impl Webhooks {
    /// Endpoints of `backend`, secrets sealed with `key`, URLs checked by `policy`.
    pub fn new(backend: Arc<dyn Backend>, key: SecretKey, policy: UrlPolicy) -> Webhooks {
        Webhooks {
            backend,
            key: Some(key),
            policy,
        }
    }

    /// Endpoints of `backend` that can be listed, removed and replayed but not added (no key
    /// to seal a new secret with): a PostgreSQL host without `webhook-secret-key`.
    pub fn without_key(backend: Arc<dyn Backend>, policy: UrlPolicy) -> Webhooks {
        Webhooks {
            backend,
            key: None,
            policy,
        }
    }

    fn store(&self) -> Result<&dyn WebhookStore, WebhookError> {
        self.backend.webhooks().ok_or(WebhookError::Unsupported)
    }

    fn tenant(&self, name_or_id: &str) -> Result<Tenant, WebhookError> {
        self.backend
            .tenant(name_or_id)?
            .ok_or_else(|| WebhookError::NoSuchTenant(name_or_id.to_string()))
    }

    /// Parses `user.created,group.deleted` (empty: every type).
    pub fn parse_types(list: &str) -> Result<Vec<EventKind>, WebhookError> {
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind =
                EventKind::from_name(name).ok_or_else(|| WebhookError::BadType(name.into()))?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    /// Registers an endpoint for the tenant's events from now on; answers it with its secret.
    pub fn add(
        &self,
        tenant: &str,
        url: &str,
        types: Vec<EventKind>,
    ) -> Result<AddedWebhook, WebhookError> {
        let store = self.store()?;
        let key = self.key.as_ref().ok_or(WebhookError::NoKey)?;
        let tenant = self.tenant(tenant)?;
        let url = self.policy.check_at_add(url)?.to_string();
        let id = new_webhook_id();
        let secret = secrets::generate();
        // From now on: the events already in the feed are not this endpoint's.
        let cursor = self.backend.event_end(&tenant.id)?;
        let hook = Webhook::new(
            tenant.id.clone(),
            id.clone(),
            url,
            types,
            key.seal(&tenant.id, &id, &secret),
            crate::store::unix_now_millis() / 1000,
            cursor,
        );
        store.add_webhook(&hook)?;
        Ok(AddedWebhook {
            webhook: WebhookView::from(&hook),
            secret,
        })
    }

    /// The tenant's endpoints, oldest first.
    pub fn list(&self, tenant: &str) -> Result<Vec<WebhookView>, WebhookError> {
        let store = self.store()?;
        let tenant = self.tenant(tenant)?;
        Ok(store
            .webhooks(&tenant.id)?
            .iter()
            .map(WebhookView::from)
            .collect())
    }

    /// One endpoint.
    pub fn get(&self, tenant: &str, id: &str) -> Result<WebhookView, WebhookError> {
        let store = self.store()?;
        let tenant = self.tenant(tenant)?;
        store
            .webhook(&tenant.id, id)?
            .map(|w| WebhookView::from(&w))
            .ok_or(WebhookError::NoSuchWebhook {
                tenant: tenant.name,
                id: id.to_string(),
            })
    }

    /// Removes an endpoint: no more deliveries to it.
    pub fn remove(&self, tenant: &str, id: &str) -> Result<(), WebhookError> {
        let store = self.store()?;
        let tenant = self.tenant(tenant)?;
        store
            .remove_webhook(&tenant.id, id)
            .map_err(|e| self.not_found(e, &tenant, id))
    }

    /// Delivers again from the event after `after` (a cursor of the feed, `""` for the oldest
    /// kept), and enables the endpoint.
    pub fn replay(&self, tenant: &str, id: &str, after: &str) -> Result<WebhookView, WebhookError> {
        let store = self.store()?;
        let tenant = self.tenant(tenant)?;
        let cursor = match after {
            "" => None,
            text => Some(text.parse::<Cursor>()?),
        };
        let horizon = self.backend.event_horizon(&tenant.id)?;
        if let Some(after) = cursor {
            if let Some(horizon) = horizon.filter(|h| *h > after) {
                return Err(WebhookError::Expired { after, horizon });
            }
            let newest = self.backend.event_end(&tenant.id)?;
            if newest.is_none_or(|n| after > n) {
                return Err(WebhookError::Ahead { after });
            }
        }
        store
            .reposition_webhook(&tenant.id, id, cursor.or(horizon))
            .map_err(|e| self.not_found(e, &tenant, id))?;
        self.get(&tenant.id, id)
    }

    fn not_found(&self, e: StoreError, tenant: &Tenant, id: &str) -> WebhookError {
        match e {
            StoreError::NotFound(_) => WebhookError::NoSuchWebhook {
                tenant: tenant.name.clone(),
                id: id.to_string(),
            },
            other => other.into(),
        }
    }
}

#[cfg(test)]
mod tests;
