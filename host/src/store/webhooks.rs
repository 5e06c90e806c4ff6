//! Webhook endpoints and their delivery state, per tenant: the registry the CLI and admin API
//! change, and the positions the delivery workers move.
//!
//! Several hosts may share one database. A worker delivers an endpoint only while it holds the
//! endpoint's lease: [`WebhookStore::claim_webhook`] takes it by a conditional update against
//! the database's clock (no advisory lock, no in-process lock), and every later write of the
//! worker names the lease's epoch, so a worker that lost its lease (it stalled past the expiry
//! and another host claimed the endpoint) can no longer move the position (fencing).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::events::{Cursor, EventKind};

use super::{unix_now_millis, StoreError};

/// An endpoint as stored. The secret is encrypted (see `crate::webhooks::secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The tenant's id.
    pub tenant: String,
    /// `wh_` + 16 hex characters.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event types delivered; empty means every type.
    pub types: Vec<EventKind>,
    /// The signing secret, encrypted at rest.
    pub secret: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Why delivery stopped (410 Gone, retries exhausted, events expired); `None` while enabled.
    pub disabled: Option<String>,
    /// The last event delivered (or skipped by `types`); `None`: from the oldest event kept.
    pub cursor: Option<Cursor>,
    /// Failed attempts at delivering the event after `cursor`.
    pub attempts: u32,
    /// No delivery before this time (Unix milliseconds): the back-off after a failure.
    pub next_attempt_ms: i64,
    /// The last failure, for operators; cleared by a success.
    pub last_error: Option<String>,
    /// When the pending event first failed (Unix milliseconds of the database's clock), 0 while
    /// deliveries succeed: retries stop some days after it.
    pub failing_since_ms: i64,
    /// The host holding the lease, if one ever did.
    pub lease_owner: Option<String>,
    /// When the lease ends, Unix milliseconds of the database's clock.
    pub lease_expiry_ms: i64,
    /// Bumped by every claim and by a replay: the fencing token.
    pub lease_epoch: u64,
}

impl Webhook {
    /// A new endpoint, enabled, never delivered to nor leased, starting after `cursor`.
    pub fn new(
        tenant: String,
        id: String,
        url: String,
        types: Vec<EventKind>,
        secret: Vec<u8>,
        created_at: i64,
        cursor: Option<Cursor>,
    ) -> Webhook {
        Webhook {
            tenant,
            id,
            url,
            types,
            secret,
            created_at,
            disabled: None,
            cursor,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            failing_since_ms: 0,
            lease_owner: None,
            lease_expiry_ms: 0,
            lease_epoch: 0,
        }
    }
}

/// A held lease: the endpoint it is for and the epoch that fences the holder's writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The tenant's id.
    pub tenant: String,
    /// The endpoint's id.
    pub id: String,
    /// Who holds it.
    pub owner: String,
    /// The epoch the claim set.
    pub epoch: u64,
}

/// What a failed delivery leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Failed attempts so far at the pending event.
    pub attempts: u32,
    /// How long until the next attempt.
    pub retry_in: Duration,
    /// What went wrong.
    pub error: String,
    /// `Some(reason)` stops delivery until a replay.
    pub disable: Option<String>,
}

