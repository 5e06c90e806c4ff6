//! Self-serve setup links: a signed, expiring, revocable URL that opens a page scoped to one
//! tenant (its SCIM URL, a token to generate, the default team, the identity providers' steps),
//! for the customer's IT administrator.
//!
//! A link reads `{base}/setup/{tenant}.{id}.{expires}.{signature}`: the signature is an
//! HMAC-SHA256, under a key kept in the tenant's own key space, of everything before it. The
//! link's record (creation, expiry, revocation) is kept beside the key, so that a link can be
//! listed and revoked. An altered link is refused (403); an expired or revoked one is gone (410).

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::store::{unix_now, Backend, Check, Scan, StoreError, Tenant, Write};

use super::{find, rfc3339, TenantError};

/// Key of the tenant's link-signing key (32 random bytes, base64).
const KEY: &str = "h/setup/key";
/// Prefix of the links' records.
const LINKS: &str = "h/setup/link/";
/// Validity of a link when none is asked for.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(72 * 3600);
/// The longest validity a link may have.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 86_400);

/// Parses an expiry such as `72h`, `90m`, `7d` or `1h 30m`.
pub fn parse_expiry(text: &str) -> Result<Duration, TenantError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        TenantError::Invalid(format!("expiry '{text}' is not a duration like 72h: {e}"))
    })
}

/// A setup link's record (never the link itself, which only its creator sees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupLink {
    /// `l_` + 16 hex characters.
    pub id: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC.
    pub expires: String,
    /// Unix seconds of `expires`.
    #[serde(skip)]
    pub expires_at: i64,
    /// Whether the link was revoked.
    pub revoked: bool,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    created: i64,
    expires: i64,
    revoked: bool,
}

/// Why a presented link opens nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    /// Malformed, altered, or naming no tenant or link: 403.
    #[error("this setup link is not valid: check that it was copied completely")]
    Invalid,
    /// Expired or revoked: 410.
    #[error("this setup link has expired or was revoked: ask for a new one")]
    Gone,
    /// The store failed: 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for LinkRefused {
    fn from(e: StoreError) -> Self {
        LinkRefused::Unavailable(e.to_string())
    }
}

/// A newly created link: its record and its URL (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct IssuedLink {
    /// The link's record.
    #[serde(flatten)]
    pub link: SetupLink,
    /// The URL to hand to the customer.
    pub url: String,
}

