//! Webhook signing secrets: generated as `whsec_` + base64 of 32 random bytes, shown once, and
//! stored encrypted (ChaCha20-Poly1305, bound to the tenant and endpoint) with a 32-byte key
//! from the `webhook-secret-key` setting or, when none is given, from the file
//! `webhook-secret.key` that the host generates in the data directory (mode 0600).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

/// Prefix of every signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "webhook-secret.key";

/// Why a secret or the key is unusable. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The configured key is not base64 of 32 bytes.
    #[error("webhook-secret-key must be the base64 of 32 bytes (e.g. `openssl rand -base64 32`)")]
    BadKey,
    /// The key file could not be read or created.
    #[error("webhook secret key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A stored secret does not decrypt with this key: another key encrypted it.
    #[error(
        "the stored secret does not decrypt with this webhook-secret-key (was the key changed?)"
    )]
    Undecryptable,
    /// A secret that is not `whsec_` + base64.
    #[error("a webhook secret is `whsec_` followed by base64")]
    BadSecret,
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of a secret: its base64 part, decoded.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(b64).map_err(|_| SecretError::BadSecret)
}

/// The key that encrypts secrets at rest.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A key given as base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<SecretKey, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(SecretKey(bytes.into()))
    }

    /// A random key, for a store that does not outlive the process (`store = "memory"`).
    pub fn random() -> SecretKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SecretKey(bytes.into())
    }

    /// The configured key, else the data directory's key file, generated (mode 0600) if absent.
    pub fn resolve(configured: Option<&str>, data: &Path) -> Result<SecretKey, SecretError> {
        match configured {
            Some(text) => SecretKey::from_base64(text),
            None => SecretKey::from_file(&data.join(KEY_FILE)),
        }
    }

    /// The key in `path`, created with a new random key if the file does not exist.
    pub fn from_file(path: &Path) -> Result<SecretKey, SecretError> {
        let fail = |message: String| SecretError::KeyFile {
            path: path.to_owned(),
            message,
        };
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // `create_new`: of two processes starting at once, one writes, the other reads its key.
        match options.open(path) {
            Ok(mut file) => {
                let text = format!("{}\n", STANDARD.encode(bytes));
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| fail(e.to_string()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(e.to_string())),
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        if text.trim().is_empty() {
            return Err(fail("empty (another process may be writing it)".into()));
        }
        SecretKey::from_base64(&text).map_err(|_| fail("not base64 of 32 bytes".into()))
    }

    /// `secret` encrypted for endpoint `id` of `tenant`: a random nonce, then the ciphertext.
    pub fn seal(&self, tenant: &str, id: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(tenant, id);
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message this size");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The secret sealed for endpoint `id` of `tenant`.
    pub fn open(&self, tenant: &str, id: &str, sealed: &[u8]) -> Result<String, SecretError> {
        if sealed.len() < 12 {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let aad = aad(tenant, id);
        let plain = ChaCha20Poly1305::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)
    }
}

/// Binds a sealed secret to its endpoint: copied onto another row, it does not decrypt.
fn aad(tenant: &str, id: &str) -> Vec<u8> {
    [tenant.as_bytes(), b"\0", id.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_standard_shape_and_round_trip_sealed() {
        let s = generate();
        assert!(s.starts_with("whsec_"));
        assert_eq!(signing_key(&s).unwrap().len(), 32);
        assert_ne!(s, generate());
        let key = SecretKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = key.seal("t_1", "wh_1", &s);
        assert!(!sealed.windows(6).any(|w| w == b"whsec_"), "not in clear");
        assert_eq!(key.open("t_1", "wh_1", &sealed).unwrap(), s);
        assert!(
            key.open("t_1", "wh_2", &sealed).is_err(),
            "bound to its row"
        );
        let other = SecretKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(matches!(
            other.open("t_1", "wh_1", &sealed),
            Err(SecretError::Undecryptable)
        ));
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
        assert!(!format!("{key:?}").contains('7'));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_generated_private_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::resolve(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = SecretKey::resolve(None, dir.path()).unwrap();
        let sealed = a.seal("t", "w", "whsec_x");
        assert_eq!(b.open("t", "w", &sealed).unwrap(), "whsec_x", "same key");
        std::fs::write(&path, "junk").unwrap();
        assert!(SecretKey::resolve(None, dir.path()).is_err());
    }
}
