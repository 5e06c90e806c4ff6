//! One tenant's part of a [`Backend`], as the store contract's [`Store`]: what the component's
//! `store` import serves, and what the contract's conformance suite runs against.

use scimlet_store::{Check, Entry, Event, Scan, Store, StoreError as ContractError, Write};

use crate::events::NewEvent;

use super::{Backend, StoreError};

/// A [`Backend`] bound to one tenant.
pub struct TenantStore<'a> {
    backend: &'a dyn Backend,
    tenant_id: &'a str,
}

impl<'a> TenantStore<'a> {
    /// The view of `tenant_id`'s keys; the id must come from the registry.
    pub fn new(backend: &'a dyn Backend, tenant_id: &'a str) -> Self {
        TenantStore { backend, tenant_id }
    }
}

impl From<StoreError> for ContractError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ContractError::Conflict,
            StoreError::Invalid(m) => ContractError::Invalid(m),
            other => ContractError::Unavailable(other.to_string()),
        }
    }
}

impl TenantStore<'_> {
    /// Commits with events that already carry their ids and request id.
    pub fn commit_recorded(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<NewEvent>,
    ) -> Result<u64, ContractError> {
        Ok(self
            .backend
            .commit_events(self.tenant_id, checks, writes, events)?)
    }
}

impl Store for TenantStore<'_> {
    fn get(&self, key: &str) -> Result<Option<Entry>, ContractError> {
        Ok(self.backend.get(self.tenant_id, key)?)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, ContractError> {
        Ok(self.backend.get_many(self.tenant_id, keys)?)
    }
    fn scan(&self, scan: &Scan) -> Result<Vec<Entry>, ContractError> {
        Ok(self.backend.scan(self.tenant_id, scan)?)
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, ContractError> {
        Ok(self.backend.count(self.tenant_id, start, end)?)
    }
    fn commit_events(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<Event>,
    ) -> Result<u64, ContractError> {
        // Events committed through the contract alone (its conformance suite) get ids here;
        // the component's commits come through [`TenantStore::commit_recorded`] with theirs.
        let events: Vec<NewEvent> = events
            .into_iter()
            .map(|event| NewEvent {
                id: NewEvent::new_id(),
                request_id: String::new(),
                event,
            })
            .collect();
        self.commit_recorded(checks, writes, events)
    }
}
