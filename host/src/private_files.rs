//! The data directory holds every provisioned person's name and email address, the tenants'
//! token hashes and the audit log: only the service's own user may read it. Directories the
//! host creates are `0700` and its files `0600`, whatever the process's umask; an existing
//! directory or database that other users can read is reported by [`exposure`] so that the
//! operator is warned at start (it is not changed behind their back: they may share it with a
//! group on purpose).
//!
//! SQLite creates its `-wal` and `-shm` files with the database file's permissions, so a
//! database file created private keeps its journal private too.

use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, each private to the current user.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty and private to the current user unless it exists; leaves an existing
/// file as it is.
pub fn create_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to a new private file at `path`, replacing any file there.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    io::Write::write_all(&mut options.open(path)?, bytes)
}

/// The permission bits of `path` when users other than its owner may access it (`0o755`
/// for a world-readable directory), `None` when it is private or does not exist.
pub fn exposure(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_directories_and_files_are_private_and_open_ones_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("data");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700, "parents too");
        let db = dir.join("scimlet.db");
        create_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::write(&db, b"kept").unwrap();
        create_file(&db).unwrap();
        assert_eq!(
            std::fs::read(&db).unwrap(),
            b"kept",
            "an existing file is kept"
        );
        write_file(&dir.join("x.cwasm"), b"code").unwrap();
        assert_eq!(mode(&dir.join("x.cwasm")), 0o600);
        assert_eq!(exposure(&dir), None);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(exposure(&dir), Some(0o755));
        assert_eq!(exposure(&root.path().join("missing")), None);
    }
}
