//! When a failed delivery is tried again: an exponential schedule with jitter, `Retry-After`
//! when the receiver sends one, and giving up after about three days of failures.

use std::time::Duration;

/// Delays before the 1st, 2nd, … retry (before jitter); later retries wait the last one.
const SCHEDULE: [Duration; 10] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
];

/// The longest wait between two attempts, `Retry-After` included.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 3600);

/// An endpoint failing for this long is disabled (about three days).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(72 * 3600);

/// The delay before retry number `attempt` (1 after the first failure): the schedule's, or
/// [`MAX_DELAY`] past its end, spread by ±20 % (`jitter` in `[0, 1)`) so that endpoints that
/// failed together do not retry together.
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let i = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
    let base = SCHEDULE.get(i).copied().unwrap_or(MAX_DELAY);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// The delay a receiver asked for: `Retry-After` in seconds or as an HTTP date, at most
/// [`MAX_DELAY`]; `None` if absent or unreadable.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let asked = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate(value)?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(asked.min(MAX_DELAY))
}

fn httpdate(value: &str) -> Option<std::time::SystemTime> {
    // `Sun, 06 Nov 1994 08:49:37 GMT`, the only form RFC 9110 lets senders use.
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format).ok()?;
    let secs = u64::try_from(at.assume_utc().unix_timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The delay before the next attempt and whether to give up instead: after `attempts`
/// failures, the first of which was `failing_for` ago.
pub fn next(
    attempts: u32,
    failing_for: Duration,
    asked: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let wait = asked.unwrap_or_else(|| delay(attempts, jitter));
    (failing_for + wait <= GIVE_UP_AFTER).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_is_jittered_and_gives_up_after_about_three_days() {
        assert_eq!(delay(1, 0.5), Duration::from_secs(5));
        assert_eq!(delay(1, 0.0), Duration::from_secs(4));
        assert_eq!(delay(1, 0.999_999).as_secs(), 5, "at most +20 %: 6 s");
        assert!(delay(2, 0.5) > delay(1, 0.5));
        assert_eq!(delay(40, 0.5), MAX_DELAY);
        // Failing all along with the middle jitter: retries until about three days have
        // passed, then gives up.
        let (mut failing_for, mut attempts) = (Duration::ZERO, 0);
        loop {
            attempts += 1;
            match next(attempts, failing_for, None, 0.5) {
                Some(wait) => failing_for += wait,
                None => break,
            }
        }
        assert!(
            failing_for > Duration::from_secs(60 * 3600),
            "{failing_for:?}"
        );
        assert!(failing_for <= GIVE_UP_AFTER);
        assert!((14..=20).contains(&attempts), "{attempts}");
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("99999999", now), Some(MAX_DELAY));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(
            next(1, Duration::ZERO, Some(Duration::from_secs(1)), 0.5),
            Some(Duration::from_secs(1))
        );
        assert_eq!(next(3, GIVE_UP_AFTER, None, 0.5), None);
    }
}
