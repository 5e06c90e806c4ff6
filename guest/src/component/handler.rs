//! The `handler` export: one SCIM HTTP request in, one response out.

use super::bindings::exports::scimlet::scim::handler;
use super::bindings::scimlet::scim::log;
use super::{forward_diagnostics, Component, HostStore};

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
