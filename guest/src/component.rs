//! The wit-bindgen adapter: WIT exports call the plain-Rust SCIM core, and the core's
//! [`Store`](crate::store::Store) is the host's `store` import.

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "scim-plugin",
    });
}

use bindings::exports::scimlet::scim::{groups, handler, roles, users};
use bindings::scimlet::scim::{log, store as host, types};

use crate::error::ScimError;
use crate::repo::Kind;
use crate::resource::Projection;
use crate::service::{ListParams, Service};
use crate::store::{Check, Entry, Scan, Store, StoreError, Write};

struct Component;

// A warm instance serves request after request from one heap: talc allocates and frees faster
// than the standard library's dlmalloc on wasm (the boundary bench's profile spent a fifth of
// the guest's time in dlmalloc/dlfree).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

bindings::export!(Component with_types_in bindings);

/// The host's tenant-scoped store.
struct HostStore;

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
    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<u64, StoreError> {
        let checks: Vec<host::Check> = checks
            .iter()
            .map(|c| host::Check {
                key: c.key.clone(),
                version: c.version,
            })
            .collect();
        let writes: Vec<host::Write> = writes
            .iter()
            .map(|w| match w {
                Write::Put(k, v) => host::Write::Put((k.clone(), v.clone())),
                Write::Delete(k) => host::Write::Delete(k.clone()),
            })
            .collect();
        host::commit(&checks, &writes).map_err(from_host)
    }
}

fn wit_error(e: ScimError) -> types::ScimError {
    if e.status >= 500 {
        log::emit(log::Level::Warn, &e.to_string());
    }
    types::ScimError {
        status: e.status,
        scim_type: e.scim_type.map(|t| t.as_str().to_string()),
        detail: e.detail,
    }
}

fn forward_diagnostics() {
    crate::diag::install(|level, message| {
        let level = match level {
            crate::diag::Level::Debug => log::Level::Debug,
            crate::diag::Level::Info => log::Level::Info,
            crate::diag::Level::Warn => log::Level::Warn,
        };
        log::emit(level, message);
    });
}

fn service(ctx: &types::Context) -> Result<Service<'static>, types::ScimError> {
    forward_diagnostics();
    static STORE: HostStore = HostStore;
    Service::new(&STORE, &ctx.base_url, &ctx.policy).map_err(wit_error)
}

fn parse(text: &str) -> Result<serde_json::Value, types::ScimError> {
    serde_json::from_str(text).map_err(|e| {
        wit_error(ScimError::invalid_syntax(format!(
            "the resource is not valid JSON: {e}"
        )))
    })
}

fn projection(svc: &Service<'_>, proj: &types::Projection) -> Result<Projection, types::ScimError> {
    svc.projection(
        proj.attributes.as_deref(),
        proj.excluded_attributes.as_deref(),
    )
    .map_err(wit_error)
}

/// The typed operations, shared by users and groups.
fn create(
    kind: Kind,
    ctx: types::Context,
    document: String,
    proj: types::Projection,
) -> Result<String, types::ScimError> {
    let svc = service(&ctx)?;
    let p = projection(&svc, &proj)?;
    let doc = svc
        .create(kind, &parse(&document)?, &p)
        .map_err(wit_error)?;
    svc.render_text(kind, &doc, &p).map_err(wit_error)
}
fn get(
    kind: Kind,
    ctx: types::Context,
    id: String,
    proj: types::Projection,
) -> Result<String, types::ScimError> {
    let svc = service(&ctx)?;
    let p = projection(&svc, &proj)?;
    let doc = svc.get(kind, &id, &p).map_err(wit_error)?;
    svc.render_text(kind, &doc, &p).map_err(wit_error)
}
fn replace(
    kind: Kind,
    ctx: types::Context,
    id: String,
    document: String,
    proj: types::Projection,
) -> Result<String, types::ScimError> {
    let svc = service(&ctx)?;
    let p = projection(&svc, &proj)?;
    let doc = svc
        .replace(kind, &id, &parse(&document)?, None, &p)
        .map_err(wit_error)?;
    svc.render_text(kind, &doc, &p).map_err(wit_error)
}
fn patch(
    kind: Kind,
    ctx: types::Context,
    id: String,
    op: String,
    proj: types::Projection,
) -> Result<String, types::ScimError> {
    let svc = service(&ctx)?;
    let p = projection(&svc, &proj)?;
    let doc = svc
        .patch(kind, &id, &parse(&op)?, None, &p)
        .map_err(wit_error)?;
    svc.render_text(kind, &doc, &p).map_err(wit_error)
}
fn delete(kind: Kind, ctx: types::Context, id: String) -> Result<(), types::ScimError> {
    service(&ctx)?.delete(kind, &id, None).map_err(wit_error)
}
fn query(kind: Kind, ctx: types::Context, q: types::ListQuery) -> Result<String, types::ScimError> {
    let svc = service(&ctx)?;
    let params = ListParams {
        filter: q.filter,
        start_index: q.start_index,
        count: q.count,
        sort_by: q.sort_by,
        sort_order: q.sort_order,
        attributes: q.attributes,
        excluded_attributes: q.excluded_attributes,
    };
    let p = svc
        .projection(
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
        )
        .map_err(wit_error)?;
    let page = svc.query(&[kind], &params).map_err(wit_error)?;
    Ok(svc.list_response(&page, &p).map_err(wit_error)?.to_string())
}

