//! `AuthorizedUser`: the request guard of protected routes. It proves a readable session,
//! a valid access token (checked locally, and by introspection when configured) and at
//! least one App ID role. When the access token has expired (or is about to) and the
//! session holds a refresh token, it renews the tokens first, without a redirect (see
//! `renewal`).

use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::Serialize;

use super::cookies;
use super::renewal::authorize_renewing;
use super::session::{Loaded, NotStored, Session, SessionSettings};
use super::store::SessionStore;
use crate::appid::{AccessClaims, AppId, ProviderError, VerifyError};

/// A logged-in user with at least one role.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizedUser {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The user's App ID role names. Shared with the roles cache: a request copies none.
    pub roles: Arc<[String]>,
    /// The access token's scopes (its `scope` claim: App ID lists the scopes of the
    /// user's roles there, as bare names, next to its own `openid`, `appid_*`). Shared
    /// with the verified-token cache.
    pub scopes: Arc<[String]>,
    /// When the session ends (seconds since the epoch); for a bearer token, when it expires.
    pub expires_at: i64,
}

/// Who is signed in, for display only (names, never tokens).
#[derive(Debug, Clone, Serialize)]
pub struct Viewer {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl From<&Session> for Viewer {
    fn from(session: &Session) -> Self {
        Viewer { name: session.name.clone(), email: session.email.clone() }
    }
}

/// Why the guard refused. `Debug` shows reason codes only, never tokens or personal data
/// (Rocket logs it when the guard fails).
#[derive(Clone)]
pub enum AuthError {
    /// No usable session: the user must log in (again). The reason is for the log.
    NotLoggedIn(&'static str),
    /// Logged in, but without any role.
    NoRole(Viewer),
    /// Logged in with a role, but not meeting the route's requirement (`Authorized<R>`).
    Insufficient { viewer: Viewer, requirement: String },
    /// An `Authorization` header that is not a well-formed bearer credential (RFC 6750
    /// `invalid_request`).
    MalformedCredentials,
    /// The provider could not be asked (keys, introspection).
    Unavailable(ProviderError),
    /// The App ID fairing is not attached.
    NotConfigured,
}

impl std::fmt::Debug for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::NotLoggedIn(reason) => write!(f, "NotLoggedIn({reason})"),
            AuthError::NoRole(_) => f.write_str("NoRole"),
            AuthError::Insufficient { requirement, .. } => write!(f, "Insufficient({requirement})"),
            AuthError::MalformedCredentials => f.write_str("MalformedCredentials"),
            AuthError::Unavailable(error) => write!(f, "Unavailable({error})"),
            AuthError::NotConfigured => f.write_str("NotConfigured"),
        }
    }
}

impl AuthError {
    /// The HTTP status a catcher turns into a page (401 → login redirect).
    pub fn status(&self) -> Status {
        match self {
            AuthError::NotLoggedIn(_) => Status::Unauthorized,
            AuthError::NoRole(_) | AuthError::Insufficient { .. } => Status::Forbidden,
            AuthError::MalformedCredentials => Status::BadRequest,
            AuthError::Unavailable(_) => Status::ServiceUnavailable,
            AuthError::NotConfigured => Status::InternalServerError,
        }
    }
}

/// The guard's decision for this request, computed once and cached on the request so
/// catchers can see why it refused.
pub type Decision = Result<AuthorizedUser, AuthError>;

/// The guard as a borrow of the request's cached decision: `fn page(user: &AuthorizedUser)`.
/// Nothing is copied, so pages that only read the user take this form.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for &'r AuthorizedUser {
    type Error = AuthError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, AuthError> {
        let rocket = request.rocket();
        let (Some(appid), Some(store)) = (rocket.state::<AppId>(), rocket.state::<SessionStore>()) else {
            // Recorded like every decision, for the catchers.
            request.local_cache(|| -> Decision { Err(AuthError::NotConfigured) });
            return Outcome::Error((Status::InternalServerError, AuthError::NotConfigured));
        };
        let decision: &'r Decision = request.local_cache_async(decide(request, appid, store)).await;
        appid.metrics().guard_outcome(match decision {
            Ok(_) => "ok",
            Err(AuthError::NotLoggedIn(reason)) => reason,
            Err(AuthError::NoRole(_)) => "no_role",
            Err(AuthError::Insufficient { .. }) => "insufficient",
            Err(AuthError::MalformedCredentials) => "malformed_credentials",
            Err(AuthError::Unavailable(_)) => "unavailable",
            Err(AuthError::NotConfigured) => "not_configured",
        });
        match decision {
            Ok(user) => Outcome::Success(user),
            Err(error) => Outcome::Error((error.status(), error.clone())),
        }
    }
}

