//! The session cookie's own sealing: read on every request of a signed-in user, so built
//! for that.
//!
//! Rocket's private jar is secure but costs much here. It uses standard base64, and the
//! `/` and `=` of that base64 are percent-encoded in the `Cookie` header and decoded again
//! on every request. Its decoding and AES-GCM are scalar code.
//!
//! This format uses the same construction with other parts:
//! - AES-256-GCM (aws-lc, hardware AES and GHASH) under a key derived with HKDF from the
//!   session key, so no key is shared with Rocket's jar;
//! - a random 96-bit nonce;
//! - the first cookie's name as associated data, so a value cannot move to another cookie;
//! - base64url without padding (SIMD decoding), so the browser sends the bytes as they are
//!   and there is nothing to percent-decode.
//!
//! A value is `s4.{sealed}`. One too large for one cookie is split over numbered cookies:
//! `s4~{count}.{first piece}` in `appid_session`, and the next pieces in `appid_session.1`
//! and on (the mark tells the two apart without searching the value). The pieces are joined before opening, so a piece of another session or of an
//! earlier write fails authentication like any forgery.
//!
//! A value without the mark was sealed by Rocket's jar (older versions of this app): the
//! caller reads it with `cookie_store` and writes it back in this format.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64_simd::URL_SAFE_NO_PAD as BASE64URL;
use rocket::figment::Figment;
use rocket::http::CookieJar;

use super::cookie_store::{chunk_name, remove_chunks_from, TooLarge, HARD_MAX_CHUNKS, MAX_COOKIE_BYTES};
use super::cookies;
use crate::config::SessionKey;

/// Starts every value in this format that fits in one cookie. Rocket's sealed values are
/// standard base64, which has neither `.` nor `~`, so the formats cannot be confused.
pub const MARK: &str = "s4.";
/// Starts the first cookie of a value split over several.
const SPLIT_MARK: &str = "s4~";
/// Associated data: this label, then the first cookie's name.
const AAD_LABEL: &[u8] = b"rocket-appid session cookie v4\0";
/// The AES-GCM tag.
const TAG_LEN: usize = 16;

/// The keys of session cookies: the current one seals and opens, the previous one (during
/// a key rotation) only opens. `Debug` never shows them.
pub struct CookieKeys {
    current: RandomizedNonceKey,
    previous: Option<RandomizedNonceKey>,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKeys([redacted])")
    }
}

impl CookieKeys {
    /// The keys for the configured session key (`secret_key` of `figment`, as the
    /// composition root leaves it) and the previous one. Without a configured key (only
    /// `cargo run` with the embedded emulator, where Rocket's key is random too), a random
    /// key: sessions end with the process.
    pub fn from_figment(figment: &Figment, previous: Option<&SessionKey>) -> Arc<Self> {
        let current = match SessionKey::from_rocket_setting(figment) {
            Some(key) => derived(key.encryption()),
            None => derived(&rand::random::<[u8; 32]>()),
        };
        Arc::new(CookieKeys { current, previous: previous.map(|key| derived(key.encryption())) })
    }

    /// Keys of this process only (an app without the composition root, and tests).
    pub fn random() -> Arc<Self> {
        Arc::new(CookieKeys { current: derived(&rand::random::<[u8; 32]>()), previous: None })
    }

    /// `plaintext` sealed for the cookie `name`, as base64url.
    fn seal(&self, name: &str, mut plaintext: Vec<u8>) -> Option<String> {
        let nonce = self.current.seal_in_place_append_tag(Aad::from(aad(name)), &mut plaintext).ok()?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&plaintext);
        Some(BASE64URL.encode_to_string(&sealed))
    }

    /// The plaintext of what [`CookieKeys::seal`] made for `name`, and whether only the
    /// previous key opened it.
    fn open(&self, name: &str, sealed: &str) -> Option<(Vec<u8>, bool)> {
        let bytes = BASE64URL.decode_to_vec(sealed).ok()?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let aad = aad(name);
        match &self.previous {
            None => open_with(&self.current, &aad, bytes).map(|plaintext| (plaintext, false)),
            // A failed open may overwrite the buffer: the previous key gets a copy.
            Some(previous) => open_with(&self.current, &aad, bytes.clone())
                .map(|plaintext| (plaintext, false))
                .or_else(|| open_with(previous, &aad, bytes).map(|plaintext| (plaintext, true))),
        }
    }
}

