//! Storage backends of the host: the tenant-scoped key-value space behind the guest's `store`
//! interface, and the tenant registry (tenants, policies, hashed bearer tokens).
//!
//! Every key-value call takes the tenant id first; the host fills it in from the resolved bearer
//! token, so the guest never names a tenant. Backends do not check that the tenant exists on
//! key-value calls: the host only ever passes ids it resolved from the registry.

pub mod memory;
mod positions;
pub mod postgres;
pub mod sqlite;
mod tenant_view;
pub mod webhooks;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::events::{Cursor, EventSignal, NewEvent, StoredEvent};

/// The key-value types are the store contract's, shared with the guest: one definition.
pub use scimlet_store::{Check, Entry, Scan, Write};
pub use tenant_view::TenantStore;
pub use webhooks::WebhookStore;

/// Why a backend call failed: the contract's key-value failures, plus the registry's own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A commit's check did not hold: nothing was written.
    #[error("conflict")]
    Conflict,
    /// The storage itself failed (I/O, a lock held too long, a corrupt file): why.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The call was malformed (a bad key, range, name or policy): what.
    #[error("invalid: {0}")]
    Invalid(String),
    /// No such tenant or token: which.
    #[error("not found: {0}")]
    NotFound(String),
    /// The name or token is taken: which.
    #[error("already exists: {0}")]
    AlreadyExists(String),
}

/// A tenant of the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// `t_` + 16 random hex characters.
    pub id: String,
    /// Unique; never shaped like an id.
    pub name: String,
    /// A JSON object.
    pub policy: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// A bearer token's metadata; the token itself is never stored, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// `k_` + 16 hex characters; shown to operators, not secret.
    pub id: String,
    /// The tenant the token authenticates as.
    pub tenant_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// A revoked token authenticates no more.
    pub revoked: bool,
}

/// A bearer token as the registry keeps it: its metadata and the SHA-256 hash of the token.
/// Read and written only to move a deployment (`scimlet copy`), so that tokens keep working.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    /// Id, tenant, creation time, revoked.
    pub info: TokenInfo,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
}

