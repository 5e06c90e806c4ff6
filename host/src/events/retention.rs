//! Event retention: events older than the retention period are removed, on start and then
//! every [`PRUNE_EVERY`], off the request path. A reader whose cursor lies before what was
//! removed gets [`super::feed::FeedError::Expired`].

use std::sync::Arc;
use std::time::Duration;

use crate::store::{unix_now_millis, Backend};

/// Default retention of `serve` (`event-retention-days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// How often `serve` prunes after the first time.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Removes every event committed more than `retention` ago; answers how many went. Blocking.
pub fn prune(backend: &dyn Backend, retention: Duration) -> Result<u64, crate::store::StoreError> {
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    backend.prune_events(unix_now_millis().saturating_sub(keep_ms))
}

/// Prunes now and then every [`PRUNE_EVERY`], on the blocking pool, for as long as the tokio
/// runtime runs. Failures are logged and retried at the next round.
pub fn spawn_pruner(backend: Arc<dyn Backend>, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let b = backend.clone();
            match tokio::task::spawn_blocking(move || prune(b.as_ref(), retention)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(removed = n, "pruned events past retention"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning events failed"),
                Err(e) => tracing::warn!(error = %e, "pruning events failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind, NewEvent};
    use crate::store::memory::MemoryBackend;
    use crate::store::Write;

    #[test]
    fn only_events_older_than_the_retention_go() {
        let b = MemoryBackend::new();
        let ev = NewEvent {
            id: NewEvent::new_id(),
            request_id: "r".into(),
            event: Event {
                kind: EventKind::UserCreated,
                data: "{}".into(),
                previous: None,
            },
        };
        b.commit_events(
            "t_1",
            vec![],
            vec![Write::Put("k".into(), vec![1])],
            vec![ev],
        )
        .unwrap();
        assert_eq!(prune(&b, Duration::from_secs(86_400)).unwrap(), 0);
        assert_eq!(b.events_after("t_1", None, 10).unwrap().len(), 1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(prune(&b, Duration::from_millis(1)).unwrap(), 1);
        assert!(b.events_after("t_1", None, 10).unwrap().is_empty());
    }
}
