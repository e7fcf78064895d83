//! Starting a login: a fresh `state`, `nonce` and PKCE verifier kept in a short-lived
//! private cookie, and the redirect to the provider's authorization endpoint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use rocket::http::CookieJar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::cookies;
use crate::appid::{AppId, ProviderError, ProviderMetadata};
use crate::config::PkceMode;

/// A login transaction older than this is refused at the callback.
pub const LOGIN_TTL_SECS: i64 = 600;

/// What the callback needs to finish a login started in this browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier, when PKCE was used.
    pub verifier: Option<String>,
    pub return_to: String,
    pub created_at: i64,
}

/// 256 bits from the operating system's CSPRNG, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 S256: BASE64URL(SHA256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Starts a login that returns to `return_to`: stores the transaction in a cookie and
/// gives the provider URL to send the browser to.
pub async fn begin(appid: &AppId, jar: &CookieJar<'_>, return_to: String) -> Result<Url, ProviderError> {
    let metadata = appid.metadata().await?;
    let config = appid.config();
    let use_pkce = match config.pkce {
        PkceMode::Always => true,
        PkceMode::Never => false,
        PkceMode::Auto => metadata.pkce_s256,
    };
    let login = LoginState {
        state: random_token(),
        nonce: random_token(),
        verifier: use_pkce.then(random_token),
        return_to,
        created_at: crate::clock::now(),
    };
    let url = authorization_url(appid, &metadata, &login);
    let value = serde_json::to_string(&login)
        .map_err(|_| ProviderError::Malformed { endpoint: "login", what: "state" })?;
    jar.add_private(cookies::build(cookies::LOGIN, value, config.secure_cookies(), LOGIN_TTL_SECS));
    Ok(url)
}

/// The authorization request (OIDC Core §3.1.2.1): code flow, scope `openid`, our
/// registered redirect URI, and the transaction's state, nonce and PKCE challenge.
fn authorization_url(appid: &AppId, metadata: &ProviderMetadata, login: &LoginState) -> Url {
    let config = appid.config();
    let mut url = metadata.authorization_endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", &config.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", config.redirect_uri.as_str())
            .append_pair("scope", "openid")
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce);
        if let Some(verifier) = &login.verifier {
            query
                .append_pair("code_challenge", &pkce_challenge(verifier))
                .append_pair("code_challenge_method", "S256");
        }
    }
    url
}

/// Why no pending login came back with the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLogin {
    /// No transaction cookie: a bookmark, another browser, or a callback used twice.
    Absent,
    /// A transaction cookie that does not open: sealed with a key this process no longer
    /// has (a restart with a new `SESSION_SECRET_KEY`), or tampered with.
    Unreadable,
}

/// Takes the pending login from its cookie and removes the cookie (a transaction is
/// used once, whatever the outcome).
pub fn take(jar: &CookieJar<'_>, secure: bool) -> Result<LoginState, NoLogin> {
    let name = cookies::name(cookies::LOGIN, secure);
    let Some(cookie) = jar.get_private(&name) else {
        if jar.get(&name).is_none() {
            return Err(NoLogin::Absent);
        }
        jar.remove(cookies::removal(cookies::LOGIN, secure));
        return Err(NoLogin::Unreadable);
    };
    jar.remove_private(cookies::removal(cookies::LOGIN, secure));
    serde_json::from_str(cookie.value()).map_err(|_| NoLogin::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_follows_rfc_7636() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }
}