/// The AES-256-GCM key of session cookies for a session key's encryption half.
fn derived(encryption_key: &[u8]) -> RandomizedNonceKey {
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"rocket-appid session cookie"), encryption_key);
    let mut key = [0u8; 32];
    // 32 bytes are far below HKDF-SHA256's limit of 8160: this cannot fail.
    let _ = hkdf.expand(b"aes-256-gcm v4", &mut key);
    match RandomizedNonceKey::new(&AES_256_GCM, &key) {
        Ok(key) => key,
        // aws-lc refuses only a key of the wrong length, and this one has 32 bytes.
        Err(_) => unreachable!("a 32-byte key is a valid AES-256-GCM key"),
    }
}

fn aad(name: &str) -> Vec<u8> {
    [AAD_LABEL, name.as_bytes()].concat()
}

fn open_with(key: &RandomizedNonceKey, aad: &[u8], mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
    let length = key.open_in_place(nonce, Aad::from(aad), &mut bytes[NONCE_LEN..]).ok()?.len();
    bytes.copy_within(NONCE_LEN..NONCE_LEN + length, 0);
    bytes.truncate(length);
    Some(bytes)
}

/// What the session cookies of a request hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// No session cookie.
    Absent,
    /// A cookie sealed by Rocket's jar (an older version of this app): read it with
    /// `cookie_store`.
    Legacy,
    /// Present but unusable, with the reason code for the log: `undecryptable` (another
    /// key, forged, tampered, moved, or pieces of different writes) or `chunks_mismatch`
    /// (pieces missing, or a count out of range).
    Unreadable(&'static str),
    /// The plaintext; `with_previous_key` when only the previous key opened it.
    Value { plaintext: Vec<u8>, with_previous_key: bool },
}

/// Reads the value stored under `base`, joining its pieces.
pub fn read(jar: &CookieJar<'_>, base: &str, secure: bool, keys: &CookieKeys) -> Read {
    let first_name = chunk_name(base, 0, secure);
    let Some(first) = jar.get(&first_name) else {
        return Read::Absent;
    };
    let value = first.value();
    let sealed: Cow<'_, str> = if let Some(sealed) = value.strip_prefix(MARK) {
        Cow::Borrowed(sealed)
    } else if let Some(split) = value.strip_prefix(SPLIT_MARK) {
        let Some((count, piece)) = split.split_once('.') else {
            return Read::Unreadable("chunks_mismatch");
        };
        match count.parse::<usize>() {
            Ok(count) if (2..=HARD_MAX_CHUNKS).contains(&count) => {
                let mut joined = piece.to_string();
                for index in 1..count {
                    match jar.get(&chunk_name(base, index, secure)) {
                        Some(cookie) => joined.push_str(cookie.value()),
                        None => return Read::Unreadable("chunks_mismatch"),
                    }
                }
                Cow::Owned(joined)
            }
            _ => return Read::Unreadable("chunks_mismatch"),
        }
    } else {
        return Read::Legacy;
    };
    match keys.open(&first_name, &sealed) {
        Some((plaintext, with_previous_key)) => Read::Value { plaintext, with_previous_key },
        None => Read::Unreadable("undecryptable"),
    }
}

/// Seals `plaintext` under `base` in as few cookies as it needs (each `name=value` within
/// [`MAX_COOKIE_BYTES`]) and removes pieces of an earlier, larger value. Returns the number
/// of cookies, or [`TooLarge`] (and changes nothing) beyond `max_chunks`.
pub fn write(
    jar: &CookieJar<'_>,
    base: &str,
    plaintext: Vec<u8>,
    keys: &CookieKeys,
    (secure, max_chunks): (bool, usize),
    max_age_secs: i64,
) -> Result<usize, TooLarge> {
    let first_name = chunk_name(base, 0, secure);
    let sealed = keys.seal(&first_name, plaintext).ok_or(TooLarge)?;
    let values = split(&sealed, base, secure, max_chunks.min(HARD_MAX_CHUNKS))?;
    let count = values.len();
    for (index, value) in values.into_iter().enumerate() {
        jar.add(cookies::build_named(chunk_name(base, index, secure), value, secure, max_age_secs));
    }
    remove_chunks_from(jar, base, count, secure);
    Ok(count)
}

