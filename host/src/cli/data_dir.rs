//! Where the CLI and the server keep their data: the SQLite store in the data directory
//! (created private, and an operator warned when an existing one lets other users read the
//! provisioned people's data) or a PostgreSQL database. One place opens either.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use scimlet::config::StoreKind;
use scimlet::private_files;
use scimlet::store::memory::MemoryBackend;
use scimlet::store::postgres::{PgOptions, PostgresBackend};
use scimlet::store::sqlite::SqliteBackend;
use scimlet::store::Backend;

/// Opens the store `kind`: SQLite in `data`, PostgreSQL at `database_url` (tuned by `pg`), or
/// a fresh memory store.
pub fn open_store(
    kind: StoreKind,
    data: &Path,
    database_url: Option<&str>,
    pg: PgOptions,
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match kind {
        StoreKind::Sqlite => Arc::new(open(data)?),
        StoreKind::Postgres => {
            let Some(url) = database_url else {
                bail!("--store postgres needs --database-url (or SCIMLET_DATABASE_URL)");
            };
            Arc::new(PostgresBackend::open(url, pg).context("open the PostgreSQL store")?)
        }
        StoreKind::Memory => Arc::new(MemoryBackend::new()),
    })
}

/// Opens the SQLite store `scimlet.db` in `data`, creating both (private) if needed.
pub fn open(data: &Path) -> anyhow::Result<SqliteBackend> {
    private_files::create_dir(data)
        .with_context(|| format!("create data dir {}", data.display()))?;
    let db = data.join("scimlet.db");
    for path in [data, db.as_path()] {
        if let Some(mode) = private_files::exposure(path) {
            tracing::warn!(
                "{} is accessible to other users (mode {mode:o}); it holds provisioned \
                 people's names and emails: run `chmod -R go= {}`",
                path.display(),
                data.display()
            );
        }
    }
    SqliteBackend::open(&db).with_context(|| format!("open {}", db.display()))
}
