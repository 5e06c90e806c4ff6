//! The responses for failures the host detects itself (no token, body too large, rate limit,
//! a component fault...). Their SCIM text is the component's (WIT `operator.render-error`):
//! rendered once at load, so that serving them needs no instance — an overloaded server can
//! still say that it is overloaded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::bindings::exports::scimlet::scim::operator::HostFailure as Wit;
use super::{GuestFault, Runtime};

/// A failure the host detects before or instead of the component's `handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostFailure {
    /// The path is not below the SCIM base URL (404).
    NotAnEndpoint,
    /// No bearer token came with the request (401).
    MissingToken,
    /// The bearer token is unknown or revoked (401).
    InvalidToken,
    /// The request body exceeds the route's limit, in bytes (413).
    PayloadTooLarge(u64),
    /// The request body did not arrive within the request timeout (408).
    BodyTimeout,
    /// The request body could not be read (400).
    UnreadableBody,
    /// The tenant exceeded its request rate (429).
    RateLimited,
    /// No request slot is free (503).
    AtCapacity,
    /// The request did not finish within the request timeout (503).
    TimedOut,
    /// The host's storage failed (503).
    StorageUnavailable,
    /// The component used up its CPU time budget (503).
    ComponentTimeout,
    /// The component used up its memory budget (503).
    ComponentOutOfMemory,
    /// The component failed (500).
    ComponentFailed,
}

/// Every failure without a parameter: rendered when the component is loaded.
const FIXED: [HostFailure; 12] = [
    HostFailure::NotAnEndpoint,
    HostFailure::MissingToken,
    HostFailure::InvalidToken,
    HostFailure::BodyTimeout,
    HostFailure::UnreadableBody,
    HostFailure::RateLimited,
    HostFailure::AtCapacity,
    HostFailure::TimedOut,
    HostFailure::StorageUnavailable,
    HostFailure::ComponentTimeout,
    HostFailure::ComponentOutOfMemory,
    HostFailure::ComponentFailed,
];

impl HostFailure {
    fn to_wit(self) -> Wit {
        match self {
            HostFailure::NotAnEndpoint => Wit::NotAnEndpoint,
            HostFailure::MissingToken => Wit::MissingToken,
            HostFailure::InvalidToken => Wit::InvalidToken,
            HostFailure::PayloadTooLarge(n) => Wit::PayloadTooLarge(n),
            HostFailure::BodyTimeout => Wit::BodyTimeout,
            HostFailure::UnreadableBody => Wit::UnreadableBody,
            HostFailure::RateLimited => Wit::RateLimited,
            HostFailure::AtCapacity => Wit::AtCapacity,
            HostFailure::TimedOut => Wit::TimedOut,
            HostFailure::StorageUnavailable => Wit::StorageUnavailable,
            HostFailure::ComponentTimeout => Wit::ComponentTimeout,
            HostFailure::ComponentOutOfMemory => Wit::ComponentOutOfMemory,
            HostFailure::ComponentFailed => Wit::ComponentFailed,
        }
    }
}

/// A complete error response as the component rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (`content-type`, `www-authenticate`...).
    pub headers: Vec<(String, String)>,
    /// The SCIM `Error` document.
    pub body: Bytes,
}

/// The rendered pages: the fixed ones from load on, a 413 per limit on first use.
#[derive(Default)]
pub(super) struct Pages {
    rendered: Mutex<HashMap<HostFailure, Arc<ErrorPage>>>,
}

impl Pages {
    pub(super) fn render(runtime: &Runtime) -> Result<Pages, GuestFault> {
        let mut rendered = HashMap::new();
        for failure in FIXED {
            rendered.insert(failure, Arc::new(render(runtime, failure)?));
        }
        Ok(Pages {
            rendered: Mutex::new(rendered),
        })
    }

    fn get(&self, failure: HostFailure) -> Option<Arc<ErrorPage>> {
        self.rendered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&failure)
            .cloned()
    }
}

fn render(runtime: &Runtime, failure: HostFailure) -> Result<ErrorPage, GuestFault> {
    let page = runtime.tenantless(|w| {
        w.plugin
            .scimlet_scim_operator()
            .call_render_error(&mut w.store, failure.to_wit())
    })?;
    Ok(ErrorPage {
        status: page.status,
        headers: page.headers,
        body: Bytes::from(page.body),
    })
}

impl Runtime {
    /// The component's error response for `failure`. A page not rendered yet (a 413 for a new
    /// limit) is rendered now; should that fail, the component-failure page stands in.
    pub fn error_page(&self, failure: HostFailure) -> Arc<ErrorPage> {
        if let Some(page) = self.pages.get(failure) {
            return page;
        }
        match render(self, failure) {
            Ok(page) => {
                let page = Arc::new(page);
                self.pages
                    .rendered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(failure, page.clone());
                page
            }
            Err(fault) => {
                tracing::error!("the component could not render the {failure:?} page: {fault}");
                self.pages
                    .get(HostFailure::ComponentFailed)
                    .expect("rendered at load")
            }
        }
    }
}
