//! `scimlet events`: a tenant's change feed as JSON lines, read from the data directory (a
//! running server may be committing to the same store meanwhile).

use std::io::Write;

use anyhow::Context;
use scimlet::events::feed::{self, Feed};

use super::DataArgs;

/// Prints the events after `after` (from the oldest kept when absent), at most `limit` in all;
/// with `follow`, then keeps polling for new ones until interrupted (or `limit` is reached).
pub fn events(
    tenant: &str,
    after: Option<&str>,
    limit: Option<u64>,
    follow: bool,
    data: &DataArgs,
) -> anyhow::Result<()> {
    let backend = data.open()?;
    let feed = Feed::new(backend);
    let mut cursor = Feed::parse_cursor(after.unwrap_or_default()).context("--after")?;
    let mut left = limit.unwrap_or(u64::MAX);
    if left == 0 {
        anyhow::bail!("--limit must be at least 1");
    }
    let stdout = std::io::stdout();
    loop {
        let want = usize::try_from(left.min(feed::MAX_LIMIT as u64)).unwrap_or(feed::MAX_LIMIT);
        let page = feed.page(tenant, cursor, want)?;
        let mut out = stdout.lock();
        for event in &page.events {
            if writeln!(out, "{}", event.to_json(&page.tenant)).is_err() {
                // The reader went away (`| head`): nothing left to do.
                return Ok(());
            }
        }
        if out.flush().is_err() {
            return Ok(());
        }
        drop(out);
        left -= page.events.len() as u64;
        cursor = page.next_cursor;
        if left == 0 {
            return Ok(());
        }
        if !page.has_more {
            if !follow {
                return Ok(());
            }
            // Commits by a server in another process reach this one only through the file.
            std::thread::sleep(feed::RECHECK);
        }
    }
}