/// Storage for every tenant. Implementations are cheap to share (`Arc<dyn Backend>`), blocking,
/// and safe to call from many threads at once.
pub trait Backend: Send + Sync + 'static {
    /// The entry at `key`, if any.
    fn get(&self, tenant: &str, key: &str) -> Result<Option<Entry>, StoreError>;
    /// One slot per requested key, in order.
    fn get_many(&self, tenant: &str, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError>;
    /// The entries of `scan.start..scan.end` in key order (or reversed), `scan.skip` skipped,
    /// at most `scan.limit`.
    fn scan(&self, tenant: &str, scan: &Scan) -> Result<Vec<Entry>, StoreError>;
    /// How many keys lie in `start..end`.
    fn count(&self, tenant: &str, start: &str, end: &str) -> Result<u64, StoreError>;
    /// Applies `writes` atomically if every check holds, stores `events` in the same
    /// transaction (after every earlier event of the tenant, at the commit's sequence number
    /// and their index), and answers the commit's sequence number; `Conflict` (and nothing
    /// written) otherwise. A commit without writes changes nothing and answers the current
    /// sequence number; it may carry no events (`Invalid`).
    /// The lists are taken by value: a group replaced with 100 000 members commits 300 000
    /// writes and as many events, which a backend may move instead of copying.
    fn commit_events(
        &self,
        tenant: &str,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<NewEvent>,
    ) -> Result<u64, StoreError>;
    /// [`Backend::commit_events`] without events.
    fn commit(&self, tenant: &str, checks: &[Check], writes: &[Write]) -> Result<u64, StoreError> {
        self.commit_events(tenant, checks.to_vec(), writes.to_vec(), Vec::new())
    }
    /// The tenant's events after `after` (from the oldest kept when `None`), in feed order, at
    /// most `limit`.
    fn events_after(
        &self,
        tenant: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The position of the newest event removed by [`Backend::prune_events`]: a reader
    /// positioned before it has missed events. `None` while nothing was removed.
    fn event_horizon(&self, tenant: &str) -> Result<Option<Cursor>, StoreError>;
    /// The position of the tenant's newest event, `None` while it has none: where a reader
    /// that has just resynced through the SCIM lists continues.
    fn event_head(&self, tenant: &str) -> Result<Option<Cursor>, StoreError>;
    /// The newest position the tenant's feed ever reached: its newest event or, when retention
    /// removed them all, the newest removed. A cursor past it was never handed out; an endpoint
    /// added now starts there.
    fn event_end(&self, tenant: &str) -> Result<Option<Cursor>, StoreError> {
        match self.event_head(tenant)? {
            Some(head) => Ok(Some(head)),
            None => self.event_horizon(tenant),
        }
    }
    /// Removes every tenant's events committed before `before_ms` (Unix milliseconds) and
    /// answers how many went.
    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Notified after each commit that stored events in this process.
    fn event_signal(&self) -> &EventSignal;
    /// `AlreadyExists` if the name is taken, `Invalid` for a bad name or a non-object policy.
    fn create_tenant(&self, name: &str, policy: serde_json::Value) -> Result<Tenant, StoreError>;
    /// Looks a tenant up by id first, then by name.
    fn tenant(&self, name_or_id: &str) -> Result<Option<Tenant>, StoreError>;
    /// Every tenant, ordered by name (bytewise).
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Replaces the tenant's policy; `NotFound` for an unknown tenant, `Invalid` for a
    /// non-object policy.
    fn set_policy(&self, tenant_id: &str, policy: serde_json::Value) -> Result<(), StoreError>;
    /// `NotFound` for an unknown tenant, `AlreadyExists` if the hash is already registered.
    fn add_token(&self, tenant_id: &str, token_hash: [u8; 32]) -> Result<TokenInfo, StoreError>;
    /// The tenant's tokens (revoked ones included), oldest first.
    fn tokens(&self, tenant_id: &str) -> Result<Vec<TokenInfo>, StoreError>;
    /// `NotFound` if the tenant has no such token; revoking twice is not an error.
    fn revoke_token(&self, tenant_id: &str, token_id: &str) -> Result<(), StoreError>;
    /// The tenant owning an active (not revoked) token with this hash.
    fn tenant_for_token(&self, token_hash: &[u8; 32]) -> Result<Option<Tenant>, StoreError>;
    /// The store of webhook endpoints and their delivery state, if this backend keeps them.
    fn webhooks(&self) -> Option<&dyn WebhookStore> {
        None
    }

    // Moving a deployment (`scimlet copy`): raw reads and writes that keep ids, hashes,
    // versions and cursors as they are. Not for serving: they bypass the commit's checks.

    /// The tenant's tokens with their hashes (revoked ones included), oldest first; `NotFound`
    /// for an unknown tenant.
    fn stored_tokens(&self, tenant_id: &str) -> Result<Vec<StoredToken>, StoreError>;
    /// Registers `tenant` as it is (id, name, policy, creation time) with `tokens` as they are;
    /// `AlreadyExists` (and nothing registered) if its id, its name or a token is taken.
    fn restore_tenant(&self, tenant: &Tenant, tokens: &[StoredToken]) -> Result<(), StoreError>;
    /// Writes `entries` with their own versions, replacing what the keys held.
    fn restore_entries(&self, tenant: &str, entries: &[Entry]) -> Result<(), StoreError>;
    /// Stores `events` at their own cursors (ids, times and request ids kept).
    fn restore_events(&self, tenant: &str, events: &[StoredEvent]) -> Result<(), StoreError>;
    /// Raises the tenant's commit sequence to at least `seq` (the source's, which is past every
    /// version and event restored), so that its next commit numbers after them and no version
    /// repeats, and moves its event horizon to `horizon` if that is newer.
    fn restore_sequence(
        &self,
        tenant: &str,
        seq: u64,
        horizon: Option<Cursor>,
    ) -> Result<(), StoreError>;
}

/// Prefix of every bearer token, so that leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "scimlet_";

/// A new bearer token: `scimlet_` followed by 43 characters of unpadded URL-safe base64 of 32
/// bytes from the thread-local CSPRNG (ChaCha12 seeded from the OS).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 43);
    token.push_str(TOKEN_PREFIX);
    base64url_into(&bytes, &mut token);
    token
}