/// Storage of webhook endpoints and their delivery state. Blocking, like [`super::Backend`].
pub trait WebhookStore: Send + Sync {
    /// Registers an endpoint; `AlreadyExists` if the tenant has one with this id.
    fn add_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// The tenant's endpoints, oldest first.
    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError>;
    /// One endpoint of the tenant.
    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<Webhook>, StoreError>;
    /// Removes an endpoint; `NotFound` if the tenant has none with this id.
    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<(), StoreError>;
    /// Moves the endpoint's position to `cursor`, enables it, forgets its failures and ends any
    /// lease (the holder is fenced out); `NotFound` if there is no such endpoint.
    fn reposition_webhook(
        &self,
        tenant: &str,
        id: &str,
        cursor: Option<Cursor>,
    ) -> Result<(), StoreError>;
    /// Endpoints of every tenant that are enabled, due and not leased (lease expired), as
    /// (tenant, id), at most `limit`.
    fn due_webhooks(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError>;
    /// Takes the endpoint's lease for `ttl` if it is enabled, due and not leased; answers the
    /// endpoint with the new lease, `None` if another holds it or it is not due.
    fn claim_webhook(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Webhook>, StoreError>;
    /// Stores the position reached (the one held, to renew only) and renews the lease for `ttl`, clearing failures; `false`
    /// (and nothing written) if the lease is no longer held.
    fn advance_webhook(
        &self,
        lease: &Lease,
        cursor: Option<Cursor>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Records a failure and ends the lease; `false` (and nothing written) if the lease is no
    /// longer held.
    fn fail_webhook(&self, lease: &Lease, failure: &Failure) -> Result<bool, StoreError>;
    /// Ends the lease so that any host may claim the endpoint at once; `false` if it was no
    /// longer held.
    fn release_webhook(&self, lease: &Lease) -> Result<bool, StoreError>;
}

/// `wh_` + 16 hex characters.
pub fn new_webhook_id() -> String {
    format!("wh_{:016x}", rand::random::<u64>())
}

/// A duration as whole milliseconds for the database.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The in-memory webhook store of [`super::memory::MemoryBackend`]: the same rules, the
/// process's clock as the database's.
#[derive(Default)]
pub struct MemoryWebhooks {
    hooks: Mutex<BTreeMap<(String, String), (u64, Webhook)>>,
    order: Mutex<u64>,
}

impl MemoryWebhooks {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<(String, String), (u64, Webhook)>) -> T) -> T {
        // Every change below is a single assignment: a panic elsewhere leaves it consistent.
        f(&mut self.hooks.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn held<'a>(
        map: &'a mut BTreeMap<(String, String), (u64, Webhook)>,
        lease: &Lease,
    ) -> Option<&'a mut Webhook> {
        let (_, w) = map.get_mut(&(lease.tenant.clone(), lease.id.clone()))?;
        (w.lease_epoch == lease.epoch
            && w.lease_owner.as_deref() == Some(lease.owner.as_str())
            && w.lease_expiry_ms > unix_now_millis())
        .then_some(w)
    }
}

fn not_found(tenant: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("webhook {id} of tenant {tenant}"))
}

impl WebhookStore for MemoryWebhooks {
    fn add_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let n = {
            let mut order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
            *order += 1;
            *order
        };
        self.with(|m| {
            let key = (webhook.tenant.clone(), webhook.id.clone());
            if m.contains_key(&key) {
                return Err(StoreError::AlreadyExists(format!("webhook {}", webhook.id)));
            }
            m.insert(key, (n, webhook.clone()));
            Ok(())
        })
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError> {
        self.with(|m| {
            let mut found: Vec<_> = m
                .values()
                .filter(|(_, w)| w.tenant == tenant)
                .cloned()
                .collect();
            found.sort_by_key(|(n, _)| *n);
            Ok(found.into_iter().map(|(_, w)| w).collect())
        })
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        self.with(|m| Ok(m.get(&(tenant.into(), id.into())).map(|(_, w)| w.clone())))
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.with(|m| {
            m.remove(&(tenant.into(), id.into()))
                .map(|_| ())
                .ok_or_else(|| not_found(tenant, id))
        })
    }

    fn reposition_webhook(
        &self,
        tenant: &str,
        id: &str,
        cursor: Option<Cursor>,
    ) -> Result<(), StoreError> {
        self.with(|m| {
            let (_, w) = m
                .get_mut(&(tenant.into(), id.into()))
                .ok_or_else(|| not_found(tenant, id))?;
            w.cursor = cursor;
            w.disabled = None;
            w.attempts = 0;
            w.next_attempt_ms = 0;
            w.last_error = None;
            w.failing_since_ms = 0;
            w.lease_expiry_ms = 0;
            w.lease_epoch += 1;
            Ok(())
        })
    }