/// The guard as an owned user (a copy of the request's cached decision).
#[rocket::async_trait]
impl<'r> FromRequest<'r> for AuthorizedUser {
    type Error = AuthError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, AuthError> {
        <&AuthorizedUser>::from_request(request).await.map(AuthorizedUser::clone)
    }
}

/// The decision for this request's session (once per request: the caller caches it), and
/// the cookie upkeep that goes with it.
async fn decide(request: &Request<'_>, appid: &AppId, store: &SessionStore) -> Decision {
    let session = match Session::resolve(request).await {
        Loaded::Refused(reason) => {
            tracing::info!(event = "session_refused", reason = *reason);
            return Err(AuthError::NotLoggedIn(reason));
        }
        Loaded::Unchecked => {
            return Err(AuthError::Unavailable(ProviderError::Unreachable {
                endpoint: "session_store",
                kind: "store",
            }))
        }
        loaded => loaded.valid(),
    };
    let (decision, renewed) = authorize_renewing(session, appid, store).await;
    let jar = request.cookies();
    let settings = SessionSettings::of_app(request.rocket());
    match (renewed, session) {
        // The renewed session replaces the cookie (or the server-side record). If it no
        // longer fits, or the store fails, the old one stays: its refresh token is served
        // from the grace cache for a while, then the user logs in again.
        (Some(renewed), Some(current)) => {
            if let Err(why) = current.kept_like(renewed).save(jar, store, &settings).await {
                let reason = match why {
                    NotStored::TooLarge => "session_too_large",
                    NotStored::StoreUnavailable => "store_unavailable",
                };
                tracing::warn!(event = "session_renewal_not_stored", reason);
            }
        }
        // The idle timeout counts from the last use, written back at most once a minute.
        // (Not after a renewal: the renewed session was just written with a fresh
        // `last_seen`, and writing the old one back would undo it.)
        (_, session) => {
            if let Some(session) = session.filter(|s| decision.is_ok() && s.needs_touch()) {
                session.touch(jar, store, &settings).await;
            }
        }
    }
    // The browser kept the session: the login-loop marker has done its job.
    if decision.is_ok() && jar.get(cookies::SIGNED_IN).is_some() {
        jar.remove(cookies::signed_in_removal());
    }
    decision
}

impl Sentinel for AuthorizedUser {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        rocket.state::<AppId>().is_none() || rocket.state::<SessionStore>().is_none()
    }
}

impl Sentinel for &AuthorizedUser {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        AuthorizedUser::abort(rocket)
    }
}

/// The guard's logic, apart from Rocket: session → access token (verified locally, cached)
/// → introspection (by policy) → roles (cached with bounded staleness).
pub async fn authorize(session: Option<&Session>, appid: &AppId) -> Decision {
    let session = session.ok_or(AuthError::NotLoggedIn("no_session"))?;
    let key = session.token_key().ok_or(AuthError::NotLoggedIn("no_session"))?;
    let claims = verified_claims(appid, session.access_token.secret(), key, "session_refused").await?;
    authorize_verified(session, appid, key, &claims).await
}

/// The access token's verified claims (cached), or the guard's refusal: a token that does
/// not verify means "log in again" (logged as `event` with the reason), a provider that
/// cannot be asked for keys means 503. Shared by sessions and bearer tokens.
pub(crate) async fn verified_claims(
    appid: &AppId,
    token: &str,
    key: [u8; 32],
    event: &'static str,
) -> Result<Arc<AccessClaims>, AuthError> {
    match appid.verify_access_token_keyed(token, key).await {
        Ok(claims) => Ok(claims),
        Err(VerifyError::Token(error)) => {
            tracing::info!(event, reason = error.reason());
            Err(AuthError::NotLoggedIn(error.reason()))
        }
        Err(VerifyError::Provider(error)) => Err(AuthError::Unavailable(error)),
    }
}