/// The tenant's signing key, created on first use (hosts racing: one key wins, both use it).
fn signing_key(backend: &dyn Backend, tenant_id: &str) -> Result<Vec<u8>, StoreError> {
    for _ in 0..3 {
        if let Some(entry) = backend.get(tenant_id, KEY)? {
            return base64::engine::general_purpose::STANDARD
                .decode(&entry.value)
                .map_err(|_| StoreError::Unavailable("corrupt setup-link key".into()));
        }
        let key: [u8; 32] = rand::random();
        let text = base64::engine::general_purpose::STANDARD.encode(key);
        let check = Check {
            key: KEY.into(),
            version: None,
        };
        match backend.commit(tenant_id, &[check], &[Write::Put(KEY.into(), text.into())]) {
            Ok(_) => return Ok(key.to_vec()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable("setup-link key contended".into()))
}

/// HMAC-SHA256 of `message` under `key`, unpadded base64url.
pub fn sign(key: &[u8], message: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is `message`'s, compared in constant time.
pub fn verify(key: &[u8], message: &str, signature: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

fn view(id: &str, s: &Stored) -> SetupLink {
    SetupLink {
        id: id.to_string(),
        created: rfc3339(s.created),
        expires: rfc3339(s.expires),
        expires_at: s.expires,
        revoked: s.revoked,
    }
}

/// Creates a link to the tenant's setup page valid for `valid_for`; `base` is the public URL
/// of the SCIM listener (scheme and authority).
pub fn create(
    backend: &dyn Backend,
    tenant: &Tenant,
    valid_for: Duration,
    base: &str,
) -> Result<IssuedLink, TenantError> {
    if valid_for < Duration::from_secs(1) || valid_for > MAX_EXPIRY {
        return Err(TenantError::Invalid(
            "a setup link's expiry must be between 1s and 30 days".into(),
        ));
    }
    let key = signing_key(backend, &tenant.id)?;
    let id = format!("l_{:016x}", rand::random::<u64>());
    let created = unix_now();
    let stored = Stored {
        created,
        expires: created + valid_for.as_secs() as i64,
        revoked: false,
    };
    let value = serde_json::to_vec(&stored).unwrap_or_default();
    backend.commit(
        &tenant.id,
        &[],
        &[Write::Put(format!("{LINKS}{id}"), value)],
    )?;
    let message = format!("{}.{id}.{}", tenant.id, stored.expires);
    let signature = sign(&key, &message);
    Ok(IssuedLink {
        link: view(&id, &stored),
        url: format!("{}/setup/{message}.{signature}", base.trim_end_matches('/')),
    })
}

/// The tenant's links, oldest first.
pub fn list(backend: &dyn Backend, tenant: &Tenant) -> Result<Vec<SetupLink>, TenantError> {
    let scan = Scan {
        start: LINKS.into(),
        end: format!("{LINKS}\u{10FFFF}"),
        skip: 0,
        limit: 10_000,
        descending: false,
        keys_only: false,
    };
    let mut links: Vec<SetupLink> = backend
        .scan(&tenant.id, &scan)?
        .into_iter()
        .filter_map(|e| {
            let stored: Stored = serde_json::from_slice(&e.value).ok()?;
            Some(view(e.key.strip_prefix(LINKS)?, &stored))
        })
        .collect();
    links.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok(links)
}

/// Revokes a link: it opens nothing from now on (410).
pub fn revoke(backend: &dyn Backend, tenant: &Tenant, id: &str) -> Result<(), TenantError> {
    let key = format!("{LINKS}{id}");
    let no_such = || TenantError::NoSuchLink {
        tenant: tenant.name.clone(),
        link: id.to_string(),
    };
    let entry = backend.get(&tenant.id, &key)?.ok_or_else(no_such)?;
    let mut stored: Stored = serde_json::from_slice(&entry.value).map_err(|_| no_such())?;
    stored.revoked = true;
    let value = serde_json::to_vec(&stored).unwrap_or_default();
    backend.commit(&tenant.id, &[], &[Write::Put(key, value)])?;
    Ok(())
}

/// The tenant and the link record a presented link (its path segment after `/setup/`) opens.
pub fn open(backend: &dyn Backend, presented: &str) -> Result<(Tenant, SetupLink), LinkRefused> {
    let (message, signature) = presented.rsplit_once('.').ok_or(LinkRefused::Invalid)?;
    let mut parts = message.split('.');
    let (Some(tenant_id), Some(id), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkRefused::Invalid);
    };
    if !tenant_id.starts_with("t_") || !id.starts_with("l_") {
        return Err(LinkRefused::Invalid);
    }
    let expires: i64 = expires.parse().map_err(|_| LinkRefused::Invalid)?;
    let tenant = match find(backend, tenant_id) {
        Ok(t) if t.id == tenant_id => t,
        Ok(_) | Err(TenantError::NoSuchTenant(_)) => return Err(LinkRefused::Invalid),
        Err(e) => return Err(LinkRefused::Unavailable(e.to_string())),
    };
    let Some(key) = backend.get(&tenant.id, KEY)? else {
        return Err(LinkRefused::Invalid);
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(&key.value)
        .map_err(|_| LinkRefused::Invalid)?;
    if !verify(&key, message, signature) {
        return Err(LinkRefused::Invalid);
    }
    let Some(entry) = backend.get(&tenant.id, &format!("{LINKS}{id}"))? else {
        return Err(LinkRefused::Gone);
    };
    let stored: Stored = serde_json::from_slice(&entry.value).map_err(|_| LinkRefused::Invalid)?;
    if stored.revoked || stored.expires != expires || unix_now() >= stored.expires {
        return Err(LinkRefused::Gone);
    }
    Ok((tenant, view(id, &stored)))
}

/// A CSRF token for the forms of a setup page opened by `presented`: only a holder of the link
/// can compute it.
pub fn form_token(
    backend: &dyn Backend,
    tenant: &Tenant,
    presented: &str,
) -> Result<String, StoreError> {
    let key = signing_key(backend, &tenant.id)?;
    Ok(sign(&key, &format!("form.{presented}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;
    use serde_json::json;

    fn token_of(url: &str) -> &str {
        url.rsplit_once("/setup/").unwrap().1
    }

    #[test]
    fn links_open_until_altered_revoked_or_expired() {
        let backend = MemoryBackend::new();
        let tenant = backend.create_tenant("acme", json!({})).unwrap();
        let issued = create(
            &backend,
            &tenant,
            DEFAULT_EXPIRY,
            "https://scim.example.com/",
        )
        .unwrap();
        assert!(issued.url.starts_with("https://scim.example.com/setup/t_"));
        let token = token_of(&issued.url);
        let (opened, link) = open(&backend, token).unwrap();
        assert_eq!(opened.id, tenant.id);
        assert_eq!(link.id, issued.link.id);

        // Any altered character is refused, and so is a longer expiry with the old signature.
        let mut altered = token.to_string();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(open(&backend, &altered), Err(LinkRefused::Invalid));
        let later = token.replace(
            &format!(".{}.", link.expires_at),
            &format!(".{}.", link.expires_at + 3600),
        );
        assert_eq!(open(&backend, &later), Err(LinkRefused::Invalid));
        assert_eq!(open(&backend, "nonsense"), Err(LinkRefused::Invalid));

        revoke(&backend, &tenant, &link.id).unwrap();
        assert_eq!(open(&backend, token), Err(LinkRefused::Gone));
        let listed = list(&backend, &tenant).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked);
        assert!(revoke(&backend, &tenant, "l_nope").is_err());

        // A link of another tenant's key does not open this one.
        let other = backend.create_tenant("other", json!({})).unwrap();
        let theirs = create(&backend, &other, DEFAULT_EXPIRY, "http://x").unwrap();
        let forged = token_of(&theirs.url).replace(&other.id, &tenant.id);
        assert_eq!(open(&backend, &forged), Err(LinkRefused::Invalid));
    }

    #[test]
    fn expiry_is_bounded_and_enforced() {
        let backend = MemoryBackend::new();
        let tenant = backend.create_tenant("acme", json!({})).unwrap();
        assert!(create(&backend, &tenant, Duration::ZERO, "http://x").is_err());
        assert!(create(&backend, &tenant, MAX_EXPIRY * 2, "http://x").is_err());
        // A stored record whose time has passed: gone, though correctly signed.
        let issued = create(&backend, &tenant, Duration::from_secs(1), "http://x").unwrap();
        let key = format!("{LINKS}{}", issued.link.id);
        let stored = Stored {
            created: 0,
            expires: issued.link.expires_at,
            revoked: false,
        };
        let mut past = stored;
        past.expires = unix_now() - 10;
        backend
            .commit(
                &tenant.id,
                &[],
                &[Write::Put(key, serde_json::to_vec(&past).unwrap())],
            )
            .unwrap();
        assert_eq!(
            open(&backend, token_of(&issued.url)),
            Err(LinkRefused::Gone)
        );
    }
}
