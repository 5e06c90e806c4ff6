//! One tenant's part of a [`Backend`], as the store contract's [`Store`]: what the component's
//! `store` import serves, and what the contract's conformance suite runs against.

use scimlet_store::{Check, Entry, Scan, Store, StoreError as ContractError, Write};

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
    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<u64, ContractError> {
        Ok(self.backend.commit(self.tenant_id, checks, writes)?)
    }
}
