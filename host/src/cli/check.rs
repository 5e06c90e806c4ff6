//! `scimlet check`: verifies every tenant's store invariants with the component's own checker
//! (`operator.check`), run over the same tenant-scoped storage the component serves from.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use scimlet::config::StoreKind;
use scimlet::runtime::{GuestFault, Runtime};
use scimlet::store::{Backend, StoreError, Tenant};

use super::DataArgs;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no scimlet store at {0} (expected scimlet.db inside)")]
    NoStore(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Open(String),
    #[error("the check could not run: {0}")]
    Component(#[from] GuestFault),
    #[error("store invariants do not hold: {problems} problem(s) in {tenants} tenant(s)")]
    Failed { tenants: usize, problems: usize },
}

/// Checks every tenant of the store `data` selects, printing a report; fails if any problem
/// is found.
pub fn run(runtime: &Runtime, data: &DataArgs) -> Result<(), CheckError> {
    let sqlite = matches!(data.store, None | Some(StoreKind::Sqlite));
    if sqlite && !data.data.join("scimlet.db").is_file() {
        return Err(CheckError::NoStore(data.data.clone()));
    }
    let backend = data
        .open()
        .map_err(|e| CheckError::Open(format!("{e:#}")))?;
    check_backend(runtime, &backend)
}

/// Checks every tenant of `backend`, printing a report; fails if any problem is found.
pub fn check_backend(runtime: &Runtime, backend: &Arc<dyn Backend>) -> Result<(), CheckError> {
    let (mut tenants, mut problems) = (0, 0);
    for tenant in backend.tenants()? {
        let found = confirmed_problems(runtime, backend, &tenant)?;
        if found.is_empty() {
            println!("tenant '{}' ({}): ok", tenant.name, tenant.id);
            continue;
        }
        println!(
            "tenant '{}' ({}): {} problem(s)",
            tenant.name,
            tenant.id,
            found.len()
        );
        for p in &found {
            println!("  - {p}");
        }
        tenants += 1;
        problems += found.len();
    }
    if problems > 0 {
        return Err(CheckError::Failed { tenants, problems });
    }
    Ok(())
}

/// The problems one pass finds that a second pass finds again. A running server may commit
/// between the checker's scans (they are not one snapshot), which can look like a problem once;
/// a real inconsistency is still there on the second look.
fn confirmed_problems(
    runtime: &Runtime,
    backend: &Arc<dyn Backend>,
    tenant: &Tenant,
) -> Result<Vec<String>, GuestFault> {
    let first = runtime.check(backend, tenant)?;
    if first.is_empty() {
        return Ok(first);
    }
    let again: BTreeSet<String> = runtime.check(backend, tenant)?.into_iter().collect();
    Ok(first.into_iter().filter(|p| again.contains(p)).collect())
}
