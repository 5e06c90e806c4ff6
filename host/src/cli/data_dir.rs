//! The data directory of the CLI and the server: created private, and an operator warned when
//! an existing one lets other users read the provisioned people's data.

use std::path::Path;

use anyhow::Context;
use scimlet::private_files;
use scimlet::store::sqlite::SqliteBackend;

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
