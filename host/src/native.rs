//! The guest's SCIM core linked natively, over the same tenant-scoped storage the component
//! gets. The CLI uses it for product-side operations (teams), and the benchmark uses it to
//! measure what the component boundary costs.

use scimlet_guest::store as guest;

use crate::runtime::{GuestRequest, GuestResponse};
use crate::store::{self as backend, Backend, Tenant};

/// One tenant's view of a [`Backend`], as the guest's `Store` trait.
pub struct TenantStore<'a> {
    backend: &'a dyn Backend,
    tenant_id: &'a str,
}

impl<'a> TenantStore<'a> {
    pub fn new(backend: &'a dyn Backend, tenant: &'a Tenant) -> Self {
        TenantStore {
            backend,
            tenant_id: &tenant.id,
        }
    }
}

fn to_guest(e: backend::StoreError) -> guest::StoreError {
    match e {
        backend::StoreError::Conflict => guest::StoreError::Conflict,
        backend::StoreError::Invalid(m) => guest::StoreError::Invalid(m),
        other => guest::StoreError::Unavailable(other.to_string()),
    }
}

fn entry(e: backend::Entry) -> guest::Entry {
    guest::Entry {
        key: e.key,
        value: e.value,
        version: e.version,
    }
}

impl guest::Store for TenantStore<'_> {
    fn get(&self, key: &str) -> Result<Option<guest::Entry>, guest::StoreError> {
        self.backend
            .get(self.tenant_id, key)
            .map(|e| e.map(entry))
            .map_err(to_guest)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<guest::Entry>>, guest::StoreError> {
        let found = self
            .backend
            .get_many(self.tenant_id, keys)
            .map_err(to_guest)?;
        Ok(found.into_iter().map(|e| e.map(entry)).collect())
    }
    fn scan(&self, s: &guest::Scan) -> Result<Vec<guest::Entry>, guest::StoreError> {
        let scan = backend::Scan {
            start: s.start.clone(),
            end: s.end.clone(),
            skip: s.skip,
            limit: s.limit,
            descending: s.descending,
            keys_only: s.keys_only,
        };
        let found = self.backend.scan(self.tenant_id, &scan).map_err(to_guest)?;
        Ok(found.into_iter().map(entry).collect())
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, guest::StoreError> {
        self.backend
            .count(self.tenant_id, start, end)
            .map_err(to_guest)
    }
    fn commit(
        &self,
        checks: &[guest::Check],
        writes: &[guest::Write],
    ) -> Result<u64, guest::StoreError> {
        let checks: Vec<backend::Check> = checks
            .iter()
            .map(|c| backend::Check {
                key: c.key.clone(),
                version: c.version,
            })
            .collect();
        let writes: Vec<backend::Write> = writes
            .iter()
            .map(|w| match w {
                guest::Write::Put(k, v) => backend::Write::Put(k.clone(), v.clone()),
                guest::Write::Delete(k) => backend::Write::Delete(k.clone()),
            })
            .collect();
        self.backend
            .commit(self.tenant_id, &checks, &writes)
            .map_err(to_guest)
    }
}

/// Serves one request with the natively linked guest (same input and output as the component).
pub fn handle(backend: &dyn Backend, tenant: &Tenant, request: GuestRequest) -> GuestResponse {
    let store = TenantStore::new(backend, tenant);
    let req = scimlet_guest::http::Request {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        body: request.body,
        base_url: request.ctx.base_url,
        policy: tenant.policy.to_string(),
    };
    let resp = scimlet_guest::http::handle(&store, &req);
    GuestResponse {
        status: resp.status,
        headers: resp.headers,
        body: resp.body,
    }
}
