//! In-memory backend for tests and throwaway servers: nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use subtle::ConstantTimeEq;

use crate::events::{Cursor, EventSignal, NewEvent, StoredEvent};

use super::{
    check_commit, check_key, check_policy, check_range, check_tenant_name, new_tenant_id,
    new_token_id, skip_as_usize, unix_now, unix_now_millis, Backend, Check, Entry, Scan,
    StoreError, StoredToken, Tenant, TokenInfo, Write,
};

/// A stored value and the sequence number of the commit that wrote it.
type Slot = (Vec<u8>, u64);

#[derive(Default)]
struct Data {
    /// Last commit sequence number handed out, global across tenants.
    seq: u64,
    /// Per tenant id, keys in bytewise order (`String`'s `Ord`).
    tenants: HashMap<String, BTreeMap<String, Slot>>,
    /// Per tenant id, its events in feed order.
    events: HashMap<String, BTreeMap<Cursor, StoredEvent>>,
    /// Per tenant id, the newest event pruned.
    horizons: HashMap<String, Cursor>,
}

#[derive(Default)]
struct Registry {
    /// By id.
    tenants: HashMap<String, Tenant>,
    /// Name to id; a `BTreeMap` so that `tenants()` comes out ordered by name.
    names: BTreeMap<String, String>,
    /// In creation order, so `tokens()` lists oldest first.
    tokens: Vec<StoredToken>,
}

/// Key-value data and registry behind two locks, so token lookups never wait for a commit.
#[derive(Default)]
pub struct MemoryBackend {
    data: RwLock<Data>,
    registry: RwLock<Registry>,
    signal: EventSignal,
    webhooks: super::webhooks::MemoryWebhooks,
}

impl MemoryBackend {
    /// An empty store: no tenants, no data.
    pub fn new() -> Self {
        Self::default()
    }

    // A poisoned lock only means another thread panicked while holding it; every mutation below
    // validates before it changes anything, so the data is still consistent and we carry on.
    fn data(&self) -> RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    fn data_mut(&self) -> RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry(key: &str, slot: &Slot) -> Entry {
    Entry {
        key: key.to_owned(),
        value: slot.0.clone(),
        version: slot.1,
    }
}

fn range<'a>(
    space: &'a BTreeMap<String, Slot>,
    start: &'a str,
    end: &'a str,
) -> std::collections::btree_map::Range<'a, String, Slot> {
    // Callers check `start <= end` first: `BTreeMap::range` panics otherwise.
    space.range::<str, _>((Bound::Included(start), Bound::Excluded(end)))
}

/// An event as stored by the commit at `cursor`.
pub(super) fn stored_event(cursor: Cursor, time_ms: i64, e: NewEvent) -> StoredEvent {
    StoredEvent {
        cursor,
        id: e.id,
        kind: e.event.kind,
        time_ms,
        request_id: e.request_id,
        data: e.event.data,
        previous: e.event.previous,
    }
}

fn checks_hold(space: Option<&BTreeMap<String, Slot>>, checks: &[Check]) -> bool {
    checks.iter().all(|c| {
        let current = space.and_then(|s| s.get(&c.key)).map(|slot| slot.1);
        current == c.version
    })
}