/// [`authorize`] for a session whose access token (SHA-256 `key`) is already verified.
pub(crate) async fn authorize_verified(
    session: &Session,
    appid: &AppId,
    key: [u8; 32],
    claims: &AccessClaims,
) -> Decision {
    if claims.sub != session.sub {
        tracing::warn!(event = "session_refused", reason = "sub_mismatch");
        return Err(AuthError::NotLoggedIn("sub_mismatch"));
    }
    let viewer = Viewer::from(session);
    grant(appid, session.access_token.secret(), key, claims, viewer, session.expires_at).await
}

/// The checks after a locally verified access token, shared by sessions and bearer
/// tokens: introspection (by policy), then roles (cached). `viewer` is who the token
/// belongs to, for display; `expires_at` when the user's access ends.
pub(crate) async fn grant(
    appid: &AppId,
    token: &str,
    key: [u8; 32],
    claims: &AccessClaims,
    viewer: Viewer,
    expires_at: i64,
) -> Decision {
    match appid.is_active(token, key, claims.exp).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(event = "session_refused", reason = "token_inactive");
            return Err(AuthError::NotLoggedIn("token_inactive"));
        }
        Err(error) => return Err(AuthError::Unavailable(error)),
    }
    // The one place roles are read, for sessions and bearer tokens alike.
    let roles = appid.roles_for(&claims.sub, claims).await.map_err(AuthError::Unavailable)?;
    if roles.is_empty() {
        tracing::info!(event = "access_denied", sub = %claims.sub, reason = "no_role");
        return Err(AuthError::NoRole(viewer));
    }
    Ok(AuthorizedUser {
        sub: claims.sub.clone(),
        name: viewer.name,
        email: viewer.email,
        roles,
        scopes: claims.scopes.clone(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};

    #[test]
    fn a_sessions_debug_form_shows_no_token() {
        let id = crate::appid::Verified::for_test("sub-1", None, None);
        let token = |value: &str| AccessToken::new(value.to_string());
        let session = Session::new(&id, token("eyJ-access-CANARY"), 0);
        let renewed =
            session.renewed(token("eyJ-renewed-CANARY"), Some(RefreshToken::new("rt-CANARY".into())), None);
        for debug in [format!("{session:?}"), format!("{renewed:?}")] {
            assert!(!debug.contains("CANARY") && debug.contains("sub-1"), "{debug}");
        }
        assert_eq!(renewed.sid, session.sid, "a renewal continues the same session");
        assert_eq!(renewed.refresh_token().map(RefreshToken::secret), Some("rt-CANARY"));
        let kept = renewed.renewed(token("eyJ-third"), None, None);
        assert_eq!(
            kept.refresh_token().map(RefreshToken::secret),
            Some("rt-CANARY"),
            "no new refresh token: the old one stays"
        );
    }

    #[test]
    fn the_debug_form_names_no_person() {
        let error = AuthError::NoRole(Viewer {
            name: Some("Bob Example".into()),
            email: Some("bob@example.com".into()),
        });
        assert_eq!(format!("{error:?}"), "NoRole");
    }

    /// R-E5: Rocket logs a failed guard's error with `{:?}`; no variant may carry a token,
    /// a code, a cookie or a provider body into that line.
    #[test]
    fn r_e5_the_debug_form_of_every_guard_error_is_redacted() {
        let errors = [
            AuthError::NotLoggedIn("token_inactive"),
            AuthError::NoRole(Viewer { name: Some("CANARY-name".into()), email: Some("CANARY@x".into()) }),
            AuthError::Unavailable(ProviderError::Status {
                endpoint: "introspect",
                status: 401,
                error: Some("invalid_token".into()),
            }),
            AuthError::Unavailable(ProviderError::Malformed { endpoint: "roles", what: "roles" }),
            AuthError::Unavailable(ProviderError::Unreachable { endpoint: "jwks", kind: "timeout" }),
            AuthError::NotConfigured,
            AuthError::MalformedCredentials,
            AuthError::Insufficient {
                viewer: Viewer { name: Some("CANARY-name".into()), email: None },
                requirement: "role admin".into(),
            },
        ];
        for error in errors {
            let debug = format!("{error:?}");
            assert!(!debug.contains("CANARY"), "{debug}");
            assert!(!debug.contains("eyJ") && !debug.contains("Bearer"), "{debug}");
            assert!(debug.len() < 80, "a short reason code, not a dump: {debug}");
        }
        assert_eq!(
            format!(
                "{:?}",
                AuthError::Unavailable(ProviderError::Unreachable { endpoint: "jwks", kind: "timeout" })
            ),
            "Unavailable(jwks: no answer (timeout))"
        );
    }
}
