//! Starting a login: a fresh `state`, `nonce` and PKCE verifier kept in a short-lived
//! private cookie, and the redirect to the provider's authorization endpoint.
//!
//! One cookie holds the logins in progress in this browser (up to `login_max_pending`,
//! the oldest dropped first, each for [`LOGIN_TTL_SECS`]), so logins started in several
//! tabs at once all complete. One pending login is stored as a single object (the format
//! of earlier releases, which instances of either release then read during a rolling
//! deployment); several as a list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use rocket::http::CookieJar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::cookie_store::{self, StoreSettings};
use super::cookies;
use crate::appid::{AppId, ProviderError, ProviderMetadata};
use crate::config::{AppIdConfig, PkceMode};
use crate::secret::{Nonce, PkceVerifier, State};

/// A login transaction older than this is refused at the callback.
pub const LOGIN_TTL_SECS: i64 = 600;

/// What the callback needs to finish a login started in this browser. `Debug` shows
/// neither state, nonce nor verifier (their types redact them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginState {
    pub state: State,
    pub nonce: Nonce,
    /// The PKCE code verifier, when PKCE was used.
    pub verifier: Option<PkceVerifier>,
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
pub fn pkce_challenge(verifier: &PkceVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
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
        state: State::new(random_token()),
        nonce: Nonce::new(random_token()),
        verifier: use_pkce.then(|| PkceVerifier::new(random_token())),
        return_to,
        created_at: crate::clock::now(),
    };
    let url = authorization_url(appid, &metadata, &login);
    let settings = store_settings(config);
    // Logins of other tabs stay, unless expired; a cookie that does not open is replaced.
    let mut pending = read(jar, &settings).unwrap_or_default();
    let now = crate::clock::now();
    pending.retain(|p| now - p.created_at <= LOGIN_TTL_SECS);
    pending.push(login);
    let keep = config.login_max_pending.max(1);
    if pending.len() > keep {
        pending.drain(..pending.len() - keep);
    }
    if !store(jar, &settings, &mut pending) {
        return Err(ProviderError::Malformed { endpoint: "login", what: "state" });
    }
    Ok(url)
}

fn store_settings(config: &AppIdConfig) -> StoreSettings {
    StoreSettings {
        secure: config.secure_cookies(),
        max_chunks: 1,
        previous_key: config.previous_session_key.clone(),
    }
}

/// The logins in progress in this browser, oldest first. `Err` if the cookie is there
/// but does not open (another key, tampered) or does not parse.
fn read(jar: &CookieJar<'_>, settings: &StoreSettings) -> Result<Vec<LoginState>, NoLogin> {
    let name = cookies::name(cookies::LOGIN, settings.secure);
    let (value, _) = match cookie_store::open_one(jar, &name, settings.previous_key.as_ref()) {
        None => return Err(NoLogin::Absent),
        Some(None) => return Err(NoLogin::Unreadable),
        Some(Some(opened)) => opened,
    };
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        One(LoginState),
        Several(Vec<LoginState>),
    }
    match serde_json::from_str(&value) {
        Ok(Stored::One(login)) => Ok(vec![login]),
        Ok(Stored::Several(logins)) => Ok(logins),
        Err(_) => Err(NoLogin::Unreadable),
    }
}

/// Writes `pending` back (oldest first), dropping the oldest while the cookie would be too
/// large for browsers (long return paths); removes the cookie when none is left. False if
/// not even the newest fits (cannot happen: return paths are at most 2,048 bytes).
fn store(jar: &CookieJar<'_>, settings: &StoreSettings, pending: &mut Vec<LoginState>) -> bool {
    let name = cookies::name(cookies::LOGIN, settings.secure);
    while !pending.is_empty() {
        let value = match pending.as_slice() {
            [one] => serde_json::to_string(one),
            several => serde_json::to_string(several),
        };
        let Ok(value) = value else {
            return false;
        };
        if cookie_store::fits(&name, &value) {
            jar.add_private(cookies::build(cookies::LOGIN, value, settings.secure, LOGIN_TTL_SECS));
            return true;
        }
        pending.remove(0);
    }
    jar.remove(cookies::removal(cookies::LOGIN, settings.secure));
    false
}