impl Backend for MemoryBackend {
    fn get(&self, tenant: &str, key: &str) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let data = self.data();
        Ok(data
            .tenants
            .get(tenant)
            .and_then(|s| s.get(key))
            .map(|slot| entry(key, slot)))
    }

    fn get_many(&self, tenant: &str, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        keys.iter().try_for_each(|k| check_key(k))?;
        // One lock for all keys, so the answer is a consistent snapshot.
        let data = self.data();
        let space = data.tenants.get(tenant);
        Ok(keys
            .iter()
            .map(|k| space.and_then(|s| s.get(k)).map(|slot| entry(k, slot)))
            .collect())
    }

    fn scan(&self, tenant: &str, scan: &Scan) -> Result<Vec<Entry>, StoreError> {
        check_range(&scan.start, &scan.end)?;
        let data = self.data();
        let Some(space) = data.tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        let to_entry = |(k, slot): (&String, &Slot)| Entry {
            key: k.clone(),
            value: if scan.keys_only {
                Vec::new()
            } else {
                slot.0.clone()
            },
            version: slot.1,
        };
        let (skip, limit) = (skip_as_usize(scan.skip), scan.limit as usize);
        let hits = range(space, &scan.start, &scan.end);
        Ok(if scan.descending {
            hits.rev().skip(skip).take(limit).map(to_entry).collect()
        } else {
            hits.skip(skip).take(limit).map(to_entry).collect()
        })
    }

    fn count(&self, tenant: &str, start: &str, end: &str) -> Result<u64, StoreError> {
        check_range(start, end)?;
        let data = self.data();
        let n = data
            .tenants
            .get(tenant)
            .map_or(0, |s| range(s, start, end).count());
        Ok(n as u64)
    }

    fn commit_events(
        &self,
        tenant: &str,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<NewEvent>,
    ) -> Result<u64, StoreError> {
        check_commit(&checks, &writes, &events)?;
        let mut data = self.data_mut();
        if !checks_hold(data.tenants.get(tenant), &checks) {
            return Err(StoreError::Conflict);
        }
        if writes.is_empty() {
            return Ok(data.seq);
        }
        data.seq += 1;
        let seq = data.seq;
        let space = data.tenants.entry(tenant.to_owned()).or_default();
        for write in writes {
            match write {
                Write::Put(k, v) => {
                    space.insert(k, (v, seq));
                }
                Write::Delete(k) => {
                    space.remove(&k);
                }
            }
        }
        if !events.is_empty() {
            let time_ms = unix_now_millis();
            let feed = data.events.entry(tenant.to_owned()).or_default();
            for (index, e) in (0u32..).zip(events) {
                let cursor = Cursor { seq, index };
                feed.insert(cursor, stored_event(cursor, time_ms, e));
            }
            drop(data);
            self.signal.notify();
        }
        Ok(seq)
    }

    fn events_after(
        &self,
        tenant: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let data = self.data();
        let Some(feed) = data.events.get(tenant) else {
            return Ok(Vec::new());
        };
        let from = match after {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        Ok(feed
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn event_head(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        let data = self.data();
        Ok(data
            .events
            .get(tenant)
            .and_then(|feed| feed.last_key_value())
            .map(|(c, _)| *c))
    }

    fn event_horizon(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self.data().horizons.get(tenant).copied())
    }

    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut data = self.data_mut();
        let Data {
            events, horizons, ..
        } = &mut *data;
        let mut removed = 0;
        for (tenant, feed) in events.iter_mut() {
            while let Some(entry) = feed.first_entry() {
                if entry.get().time_ms >= before_ms {
                    break;
                }
                let (cursor, _) = entry.remove_entry();
                horizons.insert(tenant.clone(), cursor);
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn event_signal(&self) -> &EventSignal {
        &self.signal
    }

    fn webhooks(&self) -> Option<&dyn super::WebhookStore> {
        Some(&self.webhooks)
    }

    fn create_tenant(&self, name: &str, policy: serde_json::Value) -> Result<Tenant, StoreError> {
        check_tenant_name(name)?;
        check_policy(&policy)?;
        let mut reg = self.registry_mut();
        if reg.names.contains_key(name) {
            return Err(StoreError::AlreadyExists(format!("tenant {name:?}")));
        }
        let tenant = Tenant {
            id: new_tenant_id(),
            name: name.to_owned(),
            policy,
            created_at: unix_now(),
        };
        reg.names.insert(tenant.name.clone(), tenant.id.clone());
        reg.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(tenant)
    }

    fn tenant(&self, name_or_id: &str) -> Result<Option<Tenant>, StoreError> {
        let reg = self.registry();
        let id = reg.names.get(name_or_id).map_or(name_or_id, String::as_str);
        Ok(reg.tenants.get(id).cloned())
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let reg = self.registry();
        Ok(reg
            .names
            .values()
            .filter_map(|id| reg.tenants.get(id).cloned())
            .collect())
    }

    fn set_policy(&self, tenant_id: &str, policy: serde_json::Value) -> Result<(), StoreError> {
        check_policy(&policy)?;
        let mut reg = self.registry_mut();
        let tenant = reg
            .tenants
            .get_mut(tenant_id)
            .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant_id:?}")))?;
        tenant.policy = policy;
        Ok(())
    }

    fn add_token(&self, tenant_id: &str, token_hash: [u8; 32]) -> Result<TokenInfo, StoreError> {
        let mut reg = self.registry_mut();
        if !reg.tenants.contains_key(tenant_id) {
            return Err(StoreError::NotFound(format!("tenant {tenant_id:?}")));
        }
        if reg.tokens.iter().any(|t| t.hash == token_hash) {
            return Err(StoreError::AlreadyExists("token".into()));
        }
        let info = TokenInfo {
            id: new_token_id(),
            tenant_id: tenant_id.to_owned(),
            created_at: unix_now(),
            revoked: false,
        };
        reg.tokens.push(StoredToken {
            info: info.clone(),
            hash: token_hash,
        });
        Ok(info)
    }

    fn tokens(&self, tenant_id: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let stored = self.stored_tokens(tenant_id)?;
        Ok(stored.into_iter().map(|t| t.info).collect())
    }

    fn revoke_token(&self, tenant_id: &str, token_id: &str) -> Result<(), StoreError> {
        let mut reg = self.registry_mut();
        let token = reg
            .tokens
            .iter_mut()
            .find(|t| t.info.tenant_id == tenant_id && t.info.id == token_id)
            .ok_or_else(|| StoreError::NotFound(format!("token {token_id:?}")))?;
        token.info.revoked = true;
        Ok(())
    }

    fn tenant_for_token(&self, token_hash: &[u8; 32]) -> Result<Option<Tenant>, StoreError> {
        let reg = self.registry();
        // Compare against every token in constant time, so timing says nothing about which
        // stored hash shares a prefix with the presented one. Token counts are small.
        let mut found: Option<&StoredToken> = None;
        for t in &reg.tokens {
            if bool::from(t.hash.ct_eq(token_hash)) && !t.info.revoked {
                found = Some(t);
            }
        }
        Ok(found.and_then(|t| reg.tenants.get(&t.info.tenant_id).cloned()))
    }

    fn stored_tokens(&self, tenant_id: &str) -> Result<Vec<StoredToken>, StoreError> {
        let reg = self.registry();
        if !reg.tenants.contains_key(tenant_id) {
            return Err(StoreError::NotFound(format!("tenant {tenant_id:?}")));
        }
        Ok(reg
            .tokens
            .iter()
            .filter(|t| t.info.tenant_id == tenant_id)
            .cloned()
            .collect())
    }

    fn restore_tenant(&self, tenant: &Tenant, tokens: &[StoredToken]) -> Result<(), StoreError> {
        check_tenant_name(&tenant.name)?;
        check_policy(&tenant.policy)?;
        let mut reg = self.registry_mut();
        if reg.tenants.contains_key(&tenant.id) || reg.names.contains_key(&tenant.name) {
            return Err(StoreError::AlreadyExists(format!(
                "tenant {:?}",
                tenant.name
            )));
        }
        let taken = |t: &StoredToken| {
            reg.tokens
                .iter()
                .any(|old| old.hash == t.hash || old.info.id == t.info.id)
        };
        if tokens.iter().any(taken) {
            return Err(StoreError::AlreadyExists("token".into()));
        }
        reg.names.insert(tenant.name.clone(), tenant.id.clone());
        reg.tenants.insert(tenant.id.clone(), tenant.clone());
        reg.tokens.extend(tokens.iter().map(|t| StoredToken {
            info: TokenInfo {
                tenant_id: tenant.id.clone(),
                ..t.info.clone()
            },
            hash: t.hash,
        }));
        Ok(())
    }

    fn restore_entries(&self, tenant: &str, entries: &[Entry]) -> Result<(), StoreError> {
        entries.iter().try_for_each(|e| check_key(&e.key))?;
        let mut data = self.data_mut();
        let space = data.tenants.entry(tenant.to_owned()).or_default();
        for e in entries {
            space.insert(e.key.clone(), (e.value.clone(), e.version));
        }
        Ok(())
    }

    fn restore_events(&self, tenant: &str, events: &[StoredEvent]) -> Result<(), StoreError> {
        let mut data = self.data_mut();
        let feed = data.events.entry(tenant.to_owned()).or_default();
        for e in events {
            feed.insert(e.cursor, e.clone());
        }
        Ok(())
    }

    fn restore_sequence(
        &self,
        tenant: &str,
        seq: u64,
        horizon: Option<Cursor>,
    ) -> Result<(), StoreError> {
        let mut data = self.data_mut();
        // One sequence for every tenant: raising it for one raises it for all, harmlessly.
        data.seq = data.seq.max(seq);
        if let Some(h) = horizon {
            let old = data.horizons.entry(tenant.to_owned()).or_insert(h);
            *old = (*old).max(h);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance;
    use super::*;
    use std::sync::Arc;

    #[test]
    fn conforms() {
        conformance::run_all(&MemoryBackend::new());
    }

    #[test]
    fn concurrent_increments_lose_nothing() {
        conformance::concurrent_increments(Arc::new(MemoryBackend::new()));
    }
}
