//! The tenant-scoped, ordered key-value store the guest persists through (WIT `store`): the
//! contract itself is the `scimlet-store` crate, shared with the host; this module adds what a
//! store failure means to a SCIM client.

pub use scimlet_store::*;

use crate::model::error::ScimError;

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ScimError::new(
                409,
                None,
                "the resource was changed concurrently; retry the request",
            ),
            StoreError::Unavailable(m) => {
                ScimError::unavailable(format!("storage unavailable: {m}"))
            }
            StoreError::Invalid(m) => ScimError::internal(format!("storage rejected a call: {m}")),
        }
    }
}
