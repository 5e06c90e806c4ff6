//! Warm instances: an instance that served a call cleanly is kept for the next call of the same
//! tenant (never another tenant's), so a request does not pay for instantiation, fresh heap
//! pages and the guest's one-time setup. An instance that trapped, hit a limit, grew large or
//! served many calls is dropped instead.

use std::collections::VecDeque;
use std::sync::Mutex;

use wasmtime::Store;

use super::bindings::ScimPlugin;
use super::state::State;

/// An instance checked out for a call, or idle between two calls of its tenant.
pub(super) struct Warm {
    pub(super) store: Store<State>,
    pub(super) plugin: ScimPlugin,
    pub(super) uses: u32,
}

/// Warm instances, least recently used first. A linear scan: the pool holds a few dozen.
pub(super) struct WarmPool {
    idle: Mutex<VecDeque<Warm>>,
    capacity: usize,
}

impl WarmPool {
    pub(super) fn new(capacity: usize) -> WarmPool {
        WarmPool {
            idle: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    pub(super) fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Warm>> {
        // A plain list: a panic elsewhere cannot leave it inconsistent.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn take(&self, tenant_id: &str) -> Option<Warm> {
        let mut idle = self.idle();
        let at = idle
            .iter()
            .rposition(|w| w.store.data().tenant_id == tenant_id)?;
        idle.remove(at)
    }

    /// Keeps `warm`, making room by evicting the least recently used instance.
    pub(super) fn put(&self, warm: Warm) {
        if self.capacity == 0 {
            return;
        }
        let evicted = {
            let mut idle = self.idle();
            idle.push_back(warm);
            (idle.len() > self.capacity).then(|| idle.pop_front())
        };
        // Dropped outside the lock: freeing an instance returns its slot to the allocator.
        drop(evicted);
    }

    /// Frees the least recently used instance (its pooling slot is wanted by another).
    pub(super) fn evict_one(&self) -> bool {
        let evicted = self.idle().pop_front();
        evicted.is_some()
    }
}
