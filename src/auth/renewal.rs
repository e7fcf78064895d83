//! Silent renewal: when a session's access token has expired, or is about to, and the
//! session holds a refresh token, the tokens are renewed before the request is served,
//! without a redirect, and at most once per refresh token and access token (the session
//! store shares the renewal between concurrent requests and keeps its outcome for a grace
//! period, handed out only while its access token has not expired).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::guard::{authorize, authorize_verified, AuthError, Decision};
use super::session::Session;
use super::store::SessionStore;
use crate::appid::{AccessClaims, AppId, ProviderError, VerifyError};
use crate::secret::RefreshToken;

/// Renewals one request may chain: a kept renewal whose access token has expired since
/// is renewed in turn (with the refresh token it issued), and so on. Two cover a kept
/// renewal; the bound stops a provider that keeps issuing expired tokens.
const MAX_CHAINED_RENEWALS: usize = 3;

/// [`authorize`] with silent renewal: when the session's access token has expired or is
/// within its renewal window (see [`renewal_window`]) and the session holds a refresh
/// token, the tokens are renewed first (at most one refresh per session state, see
/// [`renew`]). Returns the decision and, when the tokens were renewed, the session to
/// write back.
pub async fn authorize_renewing(
    session: Option<&Session>,
    appid: &AppId,
    store: &SessionStore,
) -> (Decision, Option<Session>) {
    let Some(current) = session else {
        return (Err(AuthError::NotLoggedIn("no_session")), None);
    };
    if current.refresh_token().is_none() {
        return (authorize(Some(current), appid).await, None);
    }
    let Some(key) = current.token_key() else {
        return (Err(AuthError::NotLoggedIn("no_session")), None);
    };
    let now = crate::clock::now();
    // The current access token's claims, if it can still serve this request should
    // renewal fail (verified once here, not again by `authorize`).
    let usable = match appid.verify_access_token_keyed(current.access_token.secret(), key).await {
        Ok(claims) if claims.exp - now > renewal_window(appid, &claims) => {
            return (authorize_verified(current, appid, key, &claims).await, None)
        }
        Ok(claims) => Some(claims),
        Err(VerifyError::Token(crate::appid::TokenError::Expired)) => None,
        // Anything else wrong with the token is not cured by renewing it.
        Err(_) => return (authorize(Some(current), appid).await, None),
    };
    let mut outcome = renew(current, appid, store).await;
    for _ in 1..MAX_CHAINED_RENEWALS {
        match &outcome {
            // A renewal kept for the grace period may be older than its access token's
            // life (short-lived tokens): it is followed by renewing it in turn, never
            // served with a token the provider no longer accepts.
            Renewal::Renewed(renewed) if !still_usable(renewed, appid).await => {
                tracing::info!(event = "session_renewal_chained", reason = "kept_renewal_expired");
                let renewed = renewed.clone();
                outcome = renew(&renewed, appid, store).await;
            }
            _ => break,
        }
    }
    match (outcome, usable) {
        (Renewal::Renewed(renewed), _) => {
            let decision = authorize(Some(&renewed), appid).await;
            (decision, Some((*renewed).clone()))
        }
        // Renewal failed but the token has not expired yet (early renewal): it serves
        // this request; a later one tries again.
        (_, Some(claims)) => (authorize_verified(current, appid, key, &claims).await, None),
        (Renewal::Rejected(reason), None) => (Err(AuthError::NotLoggedIn(reason)), None),
        (Renewal::Unavailable(error), None) => (Err(AuthError::Unavailable(error)), None),
    }
}

/// How long before its expiry an access token is renewed: the configured window, but at
/// most half the token's lifetime, so that a token that lives shorter than the window is
/// not renewed on every request.
fn renewal_window(appid: &AppId, claims: &AccessClaims) -> i64 {
    let configured = i64::try_from(appid.config().refresh_window_secs).unwrap_or(0);
    match claims.iat {
        Some(iat) if claims.exp > iat => configured.min((claims.exp - iat) / 2),
        _ => configured,
    }
}

/// False when the renewed session's access token has expired (a renewal kept for the
/// grace period outlived it). Other verification failures are left to [`authorize`].
async fn still_usable(renewed: &Session, appid: &AppId) -> bool {
    let Some(key) = renewed.token_key() else { return true };
    match appid.verify_access_token_keyed(renewed.access_token.secret(), key).await {
        Ok(claims) => claims.exp > crate::clock::now(),
        Err(VerifyError::Token(crate::appid::TokenError::Expired)) => false,
        Err(_) => true,
    }
}