/// The `users` and `groups` interfaces are the same operations on two resource types.
macro_rules! typed_resource {
    ($interface:ident, $kind:expr) => {
        impl $interface::Guest for Component {
            fn create(
                ctx: types::Context,
                resource: String,
                proj: types::Projection,
            ) -> Result<String, types::ScimError> {
                create($kind, ctx, resource, proj)
            }
            fn get(
                ctx: types::Context,
                id: String,
                proj: types::Projection,
            ) -> Result<String, types::ScimError> {
                get($kind, ctx, id, proj)
            }
            fn replace(
                ctx: types::Context,
                id: String,
                resource: String,
                proj: types::Projection,
            ) -> Result<String, types::ScimError> {
                replace($kind, ctx, id, resource, proj)
            }
            fn patch(
                ctx: types::Context,
                id: String,
                op: String,
                proj: types::Projection,
            ) -> Result<String, types::ScimError> {
                patch($kind, ctx, id, op, proj)
            }
            fn delete(ctx: types::Context, id: String) -> Result<(), types::ScimError> {
                delete($kind, ctx, id)
            }
            fn query(ctx: types::Context, q: types::ListQuery) -> Result<String, types::ScimError> {
                query($kind, ctx, q)
            }
        }
    };
}

typed_resource!(users, Kind::User);
typed_resource!(groups, Kind::Group);

impl roles::Guest for Component {
    fn list_roles(ctx: types::Context) -> Result<Vec<roles::Role>, types::ScimError> {
        let svc = service(&ctx)?;
        Ok(crate::roles::list(&svc.policy)
            .into_iter()
            .map(|r| roles::Role {
                value: r.value,
                display: r.display,
                is_default: r.is_default,
            })
            .collect())
    }
    fn get_user_role(
        ctx: types::Context,
        user_id: String,
    ) -> Result<Option<String>, types::ScimError> {
        let svc = service(&ctx)?;
        crate::roles::get_user_role(&svc, &user_id).map_err(wit_error)
    }
    fn set_user_role(
        ctx: types::Context,
        user_id: String,
        role: Option<String>,
    ) -> Result<(), types::ScimError> {
        let svc = service(&ctx)?;
        crate::roles::set_user_role(&svc, &user_id, role.as_deref()).map_err(wit_error)
    }
}

impl handler::Guest for Component {
    fn handle(req: handler::Request) -> handler::Response {
        forward_diagnostics();
        static STORE: HostStore = HostStore;
        let request = crate::http::Request {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            body: req.body,
            base_url: req.ctx.base_url,
            policy: req.ctx.policy,
        };
        let resp = crate::http::handle(&STORE, &request);
        if resp.status >= 500 {
            log::emit(
                log::Level::Warn,
                &format!(
                    "{} {} answered {}",
                    request.method, request.path, resp.status
                ),
            );
        }
        handler::Response {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        }
    }
}
