//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the WAL past
//! `wal_autocheckpoint` pages: that commit copies the WAL into the database file and fsyncs it
//! while it holds the writer, so every commit queued behind it waits (write p99s of 100–300 ms).
//! Here the writer connection turns it off (`wal_autocheckpoint=0`) and a thread per database
//! runs `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own:
//!
//! * when a commit leaves [`THRESHOLD_PAGES`] or more pages in the WAL (the pages are reported by
//!   SQLite's WAL hook on the committing thread, as its automatic checkpoint learns them);
//! * when grouped commits stopped for [`IDLE`] after some since the last checkpoint (writes
//!   outside grouped commits, such as tenant registry changes or event pruning, count in the WAL
//!   size the next grouped commit reports).
//!
//! A PASSIVE checkpoint takes no lock that a commit or a read waits for: it copies the frames no
//! reader still needs and leaves the rest for the next one. Durability does not depend on it: a
//! commit is acknowledged once its WAL frames are on disk (`synchronous=FULL`), and a checkpoint
//! only copies committed frames into the database file (crash recovery replays the WAL). Group
//! commit is untouched. The last connection to close checkpoints the WAL as before.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::pool::connect;
use super::SqliteOptions;
use crate::store::StoreError;

/// WAL pages after a commit that wake the checkpointer: SQLite's own default for its automatic
/// checkpoint (about 4 MB of 4 KiB pages).
pub(super) const THRESHOLD_PAGES: i32 = 1000;

/// How long without a grouped commit before the checkpointer catches up anyway.
pub(super) const IDLE: Duration = Duration::from_millis(500);

thread_local! {
    /// Pages in the WAL after the last commit of a writer connection on this thread.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// The WAL hook of the writer connection: it only remembers the size (a plain function, as
/// rusqlite's hook takes; the commit that triggered it reads the value on the same thread).
fn note_wal_pages(_: &Wal, pages: std::os::raw::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|c| c.set(pages));
    Ok(())
}

/// Turns off the automatic checkpoint of a writer connection and installs the WAL hook instead
/// (in that order: `wal_autocheckpoint` replaces any hook).
pub(super) fn take_over(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.wal_hook(Some(note_wal_pages));
    Ok(())
}

/// The WAL pages reported by this thread's last commit since the previous call (0 if none).
pub(super) fn take_wal_pages() -> i32 {
    WAL_PAGES.with(|c| c.replace(0))
}

/// The background checkpointer of one database; stops (and joins its thread) on drop.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// A commit left the WAL past the threshold.
    due: bool,
    /// Grouped commits were reported since the last checkpoint.
    dirty: bool,
    /// When the last grouped commit was reported.
    last_commit: Instant,
    /// Checkpoints run so far (tests).
    runs: u64,
    stop: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Plain flags: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Checkpointer {
    /// Starts the checkpointer of the database at `path`; its connection opens on first use.
    pub(super) fn start(path: PathBuf, options: SqliteOptions) -> Result<Checkpointer, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                due: false,
                dirty: false,
                last_commit: Instant::now(),
                runs: 0,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("scimlet-checkpoint".into())
            .spawn(move || run(&theirs, &path, &options))
            .map_err(|e| StoreError::Unavailable(format!("checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// A grouped commit happened and left `wal_pages` pages in the WAL.
    pub(super) fn committed(&self, wal_pages: i32) {
        let mut state = self.shared.state();
        state.last_commit = Instant::now();
        state.dirty = true;
        if wal_pages >= THRESHOLD_PAGES && !state.due {
            state.due = true;
            drop(state);
            self.shared.wake.notify_one();
        }
    }

    /// Checkpoints run so far.
    #[cfg(test)]
    pub(super) fn runs(&self) -> u64 {
        self.shared.state().runs
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, path: &std::path::Path, options: &SqliteOptions) {
    let mut conn: Option<Connection> = None;
    let mut state = shared.state();
    loop {
        if state.stop {
            return;
        }
        let idle = state.dirty && state.last_commit.elapsed() >= IDLE;
        if !state.due && !idle {
            state = shared
                .wake
                .wait_timeout(state, IDLE)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        state.due = false;
        state.dirty = false;
        drop(state);
        if conn.is_none() {
            match connect(path, options, false) {
                Ok(c) => conn = Some(c),
                Err(e) => tracing::warn!("WAL checkpoint: cannot open the database: {e}"),
            }
        }
        if let Some(c) = &conn {
            if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!("WAL checkpoint failed: {e}");
            }
        }
        state = shared.state();
        state.runs += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteBackend;
    use crate::store::{Backend, Write};

    /// A commit never copies the WAL into the database file itself: SQLite's automatic
    /// checkpoint is off on the writer.
    #[test]
    fn the_writer_does_not_checkpoint_inside_its_commits() {
        let b = SqliteBackend::open_in_memory().unwrap();
        let writer = b.writer().unwrap();
        let pages: i64 = writer
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(pages, 0);
    }

    /// The WAL is still copied into the database file (it does not grow without bound), by
    /// the background checkpointer, and what was committed reads back.
    #[test]
    fn the_wal_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let b = SqliteBackend::open(&path).unwrap();
        let value = vec![7u8; 64 << 10];
        // About 16 pages a commit: well past the threshold.
        for i in 0..400 {
            b.commit("t", &[], &[Write::Put(format!("k{i:04}"), value.clone())])
                .unwrap();
        }
        let mut waited = 0;
        while b.checkpointer.runs() == 0 && waited < 600 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            waited += 1;
        }
        assert!(b.checkpointer.runs() > 0, "no checkpoint ran in 30 s");
        let db_bytes = std::fs::metadata(&path).unwrap().len();
        assert!(
            db_bytes > 4 << 20,
            "the database file holds checkpointed pages ({db_bytes} bytes)"
        );
        assert_eq!(b.count("t", "k", "l").unwrap(), 400);
        assert_eq!(b.get("t", "k0399").unwrap().unwrap().value, value);
    }
}
