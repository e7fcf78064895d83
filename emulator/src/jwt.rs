//! RS256 signing keys with App ID-style key ids, compact JWS signing and verification.

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::EmulatorError;
use crate::util;

/// An RS256 signing key with an App ID-style kid ("appId-{tenant}-{ISO timestamp with millis}").
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    // Only the kid: the private key must never end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish()
    }
}

impl SigningKey {
    /// Generates a fresh RSA-2048 key whose kid names `tenant_id` and the creation time.
    pub fn generate(tenant_id: &str) -> Result<SigningKey, EmulatorError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| EmulatorError::KeyGeneration)?;
        let kid = format!("appId-{tenant_id}-{}", util::iso_millis(util::unique_millis()));
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        Ok(SigningKey { kid, pair, n, e })
    }

    /// The key id published in the JWKS and put in token headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK: `{"kty":"RSA","use":"sig","n":..,"e":..,"kid":..}` with no
    /// `alg` member, as App ID publishes it; `n`/`e` are base64url without padding.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "kid": self.kid,
        })
    }

    /// Signs exactly the given header and claims as a compact JWS with RS256 (PKCS#1 v1.5,
    /// SHA-256). The caller decides alg/kid/typ/ver, so tests can forge odd headers. If
    /// aws-lc-rs ever fails to sign, the signature part is empty and the token never verifies.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let encoded = match self.pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig) {
            Ok(()) => URL_SAFE_NO_PAD.encode(&sig),
            Err(_) => String::new(),
        };
        format!("{input}.{encoded}")
    }

    /// Signs claims with App ID's v4 header `{"alg":"RS256","typ":"JWT","kid":kid,"ver":4}`.
    pub fn sign_claims(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid, "ver": 4});
        self.sign(&header, claims)
    }

    /// Verifies a compact JWS made by this key (alg RS256, matching kid, valid signature) and
    /// returns its claims. Expiry and other claims are the caller's business.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "RS256" || header.get("kid")?.as_str()? != self.kid {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let public = RsaPublicKeyComponents { n: self.n.as_slice(), e: self.e.as_slice() };
        let signed = format!("{h}.{c}");
        public.verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &sig).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let started = std::time::Instant::now();
        let key = SigningKey::generate("tenant").unwrap();
        eprintln!("RSA-2048 keygen took {:?}", started.elapsed());
        assert!(key.kid().starts_with("appId-tenant-"));
        let token = key.sign_claims(&json!({"sub": "x"}));
        assert_eq!(key.verify(&token).unwrap()["sub"], "x");
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'A');
        assert!(key.verify(&tampered).is_none());
        assert_eq!(key.jwk()["e"], "AQAB");
        assert!(key.jwk().get("alg").is_none());
    }
}
