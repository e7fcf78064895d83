//! The provider's signing keys (`/publickeys`), reduced to the RSA keys we may use.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::error::{ProviderError, TokenError};

/// At most this many keys are read from a key set.
const MAX_KEYS: usize = 20;

/// Usable verification keys by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    without_kid: Vec<DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.by_kid.keys().collect::<Vec<_>>()).finish()
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RsaJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    n: String,
    e: String,
}

impl KeySet {
    /// Reads a JWKS document. Keys that are not RSA signing keys for RS256 are skipped
    /// (never used as HMAC secrets, RFC 8725 §3.1); too many keys make the set malformed.
    pub fn parse(body: serde_json::Value) -> Result<KeySet, ProviderError> {
        let malformed = |what| ProviderError::Malformed { endpoint: "publickeys", what };
        let set: JwkSet = serde_json::from_value(body).map_err(|_| malformed("not a JWK set"))?;
        if set.keys.len() > MAX_KEYS {
            return Err(malformed("too many keys"));
        }
        let mut keys = KeySet::default();
        for value in set.keys {
            let Ok(jwk) = serde_json::from_value::<RsaJwk>(value) else {
                continue;
            };
            let usable = jwk.kty == "RSA"
                && jwk.use_.as_deref().is_none_or(|u| u == "sig")
                && jwk.alg.as_deref().is_none_or(|a| a == "RS256");
            let Some(key) = usable.then(|| rsa_key(&jwk.n, &jwk.e)).flatten() else {
                continue;
            };
            match jwk.kid {
                Some(kid) => {
                    keys.by_kid.insert(kid, key);
                }
                None => keys.without_kid.push(key),
            }
        }
        Ok(keys)
    }

    /// The key for a token: by `kid`; without a `kid` only when the set holds exactly one key.
    pub fn find(&self, kid: Option<&str>) -> Result<&DecodingKey, TokenError> {
        match kid {
            Some(kid) => self.by_kid.get(kid).ok_or(TokenError::UnknownKid),
            None => {
                let mut all = self.by_kid.values().chain(self.without_kid.iter());
                match (all.next(), all.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(TokenError::UnknownKid),
                    (Some(_), Some(_)) => Err(TokenError::AmbiguousKey),
                }
            }
        }
    }

    /// How many usable keys there are.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// True when no usable key was found.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An RSA public key from base64url `n` and `e`. App ID's `n` may start with a zero
/// byte; RSA verifiers want the minimal big-endian form, so leading zeros are dropped.
fn rsa_key(n: &str, e: &str) -> Option<DecodingKey> {
    let n = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
    let e = URL_SAFE_NO_PAD.decode(e.trim_end_matches('=')).ok()?;
    let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
    let e: Vec<u8> = e.into_iter().skip_while(|b| *b == 0).collect();
    // 2048-bit keys at least; 16 KiB modulus at most.
    if n.len() < 256 || n.len() > 2048 || e.is_empty() || e.len() > 8 {
        return None;
    }
    Some(DecodingKey::from_rsa_raw_components(&n, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn modulus(first: u8) -> String {
        let mut n = vec![first];
        n.extend(std::iter::repeat_n(0xAB, 255));
        URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn only_rsa_signing_keys_are_kept() {
        let set = KeySet::parse(json!({"keys": [
            {"kty": "RSA", "kid": "good", "n": modulus(0xC1), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": modulus(0xC1), "e": "AQAB"},
            {"kty": "RSA", "kid": "none", "alg": "none", "n": modulus(0xC1), "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}
        ]}))
        .unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.find(Some("good")).is_ok());
        assert_eq!(set.find(Some("hmac")).err(), Some(TokenError::UnknownKid));
        assert!(set.find(None).is_ok(), "one key and no kid: that key");
    }

    #[test]
    fn a_token_without_kid_is_ambiguous_when_there_are_two_keys() {
        let set = KeySet::parse(json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": modulus(0xC1), "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "n": modulus(0xC2), "e": "AQAB"}
        ]}))
        .unwrap();
        assert_eq!(set.find(None).err(), Some(TokenError::AmbiguousKey));
    }

    #[test]
    fn a_leading_zero_in_the_modulus_is_accepted() {
        let mut n = vec![0u8];
        n.extend(std::iter::repeat_n(0xC9, 256));
        let set = KeySet::parse(
            json!({"keys": [{"kty": "RSA", "kid": "z", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"}]}),
        )
        .unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn too_many_keys_is_malformed() {
        let keys: Vec<_> = (0..25)
            .map(|i| json!({"kty": "RSA", "kid": i.to_string(), "n": modulus(0xC1), "e": "AQAB"}))
            .collect();
        assert!(KeySet::parse(json!({ "keys": keys })).is_err());
    }
}
