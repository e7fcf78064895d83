//! Token introspection (RFC 7662): the policy check of locally verified access tokens
//! (`APPID_INTROSPECTION`), and, with `oidc`, access tokens that are not JWTs for us.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::cache::Refreshed;
use super::discovery::ProviderMetadata;
use super::{verify, AccessClaims, AppIdClient, ProviderError, TokenError, VerifyError};
use crate::config::IntrospectionPolicy;
use crate::metrics::Cache;

#[derive(Deserialize)]
struct Introspection {
    // Strictly a JSON boolean: "true", 1 or a missing member are malformed (fail closed).
    active: bool,
}

/// The introspection answer members we read (RFC 7662 §2.2).
#[derive(Deserialize)]
struct IntrospectionClaims {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    /// A string or an array of strings (RFC 7662 §2.2, RFC 7519 §4.1.3).
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

impl IntrospectionClaims {
    /// The token was issued to us or for us: a provider answers introspection for any of
    /// its tokens, and a token of another client of the same provider must not pass.
    fn is_for(&self, client_id: &str) -> bool {
        let aud_has = match &self.aud {
            Some(serde_json::Value::String(one)) => one == client_id,
            Some(serde_json::Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(client_id)),
            _ => false,
        };
        self.client_id.as_deref() == Some(client_id) || self.azp.as_deref() == Some(client_id) || aud_has
    }
}

impl AppIdClient {
    /// Whether the access token is still active, by the configured policy: `never` asks
    /// nobody, `cached` asks `/introspect` at most once per token per TTL (never past the
    /// token's expiry), `always` asks on every call.
    pub async fn is_active(&self, token: &str, key: [u8; 32], exp: i64) -> Result<bool, ProviderError> {
        if self.config.introspection != IntrospectionPolicy::Never && !self.config.is_app_id() {
            // A generic provider need not offer introspection: without it, policy `never`.
            let metadata = self.metadata().await?;
            if metadata.introspection_endpoint.is_none() {
                if !self.no_introspection_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        event = "introspection_unavailable",
                        "the provider lists no introspection_endpoint: APPID_INTROSPECTION is treated as never"
                    );
                }
                return Ok(true);
            }
        }
        match self.config.introspection {
            IntrospectionPolicy::Never => Ok(true),
            IntrospectionPolicy::Always => {
                let refreshed = match self.introspect_by_policy(token).await {
                    Ok(active) => {
                        // Kept only as the last answer for an outage (never served fresh).
                        if self.config.outage_window_secs > 0 {
                            let keep = self.outage_window().min(Self::token_left(exp));
                            self.introspections.insert_kept(key, active, Duration::ZERO, keep).await;
                        }
                        Refreshed::Fresh(active)
                    }
                    Err(error) => Refreshed::Failed { error, last: self.introspections.last(&key).await },
                };
                self.active_or_stale(key, refreshed)
            }
            IntrospectionPolicy::Cached => {
                let left = Self::token_left(exp);
                let fresh = Duration::from_secs(self.config.introspection_ttl_secs).min(left);
                let keep = self.outage_window().min(left);
                let fetch = || self.introspect_by_policy(token);
                let refreshed = self.introspections.get_or_refresh(&key, fresh, keep, fetch).await;
                self.active_or_stale(key, refreshed)
            }
        }
    }

    /// How long until a token expiring at `exp` expires (at least a second): no answer
    /// about it is kept longer.
    fn token_left(exp: i64) -> Duration {
        Duration::from_secs(u64::try_from(exp - crate::clock::now()).unwrap_or(0).max(1))
    }

    /// What an introspection attempt means for the request. When the provider cannot be
    /// asked, a last answer `active: true` younger than the outage window still lets the
    /// (locally verified) token in (R-S2); a last answer `active: false` refuses, asked or
    /// not, since a revoked token does not come back; with no answer held, the error.
    fn active_or_stale(&self, key: [u8; 32], refreshed: Refreshed<bool>) -> Result<bool, ProviderError> {
        match refreshed {
            Refreshed::Fresh(active) => Ok(active),
            Refreshed::Failed { last: Some((false, _)), .. } => Ok(false),
            Refreshed::Failed { error, last: Some((true, age)) } if self.may_serve_stale(&error, age) => {
                self.served_stale(Cache::Introspection, key, age, &error, None);
                Ok(true)
            }
            Refreshed::Failed { error, .. } => Err(error),
        }
    }

    /// [`Self::introspect`] for the policy check of a token already verified locally. A
    /// generic provider may refuse to introspect its own JWT access tokens (oidc-provider
    /// answers `unsupported_token_type`: they are self-contained and not stored): the local
    /// verification then stands, as with policy `never` (logged once).
    async fn introspect_by_policy(&self, token: &str) -> Result<bool, ProviderError> {
        match self.introspect(token).await {
            Err(ProviderError::Status { status: 400, error: Some(error), .. })
                if !self.config.is_app_id() && error == "unsupported_token_type" =>
            {
                if !self.no_introspection_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        event = "introspection_unavailable",
                        "the provider does not introspect these access tokens (unsupported_token_type): \
                         they are verified locally only, as with APPID_INTROSPECTION=never"
                    );
                }
                Ok(true)
            }
            other => other,
        }
    }

    /// Asks `/introspect` whether an access token is still active (no cache).
    pub async fn introspect(&self, token: &str) -> Result<bool, ProviderError> {
        let metadata = self.metadata().await?;
        // Only an `oidc` provider may lack the endpoint; the caller then does not introspect.
        let endpoint = metadata
            .introspection_endpoint
            .as_ref()
            .ok_or(ProviderError::Untrusted("the provider lists no introspection_endpoint"))?;
        let answer: Introspection = self.ask(&metadata, endpoint, token).await?;
        Ok(answer.active)
    }

    /// `oidc`: an access token that is not a JWT for us, by introspection (when listed) or
    /// as accepted at login. Errors with `error` when neither applies.
    pub(super) async fn verify_opaque(
        &self,
        token: &str,
        key: [u8; 32],
        error: TokenError,
    ) -> Result<AccessClaims, VerifyError> {
        if let Some(claims) = self.opaque_tokens.get(&key).await {
            return Ok(claims);
        }
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.introspection_endpoint.as_ref() else {
            return Err(VerifyError::Token(error));
        };
        let answer: serde_json::Value = self.ask(&metadata, endpoint, token).await?;
        let parsed = <IntrospectionClaims as serde::Deserialize>::deserialize(&answer)
            .map_err(|_| ProviderError::Malformed { endpoint: "introspect", what: "introspection answer" })?;
        if parsed.active && !parsed.is_for(&self.config.client_id) {
            return Err(VerifyError::Token(TokenError::AudienceMismatch));
        }
        let (true, Some(sub), Some(exp)) = (parsed.active, parsed.sub, parsed.exp) else {
            // Inactive, or active without saying for whom or until when: not usable.
            return Err(VerifyError::Token(TokenError::Expired));
        };
        // This answer also serves the policy check that follows (no second call).
        let left = Self::token_left(exp);
        let fresh = Duration::from_secs(self.config.introspection_ttl_secs).min(left);
        self.introspections.insert_kept(key, true, fresh, self.outage_window().min(left)).await;
        let token_roles = if self.config.roles_source.uses_token() {
            verify::roles_in_claims(&answer, &self.config.roles_claim)
        } else {
            Vec::new()
        };
        AccessClaims::vouched(sub, exp, parsed.scope, token_roles)
            .ok_or(VerifyError::Provider(ProviderError::Malformed { endpoint: "introspect", what: "claims" }))
    }

    /// Posts `token` to the introspection `endpoint` with our client authentication.
    async fn ask<T: DeserializeOwned>(
        &self,
        metadata: &ProviderMetadata,
        endpoint: &url::Url,
        token: &str,
    ) -> Result<T, ProviderError> {
        let mut form = vec![("token", token)];
        let auth = super::token::client_auth(&self.config, metadata, &mut form);
        self.http.post_form("introspect", endpoint.as_str(), auth, &form, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_introspected_token_must_be_ours() {
        let answer = |extra: serde_json::Value| -> IntrospectionClaims {
            let mut body = serde_json::json!({ "active": true, "sub": "u", "exp": 1 });
            if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
                body.extend(extra);
            }
            serde_json::from_value(body).unwrap()
        };
        assert!(answer(serde_json::json!({ "client_id": "us" })).is_for("us"));
        assert!(answer(serde_json::json!({ "azp": "us" })).is_for("us"));
        assert!(answer(serde_json::json!({ "aud": "us" })).is_for("us"));
        assert!(answer(serde_json::json!({ "aud": ["api", "us"] })).is_for("us"));
        // Another client's token, or one that says nothing about whose it is.
        assert!(!answer(serde_json::json!({ "client_id": "them", "aud": ["api"] })).is_for("us"));
        assert!(!answer(serde_json::json!({})).is_for("us"));
    }
}
