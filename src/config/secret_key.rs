//! `SESSION_SECRET_KEY` → Rocket's `secret_key` (the key of the private session cookies).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;

/// Why a session key was refused (the message never contains the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretKeyError {
    /// Fewer than 32 characters and not a base64 key of 32 or 64 bytes.
    #[error("is too short: use a base64 key of 32 or 64 bytes (generate one with `openssl rand -base64 64`) or a passphrase of at least 32 characters")]
    TooShort,
}

/// Minimum length of a passphrase that is stretched with HKDF.
const MIN_PASSPHRASE_CHARS: usize = 32;

/// Turns the configured value into the bytes Rocket's `secret_key` takes:
/// a base64 key of 32 or 64 bytes is used as is; any other string of at least
/// 32 characters is stretched with HKDF-SHA256 into 64 bytes.
pub fn derive_secret_key(value: &str) -> Result<Vec<u8>, SecretKeyError> {
    let value = value.trim();
    if let Ok(bytes) = STANDARD.decode(value) {
        if bytes.len() == 32 || bytes.len() == 64 {
            return Ok(bytes);
        }
    }
    if value.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(SecretKeyError::TooShort);
    }
    // A fixed salt keeps the derivation stable across restarts and instances,
    // which must all read each other's cookies.
    let hkdf = Hkdf::<Sha256>::new(Some(b"rocket-appid session key v1"), value.as_bytes());
    let mut key = vec![0u8; 64];
    hkdf.expand(b"rocket secret_key", &mut key).map_err(|_| SecretKeyError::TooShort)?;
    Ok(key)
}

/// A session key as Rocket uses it, for opening cookies Rocket's jar cannot: those sealed
/// with the previous key during a rotation. `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey(cookie::Key);

impl SessionKey {
    /// The key Rocket installs for the configured value (see [`derive_secret_key`]).
    pub fn from_setting(value: &str) -> Result<Self, SecretKeyError> {
        SessionKey::from_bytes(&derive_secret_key(value)?).ok_or(SecretKeyError::TooShort)
    }

    /// The key Rocket makes of `secret_key` bytes, exactly as Rocket's `SecretKey`
    /// deserializer does: 64 bytes or more are used as they are (first 32 sign, next 32
    /// encrypt), 32 to 63 bytes are expanded with HKDF. Fewer bytes are no key (Rocket
    /// refuses them too), and neither is the all-zero key (Rocket replaces it).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 32 || bytes.iter().all(|b| *b == 0) {
            None
        } else if bytes.len() >= 64 {
            cookie::Key::try_from(bytes).ok().map(SessionKey)
        } else {
            Some(SessionKey(cookie::Key::derive_from(bytes)))
        }
    }

    /// The key Rocket installs for the `secret_key` of `figment`, read as Rocket reads it
    /// (44 or 88 characters of base64, 64 of hex, or an array of bytes); `None` when there
    /// is none (Rocket then generates one per process) or Rocket would refuse it.
    pub fn from_rocket_setting(figment: &rocket::figment::Figment) -> Option<Self> {
        let bytes = match figment.extract_inner::<String>("secret_key") {
            Ok(text) => match text.len() {
                44 | 88 => STANDARD.decode(&text).ok()?,
                64 => hex_bytes(&text)?,
                _ => return None,
            },
            Err(_) => figment.extract_inner::<Vec<u8>>("secret_key").ok()?,
        };
        SessionKey::from_bytes(&bytes)
    }

    /// The half of the key that encrypts (Rocket's private cookies use it for AES-256-GCM).
    pub fn encryption(&self) -> &[u8] {
        self.0.encryption()
    }

    /// Opens a private cookie sealed with this key (the cookie's name is the associated
    /// data, as in Rocket): its plaintext value, or `None`.
    pub fn open(&self, sealed: &cookie::Cookie<'static>) -> Option<String> {
        let jar = cookie::CookieJar::new();
        jar.private(&self.0).decrypt(sealed.clone()).map(|c| c.value().to_string())
    }
}

/// The bytes of a hex string, as Rocket also accepts `secret_key` in hex.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_keys_of_32_and_64_bytes_are_used_as_they_are() {
        for len in [32usize, 64] {
            let raw: Vec<u8> = (0..len as u8).collect();
            let key = derive_secret_key(&STANDARD.encode(&raw)).unwrap();
            assert_eq!(key, raw);
        }
    }

    #[test]
    fn a_long_passphrase_is_stretched_to_64_bytes_the_same_way_every_time() {
        let phrase = "correct horse battery staple, and then some more";
        let a = derive_secret_key(phrase).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, derive_secret_key(phrase).unwrap());
        assert_ne!(a, derive_secret_key("correct horse battery staple, and then some MORE").unwrap());
    }

    #[test]
    fn a_short_value_is_refused_without_repeating_it() {
        let err = derive_secret_key("short-secret").unwrap_err();
        assert!(!err.to_string().contains("short-secret"));
        // base64 of 16 bytes is neither a full key nor a long passphrase
        assert!(derive_secret_key(&STANDARD.encode([7u8; 16])).is_err());
    }

    #[test]
    fn a_session_key_opens_what_the_same_key_sealed_and_nothing_else() {
        let phrase = "a passphrase that is long enough to be stretched";
        let key = SessionKey::from_setting(phrase).unwrap();
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&key.0).add(cookie::Cookie::new("appid_session", "hello"));
        let sealed = jar.get("appid_session").unwrap().clone();
        assert_eq!(key.open(&sealed).as_deref(), Some("hello"));
        let other = SessionKey::from_setting("another passphrase that is long enough to use").unwrap();
        assert_eq!(other.open(&sealed), None);
        // The name is bound: the same value under another name does not open.
        let moved = cookie::Cookie::new("appid_login", sealed.value().to_string());
        assert_eq!(key.open(&moved), None);
        assert_eq!(format!("{key:?}"), "SessionKey([redacted])");
    }

    #[test]
    fn keys_rocket_would_refuse_are_no_keys() {
        assert!(SessionKey::from_bytes(&[1u8; 31]).is_none());
        assert!(SessionKey::from_bytes(&[0u8; 64]).is_none());
        assert!(SessionKey::from_bytes(&[1u8; 32]).is_some());
        assert!(SessionKey::from_bytes(&[1u8; 64]).is_some());
    }
}