/// SHA-256 of the token as presented; only this hash is ever stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Unpadded URL-safe base64 (RFC 4648 §5).
fn base64url_into(bytes: &[u8], out: &mut String) {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Rejects empty keys, which the store contract calls malformed.
fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid("empty key".into()));
    }
    Ok(())
}

/// Rejects `start > end`; `start == end` is an empty range.
fn check_range(start: &str, end: &str) -> Result<(), StoreError> {
    if start > end {
        return Err(StoreError::Invalid(format!(
            "range start {start:?} is after end {end:?}"
        )));
    }
    Ok(())
}

/// Validates every key a commit names, before any backend starts work.
fn check_commit(checks: &[Check], writes: &[Write], events: &[NewEvent]) -> Result<(), StoreError> {
    if writes.is_empty() && !events.is_empty() {
        return Err(StoreError::Invalid(
            "a commit without writes cannot carry events".into(),
        ));
    }
    for check in checks {
        check_key(&check.key)?;
    }
    for write in writes {
        match write {
            Write::Put(key, _) | Write::Delete(key) => check_key(key)?,
        }
    }
    Ok(())
}

/// Tenant names are `[A-Za-z0-9._-]{1,64}`. Names shaped like a tenant id are refused too, so
/// that `tenant(name_or_id)` can never be ambiguous.
fn check_tenant_name(name: &str) -> Result<(), StoreError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(StoreError::Invalid(format!(
            "tenant name {name:?} must be 1 to 64 of [A-Za-z0-9._-]"
        )));
    }
    if looks_like_tenant_id(name) {
        return Err(StoreError::Invalid(format!(
            "tenant name {name:?} has the shape of a tenant id"
        )));
    }
    Ok(())
}

