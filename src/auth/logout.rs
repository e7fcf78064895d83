//! Logout (`POST /logout`, mounted by the web layer): ends the session. Only same-origin
//! form posts that carry the session's logout token are honoured, and every destination is
//! fixed by configuration (never taken from the request). Logout clears every cookie of the
//! session, puts the session on the deny-list, revokes its refresh token at the provider
//! and, when configured, sends the browser on to end the provider's single sign-on session.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Orbit, Rocket};
use subtle::ConstantTimeEq;

use super::cookies;
use super::renewal::forget_renewal;
use super::session::Session;
use super::store::SessionStore;
use crate::appid::AppId;
use crate::secret::RefreshToken;

/// How long logout waits for the provider to revoke the refresh token: logout must not
/// hang on a slow provider (the deny-list already ends the session here).
const REVOKE_WAIT: Duration = Duration::from_secs(2);

/// Proof that a state-changing request came from one of our own pages (by the browser's
/// `Sec-Fetch-Site`, or else its `Origin`).
pub struct SameOrigin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOrigin {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(appid) = request.rocket().state::<AppId>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let ours = appid.config().redirect_uri.origin().ascii_serialization();
        let headers = request.headers();
        // Browsers that send Sec-Fetch-Site are judged by it alone: with our
        // `Referrer-Policy: no-referrer` they send `Origin: null` even for our own forms.
        // Older browsers are judged by Origin; clients that send neither are no browser
        // (a cross-site form post always carries one of the two).
        let allowed = match (headers.get_one("Sec-Fetch-Site"), headers.get_one("Origin")) {
            (Some(site), _) => site == "same-origin" || site == "none",
            (None, Some(origin)) => origin == ours,
            (None, None) => true,
        };
        if allowed {
            Outcome::Success(SameOrigin)
        } else {
            Outcome::Error((Status::Forbidden, ()))
        }
    }
}

/// The session of this request, if it counts (read once per request), with its logout token.
pub struct CurrentSession(Option<(Session, String)>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentSession {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let session = Session::resolve(request).await.valid().and_then(|session| {
            csrf_token(request.rocket(), &session.sid).map(|token| (session.clone(), token))
        });
        Outcome::Success(CurrentSession(session))
    }
}

/// The logout token of session `sid`, rendered into the logout form of every page that
/// shows the signed-in user: HKDF-SHA256 (an HMAC construction) keyed with the session
/// secret key, over the session id. The session id only exists inside the sealed cookie,
/// so another site can neither read nor compute it; all instances that share the key agree.
/// `None` only in an app without the composition root (which manages the key): no session
/// can then be ended by a form.
pub fn csrf_token(rocket: &Rocket<Orbit>, sid: &str) -> Option<String> {
    rocket.state::<CsrfKey>().map(|key| key.token(sid))
}

/// The key of logout tokens, derived once at ignite (by the composition root) from the
/// configured `secret_key`, because reading the configuration on every page would cost
/// more than rendering it.
///
/// A token is HKDF-SHA256 (RFC 5869) of the secret with info `logout:{sid}`, one block:
/// `HMAC(PRK, info || 0x01)`, computed here with aws-lc's HMAC and the PRK's key schedule
/// prepared once, because every page of a signed-in user carries one.
#[derive(Clone)]
pub struct CsrfKey(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey([redacted])")
    }
}

impl CsrfKey {
    /// From the app's `secret_key` as configured (the same on every instance). Without one
    /// (only `cargo run` with the embedded emulator, where Rocket generates a key per
    /// process and sessions end with the process), a random value for this app.
    pub fn from_figment(figment: &rocket::figment::Figment) -> Self {
        let secret = match figment.extract_inner::<String>("secret_key") {
            Ok(key) if !key.trim().is_empty() => key.into_bytes(),
            _ => rand::random::<[u8; 32]>().to_vec(),
        };
        CsrfKey::from_secret(&secret)
    }

    fn from_secret(secret: &[u8]) -> Self {
        use aws_lc_rs::hmac;
        // HKDF-Extract: PRK = HMAC(salt, secret).
        let salt = hmac::Key::new(hmac::HMAC_SHA256, CSRF_SALT);
        let prk = hmac::sign(&salt, secret);
        CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()))
    }

    /// The token of session `sid`.
    pub fn token(&self, sid: &str) -> String {
        // HKDF-Expand of 32 bytes: the first block only.
        let mut block = aws_lc_rs::hmac::Context::with_key(&self.0);
        block.update(b"logout:");
        block.update(sid.as_bytes());
        block.update(&[1]);
        URL_SAFE_NO_PAD.encode(block.sign())
    }
}

/// The HKDF salt of logout tokens.
const CSRF_SALT: &[u8] = b"rocket-appid logout csrf v1";

/// True when `sent` is the session's logout token (compared in constant time).
fn csrf_matches(expected: &str, sent: Option<&str>) -> bool {
    let Some(sent) = sent else { return false };
    bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))
}

