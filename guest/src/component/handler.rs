//! The `handler` export: one SCIM HTTP request in, one response out, a large body as a
//! `body-stream` resource that the host pulls chunk by chunk.

use std::cell::RefCell;

use super::bindings::exports::scimlet::scim::handler;
use super::bindings::scimlet::scim::log;
use super::{host_store, Component};
use crate::protocol::body::Body;

/// The rest of a streamed body. The host calls `next-chunk` through a shared handle, hence the
/// cell; it is never borrowed twice, as a component instance runs one call at a time.
pub(crate) struct Rest(RefCell<Box<dyn crate::protocol::body::BodyStream>>);

impl handler::GuestBodyStream for Rest {
    fn next_chunk(&self) -> Result<Option<Vec<u8>>, String> {
        let chunk = self.0.borrow_mut().next_chunk();
        if let Err(e) = &chunk {
            log::emit(log::Level::Warn, &format!("a streamed body failed: {e}"));
        }
        chunk
    }
}

impl handler::Guest for Component {
    type BodyStream = Rest;

    fn large_body_routes() -> Vec<handler::LargeBodyRoute> {
        crate::protocol::http::large_body_routes()
            .iter()
            .map(|r| handler::LargeBodyRoute {
                method: r.method.into(),
                endpoint: r.endpoint.into(),
            })
            .collect()
    }

    fn handle(req: handler::Request) -> handler::Response {
        // The store is a static, so a streamed body may outlive the call.
        let store = host_store();
        let request = crate::protocol::http::Request {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            body: req.body,
            base_url: req.ctx.base_url,
            policy: req.ctx.policy,
        };
        let resp = crate::protocol::http::handle(store, &request);
        if resp.status >= 500 {
            log::emit(
                log::Level::Warn,
                &format!(
                    "{} {} answered {}",
                    request.method, request.path, resp.status
                ),
            );
        }
        let (body, rest) = match resp.body {
            Body::Bytes(b) => (b, None),
            Body::Stream { first, rest } => (
                first,
                Some(handler::BodyStream::new(Rest(RefCell::new(rest)))),
            ),
        };
        handler::Response {
            status: resp.status,
            headers: resp.headers,
            body,
            rest,
            audit: resp.audit,
        }
    }
}
