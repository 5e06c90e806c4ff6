//! Reading a tenant's change feed after a cursor: the one reader behind the admin events API,
//! `scimlet events` and products that embed [`crate::ScimService`].
//!
//! A page is read first and the tenant's retention horizon after it. Pruning removes events
//! and moves the horizon in one transaction, so if a prune removed events the reader was owed
//! before (or while) the page was read, the horizon read afterwards shows it and the page is
//! refused ([`FeedError::Expired`]) instead of silently skipping them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{BadCursor, Cursor, StoredEvent};
use crate::store::{Backend, StoreError, Tenant};

/// Events per page when the reader does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most events one page holds.
pub const MAX_LIMIT: usize = 1000;
/// The longest one long poll waits.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting reader looks again without being signalled: commits made by another
/// process on the same store (the CLI, another host) do not reach this process's signal.
pub const RECHECK: Duration = Duration::from_millis(500);

/// Why a page could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    /// No tenant has this name or id.
    #[error("no tenant named '{0}' (nor with that id)")]
    NoSuchTenant(String),
    /// The cursor is not one this host hands out.
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    /// The page size is outside `1..=MAX_LIMIT`.
    #[error("limit must be between 1 and {MAX_LIMIT}, not {0}")]
    BadLimit(usize),
    /// Events after the cursor were removed by retention: the reader has missed some.
    #[error(
        "events after cursor {after} are no longer kept (retention removed every event up to \
         {horizon}): resync through the SCIM lists (GET /Users and GET /Groups with their \
         members), then continue after cursor {resume}, the newest event when this answer was \
         made (events committed during the resync come after it and replay harmlessly)"
    )]
    Expired {
        /// The cursor asked for.
        after: Cursor,
        /// The newest event removed.
        horizon: Cursor,
        /// Where a reader continues once resynced: the newest event when the page was refused
        /// (the horizon if none is kept).
        resume: Cursor,
    },
    /// The cursor lies past the newest event the tenant ever had: it came from another
    /// tenant or deployment, or the store was restored from an older backup.
    #[error(
        "cursor {after} is past the end of this tenant's feed (its newest event is {}): it \
         belongs to another tenant or deployment, or the store was restored from a backup; \
         resync through the SCIM lists and read again without a cursor",
        newest.map_or_else(|| "none".to_string(), |c| c.to_string())
    )]
    Ahead {
        /// The cursor asked for.
        after: Cursor,
        /// The tenant's newest event or, when none is kept, the newest removed.
        newest: Option<Cursor>,
    },
    /// The store failed: why.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for FeedError {
    fn from(e: StoreError) -> Self {
        FeedError::Unavailable(e.to_string())
    }
}

/// One page of a tenant's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// The tenant's name, as events show it ([`StoredEvent::to_json`]).
    pub tenant: String,
    /// The events after the cursor, in feed order.
    pub events: Vec<StoredEvent>,
    /// Where the next read starts: the last event's cursor, or the cursor given when the page
    /// is empty. `None` only when no cursor was given and the tenant's feed is empty (then the
    /// next read also starts at the beginning).
    pub next_cursor: Option<Cursor>,
    /// Whether more events follow this page already.
    pub has_more: bool,
}

impl FeedPage {
    /// The page as the events API answers it: `{"data": [...], "next_cursor", "has_more"}`
    /// (`next_cursor` is `null` when [`FeedPage::next_cursor`] is `None`).
    pub fn to_json(&self) -> serde_json::Value {
        let data: Vec<_> = self
            .events
            .iter()
            .map(|e| e.to_json(&self.tenant))
            .collect();
        serde_json::json!({
            "data": data,
            "next_cursor": self.next_cursor.map(|c| c.to_string()),
            "has_more": self.has_more,
        })
    }
}

/// Reads tenants' feeds from a backend. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    backend: Arc<dyn Backend>,
}

