//! Silent renewal: when a session's access token has expired, or is about to, and the
//! session holds a refresh token, the tokens are renewed before the request is served,
//! without a redirect, and at most once per refresh token (the session store shares the
//! renewal between concurrent requests and keeps its outcome for a grace period).

use std::sync::Arc;

use super::guard::{authorize, authorize_verified, AuthError, Decision};
use super::session::Session;
use super::store::SessionStore;
use crate::appid::{AppId, ProviderError, VerifyError};
use crate::secret::RefreshToken;

/// [`authorize`] with silent renewal: when the session's access token has expired or has
/// less than `refresh_window_secs` left and the session holds a refresh token, the tokens
/// are renewed first (at most one refresh per refresh token, see [`renew`]). Returns
/// the decision and, when the tokens were renewed, the session to write back.
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
    let window = i64::try_from(appid.config().refresh_window_secs).unwrap_or(0);
    // The current access token's claims, if it can still serve this request should
    // renewal fail (verified once here, not again by `authorize`).
    let usable = match appid.verify_access_token_keyed(current.access_token.secret(), key).await {
        Ok(claims) if claims.exp - now > window => {
            return (authorize_verified(current, appid, key, &claims).await, None)
        }
        Ok(claims) => Some(claims),
        Err(VerifyError::Token(crate::appid::TokenError::Expired)) => None,
        // Anything else wrong with the token is not cured by renewing it.
        Err(_) => return (authorize(Some(current), appid).await, None),
    };
    match (renew(current, appid, store).await, usable) {
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

/// Renews the session's tokens, once per refresh token however many requests ask at once
/// (see [`crate::auth::store::Backend::renew_once`]).
async fn renew(session: &Session, appid: &AppId, store: &SessionStore) -> Renewal {
    let Some(refresh_token) = session.refresh_token() else {
        return Renewal::Rejected("no_refresh_token");
    };
    let key = crate::appid::token_key(refresh_token.secret());
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

/// Forgets the renewal made with this refresh token (at logout: a renewed session must not
/// outlive it in the grace record; the deny-list refuses its cookie anyway).
pub async fn forget_renewal(store: &SessionStore, refresh_token: &RefreshToken) {
    store.forget_renewal(crate::appid::token_key(refresh_token.secret())).await;
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
