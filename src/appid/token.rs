//! The code exchange at the token endpoint (RFC 6749 §4.1.3, client auth by HTTP Basic).

use serde::Deserialize;

use super::discovery::ProviderMetadata;
use super::error::ProviderError;
use super::http::{Auth, Http};
use crate::config::AppIdConfig;
use crate::secret::{AccessToken, PkceVerifier, RefreshToken, Secret};

/// The token endpoint's answer (tokens kept as secrets).
#[derive(Debug)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub id_token: Secret,
    pub refresh_token: Option<RefreshToken>,
    /// The access token's lifetime in seconds, when the provider said (a number, or a
    /// numeric string as in some App ID samples).
    pub expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    id_token: Option<String>,
    token_type: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Client authentication at the token, introspection and revocation endpoints: HTTP Basic
/// (`client_secret_basic`, App ID's and the OAuth default), or the id and secret in the form
/// (`client_secret_post`) when that is all the provider lists. Adds to `form` as needed.
pub(super) fn client_auth<'a>(
    config: &'a AppIdConfig,
    metadata: &ProviderMetadata,
    form: &mut Vec<(&'static str, &'a str)>,
) -> Auth<'a> {
    if metadata.client_secret_post {
        if !form.iter().any(|(name, _)| *name == "client_id") {
            form.push(("client_id", config.client_id.as_str()));
        }
        form.push(("client_secret", config.client_secret.expose()));
        Auth::None
    } else {
        Auth::Basic(&config.client_id, config.client_secret.expose())
    }
}

/// Exchanges an authorization code for tokens. Never retried: a code is single-use.
pub async fn exchange_code(
    http: &Http,
    config: &AppIdConfig,
    metadata: &ProviderMetadata,
    code: &str,
    code_verifier: Option<&PkceVerifier>,
) -> Result<Tokens, ProviderError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", config.redirect_uri.as_str()),
        // App ID's own SDKs send client_id in the body as well as in Basic auth.
        ("client_id", config.client_id.as_str()),
    ];
    if let Some(verifier) = code_verifier {
        form.push(("code_verifier", verifier.secret()));
    }
    let auth = client_auth(config, metadata, &mut form);
    let response: TokenResponse =
        http.post_form("token", metadata.token_endpoint.as_str(), auth, &form, true).await?;
    let incomplete = |what| ProviderError::Incomplete { endpoint: "token", what };
    if !response.token_type.eq_ignore_ascii_case("bearer") {
        return Err(incomplete("token_type is not Bearer"));
    }
    let id_token = response.id_token.ok_or(incomplete("no id_token"))?;
    Ok(Tokens {
        access_token: AccessToken::new(response.access_token),
        id_token: Secret::new(id_token),
        refresh_token: response.refresh_token.map(RefreshToken::new),
        expires_in: response.expires_in.as_ref().and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
    })
}
