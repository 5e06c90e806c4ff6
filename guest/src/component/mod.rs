//! The wit-bindgen adapter: WIT exports call the plain-Rust SCIM core, and the core's
//! [`Store`](crate::persist::store::Store) is the host's `store` import. `handler` serves HTTP,
//! `operator` what the CLI and admin API need.

mod handler;
mod operator;

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "scim-plugin",
    });
}

use bindings::scimlet::scim::{log, store as host, types};

use crate::model::error::ScimError;
use crate::ops::service::Service;
use crate::persist::store::{Check, Entry, Event, EventKind, Scan, Store, StoreError, Write};

pub(crate) struct Component;

// A warm instance serves request after request from one heap: talc allocates and frees faster
// than the standard library's dlmalloc on wasm (the boundary bench's profile spent a fifth of
// the guest's time in dlmalloc/dlfree).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

bindings::export!(Component with_types_in bindings);

/// The host's tenant-scoped store.
pub(crate) struct HostStore;

fn from_host(e: host::StoreError) -> StoreError {
    match e {
        host::StoreError::Conflict => StoreError::Conflict,
        host::StoreError::Unavailable(m) => StoreError::Unavailable(m),
        host::StoreError::Invalid(m) => StoreError::Invalid(m),
    }
}

fn entry(e: host::Entry) -> Entry {
    Entry {
        key: e.key,
        value: e.value,
        version: e.version,
    }
}

impl Store for HostStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        host::get(key).map(|e| e.map(entry)).map_err(from_host)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        host::get_many(keys)
            .map(|v| v.into_iter().map(|e| e.map(entry)).collect())
            .map_err(from_host)
    }
    fn scan(&self, s: &Scan) -> Result<Vec<Entry>, StoreError> {
        host::scan(&s.start, &s.end, s.skip, s.limit, s.descending, s.keys_only)
            .map(|v| v.into_iter().map(entry).collect())
            .map_err(from_host)
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, StoreError> {
        host::count(start, end).map_err(from_host)
    }
    fn commit_events(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<Event>,
    ) -> Result<u64, StoreError> {
        let checks: Vec<host::Check> = checks
            .into_iter()
            .map(|c| host::Check {
                key: c.key,
                version: c.version,
            })
            .collect();
        let writes: Vec<host::Write> = writes
            .into_iter()
            .map(|w| match w {
                Write::Put(k, v) => host::Write::Put((k, v)),
                Write::Delete(k) => host::Write::Delete(k),
            })
            .collect();
        let events: Vec<host::Event> = events
            .into_iter()
            .map(|e| host::Event {
                kind: event_kind(e.kind),
                data: e.data,
                previous: e.previous,
            })
            .collect();
        host::commit(&checks, &writes, &events).map_err(from_host)
    }
}

fn event_kind(kind: EventKind) -> host::EventKind {
    match kind {
        EventKind::UserCreated => host::EventKind::UserCreated,
        EventKind::UserUpdated => host::EventKind::UserUpdated,
        EventKind::UserDeactivated => host::EventKind::UserDeactivated,
        EventKind::UserReactivated => host::EventKind::UserReactivated,
        EventKind::UserDeleted => host::EventKind::UserDeleted,
        EventKind::GroupCreated => host::EventKind::GroupCreated,
        EventKind::GroupLinked => host::EventKind::GroupLinked,
        EventKind::GroupUpdated => host::EventKind::GroupUpdated,
        EventKind::GroupDeleted => host::EventKind::GroupDeleted,
        EventKind::GroupUnlinked => host::EventKind::GroupUnlinked,
        EventKind::GroupMemberAdded => host::EventKind::GroupMemberAdded,
        EventKind::GroupMemberRemoved => host::EventKind::GroupMemberRemoved,
    }
}

pub(crate) fn wit_error(e: ScimError) -> types::ScimError {
    if e.status >= 500 {
        log::emit(log::Level::Warn, &e.to_string());
    }
    types::ScimError {
        status: e.status,
        scim_type: e.scim_type.map(|t| t.as_str().to_string()),
        detail: e.detail,
    }
}

pub(crate) fn forward_diagnostics() {
    crate::model::diag::install(|level, message| {
        let level = match level {
            crate::model::diag::Level::Debug => log::Level::Debug,
            crate::model::diag::Level::Info => log::Level::Info,
            crate::model::diag::Level::Warn => log::Level::Warn,
        };
        log::emit(level, message);
    });
}

/// The host's store, with diagnostics forwarded to the host's log for this call.
pub(crate) fn host_store() -> &'static HostStore {
    forward_diagnostics();
    static STORE: HostStore = HostStore;
    &STORE
}

pub(crate) fn service(ctx: &types::Context) -> Result<Service<'static>, types::ScimError> {
    Service::new(host_store(), &ctx.base_url, &ctx.policy).map_err(wit_error)
}
