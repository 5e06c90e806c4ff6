//! A response body the component hands out in chunks (WIT `body-stream`): a group with a
//! million members, a page of groups with their members. The instance that made the response
//! stays checked out until the last chunk, and each chunk is a call of its own under the CPU
//! budget, so neither the guest's memory nor one call's time bounds a response's size.

use wasmtime::component::ResourceAny;

use super::pool::Warm;
use super::{GuestFault, Runtime};
use crate::metrics::GaugeGuard;

/// Why a streamed body could not be completed; the client must see a failed transfer.
#[derive(Debug, thiserror::Error)]
pub enum StreamFailure {
    /// The component reported that it cannot go on (its store failed).
    #[error("the component could not complete the response: {0}")]
    Guest(String),
    /// The component trapped or ran out of a budget.
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

/// The rest of a response body, pulled with [`BodyStream::next_chunk`]. Dropping it before the
/// end (the client went away) releases the instance.
pub struct BodyStream {
    runtime: Runtime,
    /// `None` once finished or failed.
    open: Option<(Warm, ResourceAny)>,
    _in_use: GaugeGuard,
}

impl BodyStream {
    pub(super) fn new(
        runtime: Runtime,
        warm: Warm,
        resource: ResourceAny,
        in_use: GaugeGuard,
    ) -> BodyStream {
        BodyStream {
            runtime,
            open: Some((warm, resource)),
            _in_use: in_use,
        }
    }

    /// The next chunk, or `None` after the last one. Blocking: call it from a blocking thread.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StreamFailure> {
        let Some((warm, resource)) = self.open.take() else {
            return Ok(None);
        };
        let (warm, next) = self.runtime.invoke(warm, |w| {
            w.plugin
                .scimlet_scim_handler()
                .body_stream()
                .call_next_chunk(&mut w.store, resource)
        })?;
        match next {
            Ok(Some(chunk)) => {
                self.open = Some((warm, resource));
                Ok(Some(chunk))
            }
            Ok(None) => {
                self.close(warm, resource);
                Ok(None)
            }
            Err(why) => {
                self.close(warm, resource);
                Err(StreamFailure::Guest(why))
            }
        }
    }

    /// Drops the guest's stream and returns the instance to the pool if that went cleanly.
    fn close(&self, warm: Warm, resource: ResourceAny) {
        if let Ok((warm, ())) = self
            .runtime
            .invoke(warm, |w| resource.resource_drop(&mut w.store))
        {
            self.runtime.release(warm);
        }
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Some((warm, resource)) = self.open.take() {
            self.close(warm, resource);
        }
    }
}
