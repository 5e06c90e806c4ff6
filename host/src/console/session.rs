//! The console's stateless session: a signed cookie (HMAC-SHA256 under a key derived from the
//! admin token, so that changing the token signs everyone out), and the CSRF token of its forms,
//! derived from the session's nonce.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use crate::store::unix_now;

use crate::tenancy::setup_links::{sign, verify};

/// The cookie's name.
pub const COOKIE: &str = "scimlet_console";
/// A signed-in session lasts this long.
const SIGNED_IN_SECS: i64 = 12 * 3600;
/// A signed-out visitor's session (it carries the sign-in form's CSRF token).
const VISITOR_SECS: i64 = 3600;

/// The session cookie's signing key.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key of the console guarded by `admin_token`.
    pub fn for_admin_token(admin_token: &str) -> SessionKey {
        let mut h = Sha256::new();
        h.update(b"scimlet console session v1\0");
        h.update(admin_token.trim().as_bytes());
        SessionKey(h.finalize().into())
    }

    /// The key's bytes (to compare keys in constant time).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whether the holder signed in with the admin token.
    pub signed_in: bool,
    /// Random; the CSRF token derives from it.
    pub nonce: String,
    /// Unix seconds.
    pub expires: i64,
}

impl Session {
    /// A new session, signed in or not.
    pub fn new(signed_in: bool) -> Session {
        let secs = if signed_in {
            SIGNED_IN_SECS
        } else {
            VISITOR_SECS
        };
        Session {
            signed_in,
            nonce: format!("{:032x}", rand::random::<u128>()),
            expires: unix_now() + secs,
        }
    }

    /// The cookie's value.
    fn encode(&self, key: &SessionKey) -> String {
        let message = format!(
            "{}.{}.{}",
            if self.signed_in { "s" } else { "v" },
            self.expires,
            self.nonce
        );
        let sig = sign(&key.0, &message);
        format!("{message}.{sig}")
    }

    /// The session a cookie value carries, if it is authentic and current.
    fn decode(value: &str, key: &SessionKey) -> Option<Session> {
        let (message, sig) = value.rsplit_once('.')?;
        if !verify(&key.0, message, sig) {
            return None;
        }
        let mut parts = message.split('.');
        let signed_in = match parts.next()? {
            "s" => true,
            "v" => false,
            _ => return None,
        };
        let expires: i64 = parts.next()?.parse().ok()?;
        let nonce = parts.next()?.to_string();
        (unix_now() < expires).then_some(Session {
            signed_in,
            nonce,
            expires,
        })
    }

    /// The CSRF token of this session's forms.
    pub fn csrf(&self, key: &SessionKey) -> String {
        sign(&key.0, &format!("csrf.{}", self.nonce))
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, key: &SessionKey, presented: &str) -> bool {
        verify(&key.0, &format!("csrf.{}", self.nonce), presented)
    }

    /// The session of a request's cookie, if any is valid.
    pub fn from_headers(headers: &HeaderMap, key: &SessionKey) -> Option<Session> {
        cookie(headers, COOKIE).and_then(|v| Session::decode(v, key))
    }

    /// `Set-Cookie` for this session: `HttpOnly`, `SameSite=Strict`, `Secure` when served
    /// over HTTPS.
    pub fn set_cookie(&self, key: &SessionKey, secure: bool) -> String {
        let max_age = (self.expires - unix_now()).max(0);
        format!(
            "{COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
            self.encode(key),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// `Set-Cookie` removing the session.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The value of one cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_round_trip_and_refuse_tampering() {
        let key = SessionKey::for_admin_token("0123456789abcdef");
        let s = Session::new(true);
        let set = s.set_cookie(&key, true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.ends_with("Secure")
        );
        let value = set.split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {value}")).unwrap(),
        );
        assert_eq!(Session::from_headers(&h, &key), Some(s.clone()));
        // A visitor's cookie turned into a signed-in one does not verify.
        let forged = value.replacen("=s.", "=v.", 1);
        h.insert(header::COOKIE, HeaderValue::from_str(&forged).unwrap());
        assert_eq!(Session::from_headers(&h, &key), None);
        // Another admin token: another key.
        h.insert(header::COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(
            Session::from_headers(&h, &SessionKey::for_admin_token("another-token-000")),
            None
        );
        let csrf = s.csrf(&key);
        assert!(s.csrf_ok(&key, &csrf));
        assert!(!Session::new(true).csrf_ok(&key, &csrf));
        assert!(!s.csrf_ok(&key, ""));
    }
}
