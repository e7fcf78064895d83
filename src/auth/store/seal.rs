//! Records of the store sealed so that a copy of the store (a dump, a replica, a stolen
//! backup) reveals nothing usable: AES-256-GCM under a key that only the session's own
//! cookie holds, bound to the store key the record is written under.
//! - The grace record of a renewal: under a key derived from the OLD refresh token, which
//!   only the cookies of the session that presented it hold. The store keys the record by
//!   a SHA-256 digest of that token and the access token it replaced, which reveals neither.
//! - A server-side session: under the random key of its ticket cookie (see `ticket`).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, NONCE_LEN};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;

use crate::auth::renewal::Renewal;
use crate::auth::session::Session;

/// The first byte of every sealed record: a new layout gets a new number, and records of
/// another layout read as absent (then the renewal simply runs again under the lock).
const LAYOUT: u8 = 1;

/// Why a renewal was refused, as `Renewal::Rejected` names it. A reason read back from the
/// store must be one of these (the enum holds `&'static str`); anything else reads as
/// `refresh_refused`, which ends the session just the same.
const REASONS: &[&str] = &[
    "refresh_invalid_grant",
    "refresh_refused",
    "refresh_incomplete",
    "no_refresh_token",
    "sub_mismatch",
    "at_hash_mismatch",
    "token_malformed",
    "token_too_large",
    "alg_not_allowed",
    "crit_header",
    "typ_not_allowed",
    "ver_not_supported",
    "unknown_kid",
    "ambiguous_key",
    "bad_signature",
    "iss_mismatch",
    "aud_mismatch",
    "azp_mismatch",
    "tenant_mismatch",
    "expired",
    "clock_skew_suspected",
    "iat_too_old",
    "nonce_missing",
    "nonce_mismatch",
    "bad_sub",
];

/// What a grace record holds: a decided renewal (never an `Unavailable` one).
#[derive(Serialize, Deserialize)]
enum Record {
    Renewed(Box<Session>),
    Rejected(String),
}

fn key_for(refresh_token: &str) -> Option<[u8; 32]> {
    let hkdf = Hkdf::<Sha256>::new(Some(b"rocket-appid grace record v1"), refresh_token.as_bytes());
    let mut key = [0u8; 32];
    hkdf.expand(b"aes-256-gcm", &mut key).ok()?;
    Some(key)
}

/// The AES-GCM key of `key`'s length (16 bytes: AES-128, 32 bytes: AES-256).
fn aead_key(key: &[u8]) -> Option<LessSafeKey> {
    let algorithm = if key.len() == 16 { &AES_128_GCM } else { &AES_256_GCM };
    Some(LessSafeKey::new(UnboundKey::new(algorithm, key).ok()?))
}

/// `data` sealed under `key` (16 or 32 bytes), bound to `name`: the layout byte, the
/// nonce, then the ciphertext and tag.
pub fn seal_bytes(key: &[u8], name: &str, mut data: Vec<u8>) -> Option<Vec<u8>> {
    let key = aead_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).ok()?;
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(name.as_bytes()), &mut data)
        .ok()?;
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + data.len());
    sealed.push(LAYOUT);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&data);
    Some(sealed)
}

/// What [`seal_bytes`] sealed under `key` and `name`, or `None` if it does not open.
pub fn open_bytes(key: &[u8], name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let (&layout, rest) = sealed.split_first()?;
    if layout != LAYOUT || rest.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let key = aead_key(key)?;
    let mut data = ciphertext.to_vec();
    let plaintext = key.open_in_place(nonce, Aad::from(name.as_bytes()), &mut data).ok()?;
    let length = plaintext.len();
    data.truncate(length);
    Some(data)
}

/// The sealed record of `outcome`, bound to the store key `name` it is written under (a
/// record copied to another key does not open). `None` for an `Unavailable` outcome (never
/// kept) or if sealing fails.
pub fn seal(outcome: &Renewal, refresh_token: &str, name: &str) -> Option<Vec<u8>> {
    let record = match outcome {
        Renewal::Renewed(session) => Record::Renewed(Box::new((**session).clone())),
        Renewal::Rejected(reason) => Record::Rejected((*reason).to_string()),
        Renewal::Unavailable(_) => return None,
    };
    seal_bytes(&key_for(refresh_token)?, name, serde_json::to_vec(&record).ok()?)
}

/// The outcome sealed in `sealed` under `name`, if it opens with `refresh_token`.
pub fn open(sealed: &[u8], refresh_token: &str, name: &str) -> Option<Renewal> {
    let plaintext = open_bytes(&key_for(refresh_token)?, name, sealed)?;
    Some(match serde_json::from_slice(&plaintext).ok()? {
        Record::Renewed(session) => Renewal::Renewed(Arc::new(*session)),
        Record::Rejected(reason) => Renewal::Rejected(
            REASONS.iter().find(|known| **known == reason).copied().unwrap_or("refresh_refused"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};

    fn session() -> Session {
        let id = crate::appid::Verified::for_test("sub", None, None);
        Session::new(&id, AccessToken::new("access".into()), crate::clock::now() + 60)
            .with_refresh_token(RefreshToken::new("new refresh".into()), 3600)
    }

    #[test]
    fn a_sealed_record_opens_with_the_old_refresh_token_only() {
        let sealed = seal(&Renewal::Renewed(Arc::new(session())), "old refresh", "k").unwrap_or_default();
        match open(&sealed, "old refresh", "k") {
            Some(Renewal::Renewed(renewed)) => {
                assert_eq!(renewed.refresh_token().map(RefreshToken::secret), Some("new refresh"))
            }
            _ => panic!("the holder of the old refresh token reads the renewed session"),
        }
        assert!(open(&sealed, "another refresh", "k").is_none());
        assert!(open(&sealed, "old refresh", "other key").is_none(), "bound to its store key");
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("new refresh") && !text.contains("access") && !text.contains("sub"));
    }

    #[test]
    fn rejections_keep_their_reason_and_unavailable_outcomes_are_not_sealed() {
        let sealed = seal(&Renewal::Rejected("refresh_invalid_grant"), "rt", "k").unwrap_or_default();
        assert!(matches!(open(&sealed, "rt", "k"), Some(Renewal::Rejected("refresh_invalid_grant"))));
        let down = crate::appid::ProviderError::Unreachable { endpoint: "token", kind: "connect" };
        assert!(seal(&Renewal::Unavailable(down), "rt", "k").is_none());
        assert!(open(&[LAYOUT, 1, 2], "rt", "k").is_none(), "short records read as absent");
    }
}