fn looks_like_tenant_id(s: &str) -> bool {
    s.strip_prefix("t_")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Policies are JSON objects: the guest reads named keys out of them.
fn check_policy(policy: &serde_json::Value) -> Result<(), StoreError> {
    if !policy.is_object() {
        return Err(StoreError::Invalid("policy must be a JSON object".into()));
    }
    Ok(())
}

/// `t_` + 16 hex characters: 64 random bits, unique enough for a registry of tenants.
fn new_tenant_id() -> String {
    format!("t_{:016x}", rand::rng().next_u64())
}

/// `k_` + 16 hex characters; token ids are shown to operators, never secret.
fn new_token_id() -> String {
    format!("k_{:016x}", rand::rng().next_u64())
}

/// Now, Unix seconds (the time stamped on tenants and tokens).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now, Unix milliseconds (the time stamped on events).
pub fn unix_now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Clamps a `u64` skip to what `usize`/SQLite `OFFSET` can express; nothing lies beyond anyway.
fn skip_as_usize(skip: u64) -> usize {
    usize::try_from(skip).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape() {
        let token = generate_token();
        let body = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert_eq!(body.len(), 43);
        assert!(body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(token, generate_token());
        assert_eq!(hash_token(&token), hash_token(&token));
        assert_ne!(hash_token(&token), hash_token(&generate_token()));
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 5] = [
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff, 0xbf], "-_-_"),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            base64url_into(input, &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn hash_token_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        let h = hash_token("abc");
        assert_eq!(h[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(h[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn tenant_names_are_validated() {
        assert!(check_tenant_name("acme.corp_1-x").is_ok());
        assert!(check_tenant_name(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "ü", "a/b", "t_0123456789abcdef"] {
            assert!(matches!(
                check_tenant_name(bad),
                Err(StoreError::Invalid(_))
            ));
        }
        assert!(check_tenant_name(&"a".repeat(65)).is_err());
    }
}

/// Behaviour every backend must show; each backend's tests run all of it.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use scimlet_store::conformance::{absent, at, keys, put, scan};
    use serde_json::json;
    use std::sync::Arc;

    const T: &str = "t_00000000000000aa";
    const U: &str = "t_00000000000000bb";

    pub(crate) fn run_all(b: &dyn Backend) {
        // The key-value contract, as one tenant sees it through the adapter the component's
        // `store` import runs on: the same cases the guest's test store runs.
        scimlet_store::conformance::run_all(&TenantStore::new(b, T));
        sequence_grows_per_tenant(b);
        tenant_isolation(b);
        tenant_registry(b);
        tokens(b);
        event_feed(b);
        restore(b);
    }

    /// What `scimlet copy` relies on: a tenant, its tokens, entries and events written as they
    /// were read, and commits after them numbered past every restored version and event.
    fn restore(b: &dyn Backend) {
        use crate::events::EventKind as K;
        let tenant = Tenant {
            id: "t_00000000000000dd".into(),
            name: "restored".into(),
            policy: json!({"profile": "writer"}),
            created_at: 1_700_000_000,
        };
        let (live, gone) = (generate_token(), generate_token());
        let tokens = [
            StoredToken {
                info: TokenInfo {
                    id: "k_0000000000000001".into(),
                    tenant_id: tenant.id.clone(),
                    created_at: 1_700_000_001,
                    revoked: false,
                },
                hash: hash_token(&live),
            },
            StoredToken {
                info: TokenInfo {
                    id: "k_0000000000000002".into(),
                    tenant_id: tenant.id.clone(),
                    created_at: 1_700_000_002,
                    revoked: true,
                },
                hash: hash_token(&gone),
            },
        ];
        b.restore_tenant(&tenant, &tokens).unwrap();
        assert_eq!(b.tenant("restored").unwrap().as_ref(), Some(&tenant));
        assert_eq!(b.stored_tokens(&tenant.id).unwrap(), tokens);
        assert_eq!(
            b.tenant_for_token(&hash_token(&live)).unwrap().as_ref(),
            Some(&tenant)
        );
        assert_eq!(b.tenant_for_token(&hash_token(&gone)).unwrap(), None);
        // The same id, the same name or a registered token: refused, nothing registered.
        let renamed = Tenant {
            name: "other".into(),
            ..tenant.clone()
        };
        assert!(matches!(
            b.restore_tenant(&renamed, &[]),
            Err(StoreError::AlreadyExists(_))
        ));
        let reused = Tenant {
            id: "t_00000000000000ee".into(),
            name: "fresh".into(),
            ..tenant.clone()
        };
        assert!(matches!(
            b.restore_tenant(&reused, &tokens[..1]),
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(b.tenant("fresh").unwrap(), None);
        assert!(matches!(
            b.stored_tokens("t_ffffffffffffffff"),
            Err(StoreError::NotFound(_))
        ));

        let id = tenant.id.as_str();
        let entries = [
            Entry {
                key: "u/\u{0}a".into(),
                value: vec![0, 1, 2],
                version: 40,
            },
            Entry {
                key: "u/b".into(),
                value: b"b".to_vec(),
                version: 7,
            },
        ];
        b.restore_entries(id, &entries).unwrap();
        assert_eq!(
            b.get_many(id, &[entries[0].key.clone(), entries[1].key.clone()])
                .unwrap(),
            [Some(entries[0].clone()), Some(entries[1].clone())]
        );
        assert_eq!(b.count(id, "u/", "u0").unwrap(), 2);
        let e1 = StoredEvent {
            cursor: Cursor { seq: 7, index: 0 },
            id: NewEvent::new_id(),
            kind: K::UserCreated,
            time_ms: 1_700_000_000_123,
            request_id: "req-7".into(),
            data: r#"{"id":"b"}"#.into(),
            previous: None,
        };
        let mut e2 = e1.clone();
        e2.cursor = Cursor { seq: 40, index: 2 };
        e2.id = NewEvent::new_id();
        e2.kind = K::UserUpdated;
        e2.previous = Some("{}".into());
        b.restore_events(id, &[e1.clone(), e2.clone()]).unwrap();
        // Fifty commits happened at the source, the last of them a delete.
        let horizon = Cursor { seq: 3, index: 0 };
        b.restore_sequence(id, 50, Some(horizon)).unwrap();
        assert_eq!(
            b.events_after(id, None, 10).unwrap(),
            [e1.clone(), e2.clone()]
        );
        assert_eq!(b.event_head(id).unwrap(), Some(e2.cursor));
        assert_eq!(b.event_horizon(id).unwrap(), Some(horizon));
        // An older horizon does not move it back.
        b.restore_sequence(id, 10, Some(Cursor { seq: 1, index: 0 }))
            .unwrap();
        assert_eq!(b.event_horizon(id).unwrap(), Some(horizon));
        let next = b
            .commit_events(
                id,
                vec![at("u/b", 7)],
                vec![put("u/b", "c")],
                vec![new_event(K::UserUpdated, "{}")],
            )
            .unwrap();
        assert!(
            next > 50,
            "next commit {next} repeats a version of the source"
        );
        let after = b.events_after(id, Some(e2.cursor), 10).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(
            after[0].cursor,
            Cursor {
                seq: next,
                index: 0
            }
        );
    }

    fn new_event(kind: crate::events::EventKind, data: &str) -> NewEvent {
        NewEvent {
            id: NewEvent::new_id(),
            request_id: "req-1".into(),
            event: crate::events::Event {
                kind,
                data: data.into(),
                previous: Some(r#"{"active":true}"#.into()),
            },
        }
    }

    /// Events are stored with their commit, in order, per tenant; a refused commit stores none;
    /// pruning moves the horizon to the newest event removed.
    fn event_feed(b: &dyn Backend) {
        use crate::events::EventKind as K;
        // The contract's own suite may have stored events already: read after them.
        let start = b
            .events_after(T, None, 1000)
            .unwrap()
            .last()
            .map(|e| e.cursor);
        let (e1, e2, e3) = (
            new_event(K::UserCreated, r#"{"id":"1"}"#),
            new_event(K::GroupMemberAdded, r#"{"id":"2"}"#),
            new_event(K::UserDeactivated, r#"{"id":"3"}"#),
        );
        let s1 = b
            .commit_events(
                T,
                vec![absent("ev/1")],
                vec![put("ev/1", "x")],
                vec![e1.clone(), e2.clone()],
            )
            .unwrap();
        assert!(matches!(
            b.commit_events(
                T,
                vec![absent("ev/1")],
                vec![put("ev/1", "y")],
                vec![e3.clone()]
            ),
            Err(StoreError::Conflict)
        ));
        b.commit_events(U, vec![], vec![put("ev/1", "u")], vec![e3.clone()])
            .unwrap();
        let s2 = b
            .commit_events(T, vec![], vec![put("ev/2", "z")], vec![e3.clone()])
            .unwrap();
        assert!(matches!(
            b.commit_events(T, vec![], vec![], vec![e3.clone()]),
            Err(StoreError::Invalid(_))
        ));
        let all = b.events_after(T, start, 10).unwrap();
        let seen: Vec<(u64, u32, &str)> = all
            .iter()
            .map(|e| (e.cursor.seq, e.cursor.index, e.id.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (s1, 0, e1.id.as_str()),
                (s1, 1, e2.id.as_str()),
                (s2, 0, e3.id.as_str())
            ]
        );
        assert_eq!(all[1].kind, K::GroupMemberAdded);
        assert_eq!(all[0].request_id, "req-1");
        assert_eq!(all[0].previous.as_deref(), Some(r#"{"active":true}"#));
        assert!(all[0].time_ms > 1_700_000_000_000);
        let rest = b.events_after(T, Some(all[0].cursor), 1).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, e2.id);
        assert_eq!(b.events_after(U, None, 10).unwrap()[0].id, e3.id);
        assert_eq!(b.event_horizon(T).unwrap(), None);
        assert_eq!(b.event_head(T).unwrap(), Some(all[2].cursor));
        assert_eq!(b.event_head("t_00000000000000cc").unwrap(), None);
        // Everything is older than a minute from now: all of it goes.
        let removed = b.prune_events(unix_now_millis() + 60_000).unwrap();
        assert!(removed >= 4);
        assert_eq!(b.event_horizon(T).unwrap(), Some(all[2].cursor));
        assert!(b.events_after(T, None, 10).unwrap().is_empty());
    }

    /// Each tenant's commits are numbered by a sequence that only grows, whatever other
    /// tenants commit in between (backends may number commits per tenant, as PostgreSQL does,
    /// or from one global sequence, as SQLite does); key ranges are counted per tenant.
    fn sequence_grows_per_tenant(b: &dyn Backend) {
        let t1 = b.commit(T, &[], &[put("v/k", "t")]).unwrap();
        let u1 = b.commit(U, &[], &[put("v/k", "u")]).unwrap();
        let t2 = b.commit(T, &[], &[Write::Delete("v/k".into())]).unwrap();
        let u2 = b.commit(U, &[], &[put("v/k", "u2")]).unwrap();
        assert!(t2 > t1 && u2 > u1);
        // After a delete, a re-created key gets a version it never had: ETags never repeat.
        let t3 = b.commit(T, &[absent("v/k")], &[put("v/k", "t")]).unwrap();
        assert!(t3 > t2);
        assert_eq!(b.get(T, "v/k").unwrap().unwrap().version, t3);
        assert_eq!(
            b.commit(T, &[], &[]).unwrap(),
            t3,
            "nothing written: unchanged"
        );
        assert!(
            b.count(T, "c/", "c0").unwrap() > 0,
            "the suite wrote c/ keys"
        );
        assert_eq!(b.count(U, "c/", "c0").unwrap(), 0);
    }

    fn tenant_isolation(b: &dyn Backend) {
        let vt = b
            .commit(T, &[], &[put("i/k", "t"), put("i/t", "t")])
            .unwrap();
        let vu = b
            .commit(U, &[], &[put("i/k", "u"), put("i/u", "u")])
            .unwrap();
        assert_eq!(b.get(T, "i/k").unwrap().unwrap().value, b"t");
        assert_eq!(b.get(U, "i/k").unwrap().unwrap().value, b"u");
        // Checks see only the caller's tenant.
        assert!(matches!(
            b.commit(T, &[at("i/k", vu)], &[]),
            Err(StoreError::Conflict)
        ));
        b.commit(
            T,
            &[at("i/k", vt), absent("i/u")],
            &[Write::Delete("i/k".into())],
        )
        .unwrap();
        assert_eq!(b.get(U, "i/k").unwrap().unwrap().value, b"u");
        let got = b.scan(T, &scan("i/", "i0", 0, 10, false)).unwrap();
        assert_eq!(keys(&got), ["i/t"]);
        let got = b.scan(U, &scan("", "\u{10FFFF}", 0, 1000, true)).unwrap();
        assert!(got
            .iter()
            .all(|e| e.key != "i/t" && !e.key.starts_with("s/")));
        assert!(b.get(U, "i/t").unwrap().is_none());
        assert_eq!(b.count(U, "i/", "i0").unwrap(), 2);
    }

    fn tenant_registry(b: &dyn Backend) {
        let acme = b
            .create_tenant("acme", json!({"profile": "writer"}))
            .unwrap();
        assert!(looks_like_tenant_id(&acme.id));
        assert_eq!(acme.name, "acme");
        assert!(acme.created_at > 1_600_000_000);
        assert!(matches!(
            b.create_tenant("acme", json!({})),
            Err(StoreError::AlreadyExists(_))
        ));
        // Names are case-sensitive.
        let upper = b.create_tenant("ACME", json!({})).unwrap();
        assert_ne!(upper.id, acme.id);
        assert!(matches!(
            b.create_tenant("bad name", json!({})),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            b.create_tenant("arr", json!([1])),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(b.tenant("acme").unwrap().as_ref(), Some(&acme));
        assert_eq!(b.tenant(&acme.id).unwrap().as_ref(), Some(&acme));
        assert_eq!(b.tenant("nobody").unwrap(), None);
        let names: Vec<String> = b.tenants().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["ACME", "acme"]);
        b.set_policy(&acme.id, json!({"profile": "standard", "n": 1}))
            .unwrap();
        assert_eq!(
            b.tenant("acme").unwrap().unwrap().policy,
            json!({"profile": "standard", "n": 1})
        );
        assert!(matches!(
            b.set_policy(&acme.id, json!("x")),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            b.set_policy("t_ffffffffffffffff", json!({})),
            Err(StoreError::NotFound(_))
        ));
    }

    fn tokens(b: &dyn Backend) {
        let a = b.create_tenant("tok-a", json!({})).unwrap();
        let z = b.create_tenant("tok-z", json!({})).unwrap();
        let (ta, tz) = (generate_token(), generate_token());
        let ia = b.add_token(&a.id, hash_token(&ta)).unwrap();
        let ib = b.add_token(&a.id, hash_token(&generate_token())).unwrap();
        b.add_token(&z.id, hash_token(&tz)).unwrap();
        assert_eq!(ia.tenant_id, a.id);
        assert!(!ia.revoked);
        assert!(matches!(
            b.add_token(&z.id, hash_token(&ta)),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            b.add_token("t_ffffffffffffffff", [7; 32]),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(
            b.tenant_for_token(&hash_token(&ta)).unwrap().unwrap().id,
            a.id
        );
        assert_eq!(
            b.tenant_for_token(&hash_token(&tz)).unwrap().unwrap().id,
            z.id
        );
        assert_eq!(
            b.tenant_for_token(&hash_token("scimlet_nope")).unwrap(),
            None
        );
        let ids: Vec<String> = b.tokens(&a.id).unwrap().into_iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&ia.id) && ids.contains(&ib.id));
        // A tenant cannot revoke another tenant's token.
        assert!(matches!(
            b.revoke_token(&z.id, &ia.id),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            b.revoke_token(&a.id, "k_nope"),
            Err(StoreError::NotFound(_))
        ));
        b.revoke_token(&a.id, &ia.id).unwrap();
        b.revoke_token(&a.id, &ia.id).unwrap();
        assert_eq!(b.tenant_for_token(&hash_token(&ta)).unwrap(), None);
        assert_eq!(
            b.tenant_for_token(&hash_token(&tz)).unwrap().unwrap().id,
            z.id
        );
        let listed = b.tokens(&a.id).unwrap();
        assert!(listed.iter().any(|t| t.id == ia.id && t.revoked));
        assert!(listed.iter().any(|t| t.id == ib.id && !t.revoked));
        assert!(matches!(
            b.tokens("t_ffffffffffffffff"),
            Err(StoreError::NotFound(_))
        ));
    }

    /// 8 threads × 100 read-check-commit increments of one counter, retrying on conflict.
    pub(crate) fn concurrent_increments(b: Arc<dyn Backend>) {
        const THREADS: u64 = 8;
        const ROUNDS: u64 = 100;
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        increment(&*b, "counter");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let e = b.get(T, "counter").unwrap().unwrap();
        let n: u64 = std::str::from_utf8(&e.value).unwrap().parse().unwrap();
        assert_eq!(n, THREADS * ROUNDS);
    }

    fn increment(b: &dyn Backend, key: &str) {
        loop {
            let current = b.get(T, key).unwrap();
            let (n, check) = match &current {
                Some(e) => (
                    std::str::from_utf8(&e.value)
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                    at(key, e.version),
                ),
                None => (0, absent(key)),
            };
            match b.commit(T, &[check], &[put(key, &(n + 1).to_string())]) {
                Ok(_) => return,
                Err(StoreError::Conflict) => continue,
                Err(e) => panic!("commit failed: {e}"),
            }
        }
    }
}