/// Why a logout was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutRefused {
    /// Not a same-origin form post of one of our pages, or without the session's token.
    CrossSite,
}

/// Ends the session of this request (`current`) for a form post with logout token `sent`:
/// puts the session on the deny-list, forgets its renewal, revokes its refresh token and
/// clears every cookie of it. Returns the fixed path the browser goes to next.
pub async fn end_session(
    same_origin: bool,
    current: &CurrentSession,
    sent: Option<&str>,
    jar: &CookieJar<'_>,
    appid: &AppId,
    store: &SessionStore,
) -> Result<&'static str, LogoutRefused> {
    if !same_origin {
        tracing::warn!(event = "logout_refused", reason = "cross_origin");
        return Err(LogoutRefused::CrossSite);
    }
    let secure = appid.config().secure_cookies();
    if let Some((session, expected)) = &current.0 {
        // Without a session there is nothing another site could end, so only a logout of a
        // live session needs the token (a stale page can still clear broken cookies).
        if !csrf_matches(expected, sent) {
            tracing::warn!(event = "logout_refused", reason = "csrf_token");
            return Err(LogoutRefused::CrossSite);
        }
        tracing::info!(event = "logout", sub = %session.sub);
        // A copy of this cookie saved before now must not work afterwards (R-L2); renewed
        // cookies of the same login carry the same session id.
        store.deny(&session.sid, session.expires_at).await;
        if session.is_server_side() {
            store.delete_session(&session.sid).await;
        }
        if let Some(refresh_token) = session.refresh_token() {
            forget_renewal(store, session, refresh_token).await;
            revoke(appid, refresh_token).await;
        }
    }
    Session::clear(jar, secure);
    jar.remove_private(cookies::removal(cookies::LOGIN, secure));
    jar.remove(cookies::signed_in_removal());
    // Fixed destinations only; which one depends on configuration, never on the request.
    Ok(if appid.config().sso_logout { "/signed_out?provider=1" } else { "/signed_out" })
}

/// Sets the "just signed out" marker that the next response removes (see
/// `cookies::SIGNED_OUT`); not again while it is still there (a reload, or the provider's
/// SSO logout returning): that response removes it, which is the cookie change that matters.
pub fn mark_signed_out(jar: &CookieJar<'_>, secure: bool) {
    let marker = cookies::name(cookies::SIGNED_OUT, secure);
    if jar.get(&marker).is_none_or(|c| c.value().is_empty()) {
        jar.add(cookies::build(cookies::SIGNED_OUT, "1".to_string(), secure, 300));
    }
}

/// Revokes the refresh token; a failure is logged and does not stop the logout (the
/// session is already on the deny-list, and the token expires on its own).
async fn revoke(appid: &AppId, refresh_token: &RefreshToken) {
    match tokio::time::timeout(REVOKE_WAIT, appid.revoke_refresh_token(refresh_token)).await {
        Ok(Ok(())) => tracing::info!(event = "refresh_token_revoked"),
        Ok(Err(error)) => tracing::warn!(event = "refresh_token_revoke_failed", %error),
        Err(_) => tracing::warn!(event = "refresh_token_revoke_failed", error = "timeout"),
    }
}

/// Where the browser ends the provider's single sign-on session: the provider's
/// `end_session_endpoint` when its discovery lists one (OIDC RP-Initiated Logout with
/// `client_id`, as the id_token for `id_token_hint` is not kept), else App ID's Cloud
/// Directory SSO logout. Both return to the configured `post_logout_redirect_uri`.
pub async fn provider_logout_url(appid: &AppId) -> Option<String> {
    let config = appid.config();
    let back = config.post_logout_redirect_uri.as_str();
    if let Some(mut url) = appid.end_session_endpoint().await {
        url.query_pairs_mut()
            .append_pair("client_id", &config.client_id)
            .append_pair("post_logout_redirect_uri", back);
        return Some(url.to_string());
    }
    // Cloud Directory's SSO logout exists only at App ID; another provider without an
    // `end_session_endpoint` has no single sign-on logout we could call.
    if !config.is_app_id() {
        return None;
    }
    let mut url = url::Url::parse(&config.endpoint("cloud_directory/sso/logout")).ok()?;
    url.query_pairs_mut().append_pair("redirect_uri", back).append_pair("client_id", &config.client_id);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instances of an older build derive the same tokens (a rolling deploy keeps logout
    /// working): the value is HKDF-SHA256's, computed by the hkdf crate here.
    #[test]
    fn a_logout_token_is_hkdf_sha256_of_the_secret_and_session_id() {
        let secret = b"a secret key of the app, as configured";
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(CSRF_SALT), secret);
        let mut expected = [0u8; 32];
        hkdf.expand_multi_info(&[b"logout:", b"sid-1"], &mut expected).unwrap();
        assert_eq!(CsrfKey::from_secret(secret).token("sid-1"), URL_SAFE_NO_PAD.encode(expected));
        assert_ne!(CsrfKey::from_secret(secret).token("sid-2"), URL_SAFE_NO_PAD.encode(expected));
    }
}