/// The authorization request (OIDC Core §3.1.2.1): code flow, the configured scopes
/// (`openid` among them), our registered redirect URI, and the transaction's state, nonce
/// and PKCE challenge.
fn authorization_url(appid: &AppId, metadata: &ProviderMetadata, login: &LoginState) -> Url {
    let config = appid.config();
    let mut url = metadata.authorization_endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", &config.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", config.redirect_uri.as_str())
            .append_pair("scope", &config.scopes)
            .append_pair("state", login.state.secret())
            .append_pair("nonce", login.nonce.secret());
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
    /// Logins are pending, but none with this `state`: a callback used twice, a forged one,
    /// one meant for another browser, or one whose login was evicted by newer ones.
    NoMatch,
}

/// Takes the pending login whose `state` matches (compared in constant time) from the
/// cookie; the other pending logins stay for their tabs. A transaction is used once,
/// whatever the outcome. A callback that matches no pending login proves nothing about
/// them and clears them all, as a refused callback always has (R-A4).
/// Without a `state` (App ID's end of a sign-up flow) the newest is taken.
pub fn take(jar: &CookieJar<'_>, config: &AppIdConfig, state: Option<&str>) -> Result<LoginState, NoLogin> {
    let settings = store_settings(config);
    let mut pending = match read(jar, &settings) {
        Ok(pending) => pending,
        Err(NoLogin::Absent) => return Err(NoLogin::Absent),
        Err(why) => {
            jar.remove(cookies::removal(cookies::LOGIN, settings.secure));
            return Err(why);
        }
    };
    let found = match state {
        // Every entry is compared, so the time taken does not say which one matched.
        Some(state) => pending.iter().enumerate().fold(None, |found, (index, login)| {
            if login.state.matches(state) {
                Some(index)
            } else {
                found
            }
        }),
        None => pending.len().checked_sub(1),
    };
    let Some(index) = found else {
        jar.remove(cookies::removal(cookies::LOGIN, settings.secure));
        return Err(NoLogin::NoMatch);
    };
    let login = pending.remove(index);
    let now = crate::clock::now();
    pending.retain(|p| now - p.created_at <= LOGIN_TTL_SECS);
    if state.is_none() || pending.is_empty() {
        jar.remove(cookies::removal(cookies::LOGIN, settings.secure));
    } else {
        store(jar, &settings, &mut pending);
    }
    Ok(login)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_follows_rfc_7636() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge(&PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// The login cookie keeps the JSON shape it had when these fields were plain strings,
    /// so transactions started before an upgrade still finish, and its `Debug` form shows
    /// none of the secrets.
    #[test]
    fn the_login_cookie_format_is_unchanged_and_debug_is_redacted() {
        let stored = r#"{"state":"st-CANARY","nonce":"no-CANARY","verifier":"pv-CANARY","return_to":"/x","created_at":7}"#;
        let login: LoginState = serde_json::from_str(stored).unwrap();
        assert!(login.state.matches("st-CANARY") && login.nonce.matches("no-CANARY"));
        assert_eq!(login.verifier.as_ref().map(PkceVerifier::secret), Some("pv-CANARY"));
        assert_eq!(serde_json::to_string(&login).unwrap(), stored);
        let debug = format!("{login:?}");
        assert!(!debug.contains("CANARY") && debug.contains("/x"), "{debug}");
        let without_pkce: LoginState = serde_json::from_str(
            r#"{"state":"s","nonce":"n","verifier":null,"return_to":"/","created_at":1}"#,
        )
        .unwrap();
        assert!(without_pkce.verifier.is_none());
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }
}
