//! Change events: the feed of every provisioning change, per tenant, in commit order.
//!
//! The component reports each commit's events (WIT `store.event`: kind, resource, previous
//! values); the host gives each an id and the request's id, and the backend stores them in the
//! same transaction as the commit's writes, numbered by the commit's sequence number and the
//! event's index in it. A tenant's commits are serialised by the backend, so a commit becomes
//! visible only after every earlier one: a reader that has seen an event has seen every earlier
//! event of the tenant, and a [`Cursor`] is a complete position in the feed.

pub mod feed;
pub mod retention;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use tokio::sync::watch;

pub use feed::{Feed, FeedError, FeedPage};
pub use scimlet_store::{Event, EventKind};

/// An event as a commit hands it to the backend: the component's event, its id and the id of
/// the request that made the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `evt_` + 32 hex characters, unique; stable once committed.
    pub id: String,
    /// The request (`x-request-id`) or operator action that made the change.
    pub request_id: String,
    /// What the component reported.
    pub event: Event,
}

impl NewEvent {
    /// A new event id: `evt_` + 128 random bits in hex.
    pub fn new_id() -> String {
        format!("evt_{:032x}", rand::random::<u128>())
    }
}

/// A position in a tenant's feed: the commit's sequence number and the event's index in it.
/// Shown to consumers as an opaque string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    /// The commit's sequence number.
    pub seq: u64,
    /// The event's index within its commit.
    pub index: u32,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:08x}", self.seq, self.index)
    }
}

/// A cursor that is not one this host hands out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an event cursor (use the next_cursor or cursor of an event)")]
pub struct BadCursor(pub String);

impl FromStr for Cursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCursor(s.chars().take(64).collect());
        if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let seq = u64::from_str_radix(&s[..16], 16).map_err(|_| bad())?;
        let index = u32::from_str_radix(&s[16..], 16).map_err(|_| bad())?;
        Ok(Cursor { seq, index })
    }
}

/// A stored event, as the feed answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position in the tenant's feed.
    pub cursor: Cursor,
    /// `evt_…`, stable: the `webhook-id` of its deliveries.
    pub id: String,
    /// What changed.
    pub kind: EventKind,
    /// When the commit happened, Unix milliseconds.
    pub time_ms: i64,
    /// The request or operator action that made the change.
    pub request_id: String,
    /// The resource, a JSON object.
    pub data: String,
    /// Changed attribute paths with their previous values, a JSON object (updates only).
    pub previous: Option<String>,
}

impl StoredEvent {
    /// The event as consumers see it (events API, webhooks, `scimlet events`): one JSON object.
    pub fn to_json(&self, tenant: &str) -> Value {
        let raw = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let mut out = serde_json::json!({
            "id": self.id,
            "type": self.kind.name(),
            "tenant": tenant,
            "time": rfc3339_millis(self.time_ms),
            "cursor": self.cursor.to_string(),
            "request_id": self.request_id,
            "data": raw(&self.data),
        });
        if let Some(p) = &self.previous {
            out["previous"] = raw(p);
        }
        out
    }
}

