//! What one instance's wasmtime store holds, and the component's imports (`store`, `log`)
//! implemented over a borrowed view of it: the view lends the tenant's backend, id and name
//! for one call, so the import implementations cannot reach anything else of the host.

use std::sync::Arc;
use std::time::Duration;

use scimlet_store::{self as contract, Store as _};
use wasmtime::component::{HasData, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::scimlet::scim::{log, store, types};
use super::turns::Turns;
use crate::events::NewEvent;
use crate::metrics::{CommitOutcome, Metrics};
use crate::store::{Backend, TenantStore};

/// Per-instance host state.
pub(super) struct State {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    /// The storage of the tenant the instance is bound to; `None` for instances that serve
    /// tenant-less calls (error pages, policy checks), whose store calls fail.
    pub(super) backend: Option<Arc<dyn Backend>>,
    /// The tenant the instance is bound to ("" when none): a warm instance only ever serves
    /// this tenant again.
    pub(super) tenant_id: String,
    pub(super) tenant_name: String,
    pub(super) metrics: Metrics,
    /// The calling thread's CPU time when the current call began.
    pub(super) cpu_start: Duration,
    /// For a call whose commits must wait their turn (an import batch): the turns and its ticket.
    pub(super) turn: Option<(Arc<Turns>, u64)>,
    /// The request (or operator action) the current call serves: stored with its events.
    pub(super) request_id: String,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl State {
    /// The part of the state the component's imports may use during one call.
    pub(super) fn view(&mut self) -> HostView<'_> {
        HostView {
            store: self
                .backend
                .as_deref()
                .map(|b| TenantStore::new(b, &self.tenant_id)),
            tenant_name: &self.tenant_name,
            metrics: &self.metrics,
            turn: self.turn.as_ref(),
            request_id: &self.request_id,
        }
    }
}

/// Caps linear memory and remembers that the cap was hit, so OOM is not mistaken for a panic.
pub(super) struct MemoryLimiter {
    pub(super) max: usize,
    pub(super) hit: bool,
    /// Largest linear memory granted so far.
    pub(super) size: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.size = self.size.max(desired);
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The borrowed view the `store` and `log` imports run on.
pub(super) struct HostView<'a> {
    store: Option<TenantStore<'a>>,
    tenant_name: &'a str,
    metrics: &'a Metrics,
    turn: Option<&'a (Arc<Turns>, u64)>,
    request_id: &'a str,
}

/// Names [`HostView`] as the data of the generated `add_to_linker` (wasmtime's `HasData`).
pub(super) struct HostCalls;

impl HasData for HostCalls {
    type Data<'a> = HostView<'a>;
}

impl HostView<'_> {
    fn store(&self) -> Result<&TenantStore<'_>, store::StoreError> {
        self.store.as_ref().ok_or_else(|| {
            store::StoreError::Unavailable("this call is not bound to a tenant".into())
        })
    }
}

fn to_wit(e: contract::StoreError) -> store::StoreError {
    match e {
        contract::StoreError::Conflict => store::StoreError::Conflict,
        contract::StoreError::Invalid(m) => store::StoreError::Invalid(m),
        contract::StoreError::Unavailable(m) => store::StoreError::Unavailable(m),
    }
}

fn entry(e: contract::Entry) -> store::Entry {
    store::Entry {
        key: e.key,
        value: e.value,
        version: e.version,
    }
}

impl types::Host for HostView<'_> {}

impl store::Host for HostView<'_> {
    fn get(&mut self, key: String) -> Result<Option<store::Entry>, store::StoreError> {
        let found = self.store()?.get(&key).map_err(to_wit)?;
        Ok(found.map(entry))
    }
    fn get_many(
        &mut self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<store::Entry>>, store::StoreError> {
        let found = self.store()?.get_many(&keys).map_err(to_wit)?;
        Ok(found.into_iter().map(|e| e.map(entry)).collect())
    }
    fn scan(
        &mut self,
        start: String,
        end: String,
        skip: u64,
        limit: u32,
        descending: bool,
        keys_only: bool,
    ) -> Result<Vec<store::Entry>, store::StoreError> {
        let scan = contract::Scan {
            start,
            end,
            skip,
            limit,
            descending,
            keys_only,
        };
        let found = self.store()?.scan(&scan).map_err(to_wit)?;
        Ok(found.into_iter().map(entry).collect())
    }
    fn count(&mut self, start: String, end: String) -> Result<u64, store::StoreError> {
        self.store()?.count(&start, &end).map_err(to_wit)
    }
    fn commit(
        &mut self,
        checks: Vec<store::Check>,
        writes: Vec<store::Write>,
        events: Vec<store::Event>,
    ) -> Result<u64, store::StoreError> {
        let checks: Vec<contract::Check> = checks
            .into_iter()
            .map(|c| contract::Check {
                key: c.key,
                version: c.version,
            })
            .collect();
        let writes: Vec<contract::Write> = writes
            .into_iter()
            .map(|w| match w {
                store::Write::Put((k, v)) => contract::Write::Put(k, v),
                store::Write::Delete(k) => contract::Write::Delete(k),
            })
            .collect();
        let events: Vec<NewEvent> = events
            .into_iter()
            .map(|e| NewEvent {
                id: NewEvent::new_id(),
                request_id: self.request_id.to_string(),
                event: contract::Event {
                    kind: event_kind(e.kind),
                    data: e.data,
                    previous: e.previous,
                },
            })
            .collect();
        if let Some((turns, ticket)) = self.turn {
            if !turns.wait(*ticket) {
                return Err(store::StoreError::Unavailable(
                    "the import stopped before this batch's turn".into(),
                ));
            }
        }
        let result = self.store()?.commit_recorded(checks, writes, events);
        self.metrics.store_commit(match &result {
            Ok(_) => CommitOutcome::Ok,
            Err(contract::StoreError::Conflict) => CommitOutcome::Conflict,
            Err(_) => CommitOutcome::Error,
        });
        result.map_err(to_wit)
    }
}

fn event_kind(kind: store::EventKind) -> contract::EventKind {
    use contract::EventKind as K;
    use store::EventKind as W;
    match kind {
        W::UserCreated => K::UserCreated,
        W::UserUpdated => K::UserUpdated,
        W::UserDeactivated => K::UserDeactivated,
        W::UserReactivated => K::UserReactivated,
        W::UserDeleted => K::UserDeleted,
        W::GroupCreated => K::GroupCreated,
        W::GroupLinked => K::GroupLinked,
        W::GroupUpdated => K::GroupUpdated,
        W::GroupDeleted => K::GroupDeleted,
        W::GroupUnlinked => K::GroupUnlinked,
        W::GroupMemberAdded => K::GroupMemberAdded,
        W::GroupMemberRemoved => K::GroupMemberRemoved,
    }
}

impl log::Host for HostView<'_> {
    fn emit(&mut self, level: log::Level, message: String) {
        let tenant = self.tenant_name;
        match level {
            log::Level::Trace => tracing::trace!(tenant, "guest: {message}"),
            log::Level::Debug => tracing::debug!(tenant, "guest: {message}"),
            log::Level::Info => tracing::info!(tenant, "guest: {message}"),
            log::Level::Warn => tracing::warn!(tenant, "guest: {message}"),
            log::Level::Error => tracing::error!(tenant, "guest: {message}"),
        }
    }
}
