//! Time stamps and identifiers.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC time stamp with milliseconds, e.g. `2026-11-28T19:17:32.123Z`. The calendar
/// arithmetic is the `time` crate's; the layout is written out here because `time`'s own RFC 3339
/// formatter drops a zero fraction and trims trailing zeros, and stored `meta` values keep exactly
/// three digits. Instants past what `time` represents (year 9999) saturate to its last instant.
pub fn rfc3339(millis: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or_else(|_| PrimitiveDateTime::MAX.assume_utc());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A new resource id: a UUIDv7 (time-ordered, so key order is creation order and listing pages
/// stay stable while resources are added).
pub fn new_id() -> String {
    let mut rand = [0u8; 8];
    if getrandom::fill(&mut rand).is_err() {
        // Without entropy we still need unique ids; the time and a process-local counter are.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        rand = COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // RFC 9562 §6.2 method 3: 12 bits of sub-millisecond time, so ids made in one millisecond
    // still sort in creation order.
    let sub_ms = ((nanos % 1_000_000) * 4096 / 1_000_000) as u16;
    uuid_v7((nanos / 1_000_000) as u64, sub_ms, rand)
}

/// The UUIDv7 of a millisecond time, 12 bits of sub-millisecond time (`rand_a`) and 62 random
/// bits (`rand_b`, the top two bits of `rand` give way to the variant).
fn uuid_v7(millis: u64, sub_ms: u16, rand: [u8; 8]) -> String {
    let mut counter_random = [0u8; 10];
    counter_random[..2].copy_from_slice(&sub_ms.to_be_bytes());
    counter_random[2..].copy_from_slice(&rand);
    uuid::Builder::from_unix_timestamp_millis(millis, &counter_random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to a UTC (seconds since the epoch, nanoseconds)
/// pair, which orders like the instants themselves. `time`'s RFC 3339 parser does the work (digits
/// beyond nanoseconds are truncated; a leap second, `23:59:60` at the end of a month, reads as
/// `23:59:59.999999999`); it takes any character between date and time, and SCIM's `dateTime`
/// (RFC 7643 §2.3.5, xsd:dateTime) wants a `T`, so that one is checked here.
pub fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    if !text
        .as_bytes()
        .get(10)
        .is_some_and(|c| c.eq_ignore_ascii_case(&b'T'))
    {
        return None;
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((t.unix_timestamp(), t.nanosecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn ids_are_unique_uuids() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
    }

    #[test]
    fn uuid_v7_layout() {
        // 48 bits of milliseconds, version 7, 12 bits of sub-millisecond time, variant 0b10 over
        // the top of the random bytes: the layout the ids in existing stores have.
        assert_eq!(
            uuid_v7(0x0123_4567_89ab, 0xabc, [0xff, 1, 2, 3, 4, 5, 6, 7]),
            "01234567-89ab-7abc-bf01-020304050607"
        );
        assert_eq!(
            uuid_v7(0, 0, [0; 8]),
            "00000000-0000-7000-8000-000000000000"
        );
    }

    #[test]
    fn parses_rfc3339_edge_cases() {
        assert_eq!(
            parse_rfc3339("2011-05-13t04:42:34z"),
            Some((1_305_261_754, 0))
        );
        assert_eq!(
            parse_rfc3339("2011-05-13T06:42:34+02:00"),
            Some((1_305_261_754, 0))
        );
        assert_eq!(
            parse_rfc3339("0000-01-01T00:00:00Z").map(|t| t.0),
            Some(-62_167_219_200)
        );
        for bad in [
            "",
            "2011-05-13",
            "2011-05-13X04:42:34Z",
            "2011-05-13T04:42:34+24:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