impl StoredEvent {
    /// [`StoredEvent::to_json`] serialised, built without parsing the stored payloads: the
    /// envelope's fields are written (and escaped) here and `data` and `previous` are copied as
    /// stored, so the bytes are those `serde_json` writes for [`StoredEvent::to_json`]. A payload
    /// that is not JSON is written `null`, as [`StoredEvent::to_json`] shows it.
    pub fn write_json(&self, tenant: &str, out: &mut Vec<u8>) {
        out.reserve(self.data.len() + self.previous.as_ref().map_or(0, String::len) + 256);
        out.extend_from_slice(b"{\"id\":");
        json_string(out, &self.id);
        out.extend_from_slice(b",\"type\":");
        json_string(out, self.kind.name());
        out.extend_from_slice(b",\"tenant\":");
        json_string(out, tenant);
        out.extend_from_slice(b",\"time\":");
        json_string(out, &rfc3339_millis(self.time_ms));
        out.extend_from_slice(b",\"cursor\":");
        json_string(out, &self.cursor.to_string());
        out.extend_from_slice(b",\"request_id\":");
        json_string(out, &self.request_id);
        out.extend_from_slice(b",\"data\":");
        json_raw(out, &self.data);
        if let Some(p) = &self.previous {
            out.extend_from_slice(b",\"previous\":");
            json_raw(out, p);
        }
        out.push(b'}');
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail, nor can serialising a string.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A stored JSON text as is, once checked to be one JSON value (a scan that builds nothing).
fn json_raw(out: &mut Vec<u8>, text: &str) {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// `2026-12-01T08:00:00.123Z`.
pub fn rfc3339_millis(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Wakes the readers of a backend's feeds when a commit stored events (long polls, webhook
/// delivery). Only a hint within this process: readers also look again on their own, so a
/// commit made by another process on the same store is found too.
#[derive(Debug)]
pub struct EventSignal {
    tx: watch::Sender<u64>,
}

impl Default for EventSignal {
    fn default() -> Self {
        EventSignal {
            tx: watch::Sender::new(0),
        }
    }
}

impl EventSignal {
    /// Tells every subscriber that some tenant's feed grew.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }
    /// A receiver that sees each later [`EventSignal::notify`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order() {
        let a = Cursor { seq: 7, index: 0 };
        let b = Cursor { seq: 7, index: 3 };
        let c = Cursor { seq: 8, index: 0 };
        assert!(a < b && b < c);
        for x in [a, b, c] {
            assert_eq!(x.to_string().parse::<Cursor>(), Ok(x));
        }
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
        for bad in [
            "",
            "xyz",
            "00000000000000070000000g",
            "0000000000000007000000000",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn events_render_with_raw_payloads() {
        let e = StoredEvent {
            cursor: Cursor { seq: 1, index: 2 },
            id: "evt_1".into(),
            kind: EventKind::GroupMemberAdded,
            time_ms: 1_764_576_000_123,
            request_id: "r1".into(),
            data: r#"{"group":{"id":"g"},"user":{"id":"u"}}"#.into(),
            previous: None,
        };
        let j = e.to_json("acme");
        assert_eq!(j["type"], "group.member_added");
        assert_eq!(j["data"]["user"]["id"], "u");
        assert_eq!(j["cursor"], "000000000000000100000002");
        assert_eq!(j["time"], "2025-12-01T08:00:00.123Z");
        assert!(j.get("previous").is_none());
    }

    /// The body webhooks send is built by splicing the stored payloads into the envelope: it
    /// must be, byte for byte, what serialising the parsed event gave.
    #[test]
    fn spliced_events_equal_their_serialised_json() {
        let user = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223", "userName": "zoë\"o'brien\\x@example.com\u{1}",
            "name": {"givenName": "Zoë", "familyName": "O\u{2028}Brien"},
            "emails": [{"value": "z@example.com", "primary": true}],
            "active": false, "weight": 1.5e300, "n": -12,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "meta": {"resourceType": "User", "version": "W/\"3\"", "location": "https://h/Users/2819c223"}
        });
        let base = StoredEvent {
            cursor: Cursor {
                seq: u64::MAX,
                index: 7,
            },
            id: "evt_0123456789abcdef0123456789abcdef".into(),
            kind: EventKind::UserDeactivated,
            time_ms: 1_764_576_000_123,
            request_id: "req \"quoted\" \n\t é".into(),
            data: user.to_string(),
            previous: Some(r#"{"active":true,"name.givenName":null}"#.into()),
        };
        let cases = [
            base.clone(),
            StoredEvent {
                previous: None,
                kind: EventKind::GroupMemberAdded,
                data: r#"{"group":{"id":"g","displayName":"Ops"},"user":{"id":"u"}}"#.into(),
                ..base.clone()
            },
            StoredEvent {
                // Not what a commit stores; shown as to_json shows it.
                data: "{not json".into(),
                previous: Some("[1,2".into()),
                ..base.clone()
            },
        ];
        for tenant in ["acme", "odd\"tenant\\"] {
            for e in &cases {
                let mut spliced = Vec::new();
                e.write_json(tenant, &mut spliced);
                let serialised = serde_json::to_vec(&e.to_json(tenant)).unwrap();
                assert_eq!(
                    String::from_utf8(spliced).unwrap(),
                    String::from_utf8(serialised).unwrap()
                );
            }
        }
    }
}
