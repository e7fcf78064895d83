//! The refresh-token grant (RFC 6749 §6) and refresh-token revocation (RFC 7009).

use serde::Deserialize;

use super::discovery::ProviderMetadata;
use super::error::ProviderError;
use super::http::Http;
use crate::config::AppIdConfig;
use crate::secret::{AccessToken, RefreshToken, Secret};

/// What the token endpoint answered to a refresh.
#[derive(Debug)]
pub struct Renewed {
    pub access_token: AccessToken,
    /// App ID sends a new id_token with every refresh; other providers may not.
    pub id_token: Option<Secret>,
    /// The rotated refresh token; absent when the provider keeps the old one (RFC 6749 §6).
    pub refresh_token: Option<RefreshToken>,
}

#[derive(Deserialize)]
struct RefreshResponse {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
    token_type: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Exchanges a refresh token for new tokens. Never retried: with rotation the presented
/// token may already be used up when an answer is lost.
pub async fn refresh(
    http: &Http,
    config: &AppIdConfig,
    metadata: &ProviderMetadata,
    refresh_token: &RefreshToken,
) -> Result<Renewed, ProviderError> {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.secret())];
    let auth = super::token::client_auth(config, metadata, &mut form);
    // The "token" endpoint name: the refresh shares the token endpoint's circuit breaker.
    let response: RefreshResponse =
        http.post_form("token", metadata.token_endpoint.as_str(), auth, &form, true).await?;
    if !response.token_type.eq_ignore_ascii_case("bearer") {
        return Err(ProviderError::Incomplete { endpoint: "token", what: "token_type is not Bearer" });
    }
    Ok(Renewed {
        access_token: AccessToken::new(response.access_token),
        id_token: response.id_token.filter(|t| !t.is_empty()).map(Secret::new),
        refresh_token: response.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::new),
    })
}

/// Revokes a refresh token (RFC 7009) at App ID's `{oauthServerUrl}/revoke` (App ID lists
/// no `revocation_endpoint` in discovery, the path is documented) or, with `oidc`, at the
/// listed `revocation_endpoint`; a provider that lists none is not asked.
pub async fn revoke(
    http: &Http,
    config: &AppIdConfig,
    metadata: &ProviderMetadata,
    refresh_token: &RefreshToken,
) -> Result<(), ProviderError> {
    let Some(url) = &metadata.revocation_endpoint else { return Ok(()) };
    let url = url.as_str();
    let mut form = vec![("token", refresh_token.secret()), ("token_type_hint", "refresh_token")];
    let auth = super::token::client_auth(config, metadata, &mut form);
    // RFC 7009 §2.2: success is a 200 whose body is irrelevant (usually empty).
    http.post_form_status("revoke", url, auth, &form).await
}