    fn due_webhooks(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let now = unix_now_millis();
        self.with(|m| {
            Ok(m.values()
                .filter(|(_, w)| {
                    w.disabled.is_none() && w.next_attempt_ms <= now && w.lease_expiry_ms <= now
                })
                .take(limit)
                .map(|(_, w)| (w.tenant.clone(), w.id.clone()))
                .collect())
        })
    }

    fn claim_webhook(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Webhook>, StoreError> {
        let now = unix_now_millis();
        self.with(|m| {
            let Some((_, w)) = m.get_mut(&(tenant.into(), id.into())) else {
                return Ok(None);
            };
            if w.disabled.is_some() || w.next_attempt_ms > now || w.lease_expiry_ms > now {
                return Ok(None);
            }
            w.lease_owner = Some(owner.to_owned());
            w.lease_expiry_ms = now.saturating_add(millis(ttl));
            w.lease_epoch += 1;
            Ok(Some(w.clone()))
        })
    }

    fn advance_webhook(
        &self,
        lease: &Lease,
        cursor: Option<Cursor>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.with(|m| {
            let Some(w) = Self::held(m, lease) else {
                return Ok(false);
            };
            w.cursor = cursor;
            w.attempts = 0;
            w.last_error = None;
            w.failing_since_ms = 0;
            w.lease_expiry_ms = unix_now_millis().saturating_add(millis(ttl));
            Ok(true)
        })
    }

    fn fail_webhook(&self, lease: &Lease, failure: &Failure) -> Result<bool, StoreError> {
        self.with(|m| {
            let Some(w) = Self::held(m, lease) else {
                return Ok(false);
            };
            w.attempts = failure.attempts;
            if w.failing_since_ms == 0 {
                w.failing_since_ms = unix_now_millis();
            }
            w.next_attempt_ms = unix_now_millis().saturating_add(millis(failure.retry_in));
            w.last_error = Some(failure.error.clone());
            w.disabled = failure.disable.clone();
            w.lease_expiry_ms = 0;
            Ok(true)
        })
    }

    fn release_webhook(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.with(|m| {
            let Some(w) = Self::held(m, lease) else {
                return Ok(false);
            };
            w.lease_expiry_ms = 0;
            Ok(true)
        })
    }
}

/// Behaviour every webhook store must show; each backend's tests run it.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    const T: &str = "t_00000000000000aa";
    const TTL: Duration = Duration::from_secs(30);

    fn hook(id: &str) -> Webhook {
        Webhook::new(
            T.into(),
            id.into(),
            "https://example.com/hook".into(),
            vec![EventKind::UserCreated, EventKind::GroupDeleted],
            vec![1, 2, 3],
            1_764_576_000,
            Some(Cursor { seq: 4, index: 1 }),
        )
    }

    fn lease(w: &Webhook) -> Lease {
        Lease {
            tenant: w.tenant.clone(),
            id: w.id.clone(),
            owner: w.lease_owner.clone().unwrap(),
            epoch: w.lease_epoch,
        }
    }

    pub(crate) fn run_all(s: &dyn WebhookStore) {
        registry(s);
        leases_fence(s);
    }

    fn registry(s: &dyn WebhookStore) {
        s.add_webhook(&hook("wh_b")).unwrap();
        s.add_webhook(&hook("wh_a")).unwrap();
        assert!(matches!(
            s.add_webhook(&hook("wh_a")),
            Err(StoreError::AlreadyExists(_))
        ));
        let ids: Vec<_> = s.webhooks(T).unwrap().into_iter().map(|w| w.id).collect();
        assert_eq!(ids, ["wh_b", "wh_a"], "oldest first");
        assert_eq!(s.webhook(T, "wh_a").unwrap(), Some(hook("wh_a")));
        assert!(s.webhooks("t_other").unwrap().is_empty());
        assert_eq!(s.webhook("t_other", "wh_a").unwrap(), None);
        assert!(matches!(
            s.remove_webhook("t_other", "wh_a"),
            Err(StoreError::NotFound(_))
        ));
        s.remove_webhook(T, "wh_b").unwrap();
        s.remove_webhook(T, "wh_a").unwrap();
        assert!(s.webhooks(T).unwrap().is_empty());
    }