/// The result of one renewal, shared by every request that waited for it.
#[derive(Clone)]
pub enum Renewal {
    Renewed(Arc<Session>),
    /// The provider refused the refresh token (`invalid_grant`: expired, revoked, used up)
    /// or the renewed tokens did not verify: the user must log in again.
    Rejected(&'static str),
    /// The provider could not be asked: 503, and the session stays as it is.
    Unavailable(ProviderError),
}

/// Renews the session's tokens, once per session state however many requests ask at once
/// (see [`crate::auth::store::Backend::renew_once`] and [`renewal_key`]).
async fn renew(session: &Session, appid: &AppId, store: &SessionStore) -> Renewal {
    let Some(refresh_token) = session.refresh_token() else {
        return Renewal::Rejected("no_refresh_token");
    };
    let key = renewal_key(session, refresh_token);
    let (session, appid) = (session.clone(), appid.clone());
    let refresh = async move {
        // Its own task: a request cancelled half-way (the browser navigated on) must not
        // lose the rotated refresh token that the provider has already issued.
        let metrics = appid.metrics().clone();
        let outcome = match tokio::spawn(async move { refresh_once(&session, &appid).await }).await {
            Ok(outcome) => outcome,
            Err(_) => Renewal::Unavailable(ProviderError::Unreachable { endpoint: "token", kind: "request" }),
        };
        metrics.renewal(match &outcome {
            Renewal::Renewed(_) => "renewed",
            Renewal::Rejected(_) => "rejected",
            Renewal::Unavailable(_) => "unavailable",
        });
        outcome
    };
    store.renew_once(key, refresh_token.secret(), Box::pin(refresh)).await
}

/// Forgets the renewal of this session's tokens (at logout: a renewed session must not
/// outlive it in the grace record; the deny-list refuses its cookie anyway).
pub async fn forget_renewal(store: &SessionStore, session: &Session, refresh_token: &RefreshToken) {
    store.forget_renewal(renewal_key(session, refresh_token)).await;
}

/// What one renewal is shared and kept under: the refresh token together with the access
/// token it replaces. A provider that does not rotate refresh tokens leaves the renewed
/// session with the same refresh token; keyed by that alone, the renewed session's own
/// renewal would find the previous one, kept for the grace period, and never reach the
/// provider. (A rotating provider gives each renewal a new refresh token anyway.)
fn renewal_key(session: &Session, refresh_token: &RefreshToken) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(crate::appid::token_key(refresh_token.secret()));
    hasher.update(crate::appid::token_key(session.access_token.secret()));
    hasher.finalize().into()
}

/// One refresh at the provider, and the checks of what it returns (as at login).
async fn refresh_once(session: &Session, appid: &AppId) -> Renewal {
    let Some(refresh_token) = session.refresh_token() else {
        return Renewal::Rejected("no_refresh_token");
    };
    let renewed = match appid.refresh_tokens(refresh_token).await {
        Ok(renewed) => renewed,
        Err(error) => return refresh_failed(error),
    };
    let access = match appid.verify_access_token(renewed.access_token.secret()).await {
        Ok(claims) => claims,
        Err(error) => return verify_failed(error, "access_token"),
    };
    if access.sub != session.sub {
        tracing::warn!(event = "session_refresh_refused", reason = "sub_mismatch");
        return Renewal::Rejected("sub_mismatch");
    }
    let mut id = None;
    if let Some(id_token) = &renewed.id_token {
        match appid.verify_refreshed_id_token(id_token.expose(), &session.sub).await {
            Ok(verified) if verified.at_hash_matches(&renewed.access_token) => id = Some(verified),
            Ok(_) => {
                tracing::warn!(event = "session_refresh_refused", reason = "at_hash_mismatch");
                return Renewal::Rejected("at_hash_mismatch");
            }
            Err(error) => return verify_failed(error, "id_token"),
        }
    }
    tracing::info!(event = "session_refreshed", sub = %session.sub, rotated = renewed.refresh_token.is_some());
    let renewed = session.renewed(renewed.access_token, renewed.refresh_token, id.as_ref());
    Renewal::Renewed(Arc::new(renewed))
}

/// A refused refresh ends the session; a provider that cannot be asked does not.
fn refresh_failed(error: ProviderError) -> Renewal {
    match &error {
        // RFC 6749 §5.2: `invalid_grant` and the other client errors (400, and 401 as App
        // ID's SDK mock sends for a bad refresh token) mean this refresh token will never
        // work; 429 means "later".
        ProviderError::Status { status, error: code, .. }
            if (400..500).contains(status) && *status != 429 =>
        {
            let reason = if code.as_deref() == Some("invalid_grant") {
                "refresh_invalid_grant"
            } else {
                "refresh_refused"
            };
            tracing::info!(event = "session_refresh_refused", reason, status = *status);
            Renewal::Rejected(reason)
        }
        ProviderError::Incomplete { .. } => {
            tracing::warn!(event = "session_refresh_refused", reason = "token_response_incomplete");
            Renewal::Rejected("refresh_incomplete")
        }
        _ => {
            tracing::warn!(event = "session_refresh_failed", %error);
            Renewal::Unavailable(error)
        }
    }
}

fn verify_failed(error: VerifyError, which: &'static str) -> Renewal {
    match error {
        VerifyError::Token(error) => {
            tracing::warn!(event = "session_refresh_refused", token = which, reason = error.reason());
            Renewal::Rejected(error.reason())
        }
        VerifyError::Provider(error) => Renewal::Unavailable(error),
    }
}