impl Feed {
    /// A reader of `backend`'s feeds.
    pub fn new(backend: Arc<dyn Backend>) -> Feed {
        Feed { backend }
    }

    /// Parses a cursor as consumers send it: empty means none (from the oldest event kept).
    pub fn parse_cursor(text: &str) -> Result<Option<Cursor>, FeedError> {
        if text.is_empty() {
            return Ok(None);
        }
        Ok(Some(text.parse()?))
    }

    /// The tenant (name or id). Blocking.
    pub fn tenant(&self, name_or_id: &str) -> Result<Tenant, FeedError> {
        self.backend
            .tenant(name_or_id)?
            .ok_or_else(|| FeedError::NoSuchTenant(name_or_id.to_string()))
    }

    /// At most `limit` events of `tenant` (name or id) after `after` (from the oldest kept when
    /// `None`). Blocking: call it off the async workers, or use [`Feed::wait`].
    pub fn page(
        &self,
        tenant: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<FeedPage, FeedError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(FeedError::BadLimit(limit));
        }
        let tenant = self.tenant(tenant)?;
        let mut events = self.backend.events_after(&tenant.id, after, limit + 1)?;
        // After the read, never before: see the module's documentation.
        if let (Some(after), Some(horizon)) = (after, self.backend.event_horizon(&tenant.id)?) {
            if after < horizon {
                let resume = self.backend.event_end(&tenant.id)?.unwrap_or(horizon);
                return Err(FeedError::Expired {
                    after,
                    horizon,
                    resume,
                });
            }
        }
        if let (Some(after), true) = (after, events.is_empty()) {
            let newest = self.backend.event_end(&tenant.id)?;
            if newest.is_none_or(|n| after > n) {
                return Err(FeedError::Ahead { after, newest });
            }
        }
        let has_more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = events.last().map(|e| e.cursor).or(after);
        Ok(FeedPage {
            tenant: tenant.name,
            events,
            next_cursor,
            has_more,
        })
    }

    /// Like [`Feed::page`], but when no event follows `after` yet, waits up to `timeout` for
    /// one (a long poll) and answers as soon as one is committed. Never blocks an async worker:
    /// reads run on the blocking pool, waiting is on the backend's [`super::EventSignal`] and a
    /// [`RECHECK`] timer.
    pub async fn wait(
        &self,
        tenant: &str,
        after: Option<Cursor>,
        limit: usize,
        timeout: Duration,
    ) -> Result<FeedPage, FeedError> {
        let deadline = Instant::now() + timeout;
        let mut signal = self.backend.event_signal().subscribe();
        loop {
            // Marked seen before the read: a commit during the read wakes the next wait.
            signal.borrow_and_update();
            let page = self.page_async(tenant, after, limit).await?;
            let now = Instant::now();
            if !page.events.is_empty() || now >= deadline {
                return Ok(page);
            }
            let nap = (deadline - now).min(RECHECK);
            match tokio::time::timeout(nap, signal.changed()).await {
                Ok(Ok(())) | Err(_) => {}
                // The backend is gone: only the timer is left.
                Ok(Err(_)) => tokio::time::sleep(nap).await,
            }
        }
    }

    async fn page_async(
        &self,
        tenant: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<FeedPage, FeedError> {
        let (feed, tenant) = (self.clone(), tenant.to_string());
        tokio::task::spawn_blocking(move || feed.page(&tenant, after, limit))
            .await
            .map_err(|e| FeedError::Unavailable(format!("the feed read failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind, NewEvent};
    use crate::store::memory::MemoryBackend;
    use crate::store::Write;
    use serde_json::json;

    fn setup() -> (Arc<dyn Backend>, Feed, String) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let t = backend.create_tenant("acme", json!({})).unwrap();
        (backend.clone(), Feed::new(backend), t.id)
    }

    fn commit(b: &dyn Backend, tenant: &str, n: usize) {
        let events: Vec<NewEvent> = (0..n)
            .map(|i| NewEvent {
                id: NewEvent::new_id(),
                request_id: "r".into(),
                event: Event {
                    kind: EventKind::UserCreated,
                    data: json!({"id": i.to_string()}).to_string(),
                    previous: None,
                },
            })
            .collect();
        b.commit_events(
            tenant,
            vec![],
            vec![Write::Put(format!("k/{n}"), vec![1])],
            events,
        )
        .unwrap();
    }

    #[test]
    fn pages_follow_each_other_without_gaps() {
        let (b, feed, id) = setup();
        let empty = feed.page("acme", None, 10).unwrap();
        assert_eq!((empty.next_cursor, empty.has_more), (None, false));
        commit(b.as_ref(), &id, 3);
        commit(b.as_ref(), &id, 2);
        let first = feed.page("acme", None, 4).unwrap();
        assert_eq!(first.events.len(), 4);
        assert!(first.has_more);
        assert_eq!(first.next_cursor, Some(first.events[3].cursor));
        let rest = feed.page(&id, first.next_cursor, 4).unwrap();
        assert_eq!(rest.events.len(), 1);
        assert!(!rest.has_more);
        assert!(rest.events[0].cursor > first.events[3].cursor);
        let end = feed.page("acme", rest.next_cursor, 4).unwrap();
        assert!(end.events.is_empty());
        assert_eq!(end.next_cursor, rest.next_cursor);
        assert_eq!(first.to_json()["data"][0]["tenant"], "acme");
        assert_eq!(end.to_json()["data"], json!([]));
        // A cursor past the newest event was never handed out for this tenant.
        let past = Cursor {
            seq: rest.events[0].cursor.seq + 1,
            index: 0,
        };
        assert!(matches!(
            feed.page("acme", Some(past), 4),
            Err(FeedError::Ahead { .. })
        ));
    }

    #[test]
    fn bad_requests_are_named() {
        let (_, feed, _) = setup();
        assert!(matches!(
            feed.page("nobody", None, 1),
            Err(FeedError::NoSuchTenant(_))
        ));
        for limit in [0, MAX_LIMIT + 1] {
            assert!(matches!(
                feed.page("acme", None, limit),
                Err(FeedError::BadLimit(_))
            ));
        }
        assert!(matches!(
            Feed::parse_cursor("nope"),
            Err(FeedError::BadCursor(_))
        ));
        assert_eq!(Feed::parse_cursor("").unwrap(), None);
    }

    #[test]
    fn a_cursor_before_the_horizon_has_expired() {
        let (b, feed, id) = setup();
        commit(b.as_ref(), &id, 2);
        let seen = feed.page("acme", None, 1).unwrap().next_cursor;
        b.prune_events(crate::store::unix_now_millis() + 1000)
            .unwrap();
        commit(b.as_ref(), &id, 1);
        let err = feed.page("acme", seen, 10).unwrap_err();
        assert!(matches!(err, FeedError::Expired { .. }), "{err}");
        assert!(err.to_string().contains("GET /Users"), "{err}");
        // Without a cursor, reading starts at the oldest event kept; the newest removed event
        // is not expired either (its reader saw everything removed).
        let fresh = feed.page("acme", None, 10).unwrap();
        assert_eq!(fresh.events.len(), 1);
        let horizon = b.event_horizon(&id).unwrap();
        assert_eq!(feed.page("acme", horizon, 10).unwrap().events.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_poll_answers_when_an_event_commits() {
        let (b, feed, id) = setup();
        let started = Instant::now();
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.wait("acme", None, 10, Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        commit(b.as_ref(), &id, 1);
        let page = waiting.await.unwrap().unwrap();
        assert_eq!(page.events.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(30));
        // Nothing new: the wait ends at its timeout with an empty page at the same cursor.
        let idle = feed
            .wait("acme", page.next_cursor, 10, Duration::from_millis(20))
            .await
            .unwrap();
        assert!(idle.events.is_empty());
        assert_eq!(idle.next_cursor, page.next_cursor);
    }
}