/// The cookie values of `sealed`: one when it fits, else the counted first piece and the
/// pieces after it.
fn split(sealed: &str, base: &str, secure: bool, max_chunks: usize) -> Result<Vec<String>, TooLarge> {
    let budget = |index: usize| MAX_COOKIE_BYTES.saturating_sub(chunk_name(base, index, secure).len() + 1);
    if MARK.len() + sealed.len() <= budget(0) {
        return Ok(vec![format!("{MARK}{sealed}")]);
    }
    for count in 2..=max_chunks {
        let header = format!("{SPLIT_MARK}{count}.");
        let first = budget(0).saturating_sub(header.len());
        let capacity: usize = first + (1..count).map(budget).sum::<usize>();
        if capacity < sealed.len() {
            continue;
        }
        // base64url is ASCII: any byte index is a character boundary.
        let mut values = vec![format!("{header}{}", &sealed[..first])];
        let mut rest = &sealed[first..];
        for index in 1..count {
            let take = budget(index).min(rest.len());
            values.push(rest[..take].to_string());
            rest = &rest[take..];
        }
        return Ok(values);
    }
    Err(TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Arc<CookieKeys> {
        CookieKeys::random()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_under_its_name() {
        let keys = keys();
        let sealed = keys.seal("appid_session", b"hello".to_vec()).unwrap();
        assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{sealed}");
        assert_eq!(keys.open("appid_session", &sealed), Some((b"hello".to_vec(), false)));
        assert_eq!(keys.open("appid_login", &sealed), None, "bound to the cookie's name");
        assert_eq!(CookieKeys::random().open("appid_session", &sealed), None, "another key");
        let mut flipped = sealed.into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(keys.open("appid_session", std::str::from_utf8(&flipped).unwrap()), None);
    }

    #[test]
    fn the_previous_key_opens_and_says_so() {
        let phrase = "a passphrase that is long enough to be stretched";
        let old = SessionKey::from_setting(phrase).unwrap();
        let figment = |value: String| Figment::new().merge(("secret_key", value));
        let encoded = |key: &str| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(crate::config::derive_secret_key(key).unwrap())
        };
        let before = CookieKeys::from_figment(&figment(encoded(phrase)), None);
        let sealed = before.seal("appid_session", b"v".to_vec()).unwrap();
        let other = "another passphrase that is long enough to use";
        let after = CookieKeys::from_figment(&figment(encoded(other)), Some(&old));
        assert_eq!(after.open("appid_session", &sealed), Some((b"v".to_vec(), true)));
        let without = CookieKeys::from_figment(&figment(encoded(other)), None);
        assert_eq!(without.open("appid_session", &sealed), None);
    }

    #[test]
    fn a_large_value_is_split_into_pieces_that_each_fit_and_rejoin() {
        let sealed = "x".repeat(9000);
        let values = split(&sealed, "appid_session", true, 4).unwrap();
        assert_eq!(values.len(), 3);
        assert!(values[0].starts_with("s4~3."));
        for (index, value) in values.iter().enumerate() {
            let name = chunk_name("appid_session", index, true);
            assert!(name.len() + 1 + value.len() <= MAX_COOKIE_BYTES, "{index}");
        }
        let joined = format!("{}{}{}", &values[0]["s4~3.".len()..], values[1], values[2]);
        assert_eq!(joined, sealed);
        assert_eq!(split(&sealed, "appid_session", true, 2), Err(TooLarge));
        assert_eq!(split("abc", "appid_session", true, 1).unwrap(), ["s4.abc"]);
    }
}