    fn leases_fence(s: &dyn WebhookStore) {
        s.add_webhook(&hook("wh_l")).unwrap();
        assert!(s
            .due_webhooks(100)
            .unwrap()
            .contains(&(T.into(), "wh_l".into())));
        let a = s.claim_webhook(T, "wh_l", "host-a", TTL).unwrap().unwrap();
        assert_eq!(a.cursor, Some(Cursor { seq: 4, index: 1 }));
        // Held: nobody else gets it, and it is not due.
        assert_eq!(s.claim_webhook(T, "wh_l", "host-b", TTL).unwrap(), None);
        assert!(!s
            .due_webhooks(100)
            .unwrap()
            .contains(&(T.into(), "wh_l".into())));
        let la = lease(&a);
        let c5 = Cursor { seq: 5, index: 0 };
        assert!(s.advance_webhook(&la, Some(c5), TTL).unwrap());
        assert!(s.release_webhook(&la).unwrap());
        // B claims; A's lease is gone: its writes change nothing.
        let b = s.claim_webhook(T, "wh_l", "host-b", TTL).unwrap().unwrap();
        assert!(b.lease_epoch > a.lease_epoch);
        assert_eq!(b.cursor, Some(c5));
        let c9 = Cursor { seq: 9, index: 0 };
        assert!(!s.advance_webhook(&la, Some(c9), TTL).unwrap());
        let failure = Failure {
            attempts: 1,
            retry_in: Duration::from_secs(60),
            error: "HTTP 500".into(),
            disable: None,
        };
        assert!(!s.fail_webhook(&la, &failure).unwrap());
        assert_eq!(s.webhook(T, "wh_l").unwrap().unwrap().cursor, Some(c5));
        // B fails: not due for a minute, the error is kept.
        let lb = lease(&b);
        assert!(s.fail_webhook(&lb, &failure).unwrap());
        let w = s.webhook(T, "wh_l").unwrap().unwrap();
        assert_eq!((w.attempts, w.last_error.as_deref()), (1, Some("HTTP 500")));
        assert!(w.failing_since_ms > 1_700_000_000_000);
        assert_eq!(s.claim_webhook(T, "wh_l", "host-a", TTL).unwrap(), None);
        // A replay makes it due at once, enabled, at the new position, and fences B out.
        s.reposition_webhook(T, "wh_l", None).unwrap();
        let c = s.claim_webhook(T, "wh_l", "host-a", TTL).unwrap().unwrap();
        assert_eq!(
            (c.cursor, c.attempts, c.last_error.clone()),
            (None, 0, None)
        );
        s.reposition_webhook(T, "wh_l", Some(c9)).unwrap();
        assert!(!s.advance_webhook(&lease(&c), Some(c5), TTL).unwrap());
        // A disabling failure stops claims until a replay.
        let d = s.claim_webhook(T, "wh_l", "host-a", TTL).unwrap().unwrap();
        let gone = Failure {
            disable: Some("410 Gone".into()),
            retry_in: Duration::ZERO,
            ..failure
        };
        assert!(s.fail_webhook(&lease(&d), &gone).unwrap());
        assert_eq!(s.claim_webhook(T, "wh_l", "host-a", TTL).unwrap(), None);
        let w = s.webhook(T, "wh_l").unwrap().unwrap();
        assert_eq!(w.disabled.as_deref(), Some("410 Gone"));
        assert_eq!(w.cursor, Some(c9));
        assert!(matches!(
            s.reposition_webhook(T, "wh_x", None),
            Err(StoreError::NotFound(_))
        ));
        s.remove_webhook(T, "wh_l").unwrap();
    }

    #[test]
    fn memory_conforms() {
        run_all(&MemoryWebhooks::default());
    }
}
