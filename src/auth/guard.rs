//! `AuthorizedUser`: the request guard of protected routes. It proves a readable session,
//! a valid access token (checked locally, and by introspection when configured) and at
//! least one App ID role.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::Serialize;

use super::cookies;
use super::session::{Loaded, Session};
use crate::appid::{AppId, ProviderError, VerifyError};

/// A logged-in user with at least one role.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizedUser {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<String>,
    /// When the session ends (seconds since the epoch).
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
            AuthError::NoRole(_) => Status::Forbidden,
            AuthError::Unavailable(_) => Status::ServiceUnavailable,
            AuthError::NotConfigured => Status::InternalServerError,
        }
    }
}

/// The guard's decision for this request, computed once and cached on the request so
/// catchers can see why it refused.
pub type Decision = Result<AuthorizedUser, AuthError>;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AuthorizedUser {
    type Error = AuthError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, AuthError> {
        let decision: &Decision = request
            .local_cache_async(async {
                match request.rocket().state::<AppId>() {
                    Some(appid) => {
                        let secure = appid.config().secure_cookies();
                        match Session::loaded_of_request(request, secure) {
                            Loaded::Refused(reason) => {
                                tracing::info!(event = "session_refused", reason = *reason);
                                Err(AuthError::NotLoggedIn(reason))
                            }
                            loaded => authorize(loaded.valid(), appid).await,
                        }
                    }
                    None => Err(AuthError::NotConfigured),
                }
            })
            .await;
        if decision.is_ok() {
            if let Some(appid) = request.rocket().state::<AppId>() {
                let secure = appid.config().secure_cookies();
                let jar = request.cookies();
                if let Some(session) = Session::of_request(request, secure) {
                    // The idle timeout counts from the last use, written back at most
                    // once a minute.
                    if session.needs_touch() {
                        session.touch(jar, secure);
                    }
                }
                // The browser kept the session: the login-loop marker has done its job.
                if jar.get(cookies::SIGNED_IN).is_some() {
                    jar.remove(cookies::signed_in_removal());
                }
            }
        }
        crate::metrics::METRICS.guard_outcome(match decision {
            Ok(_) => "ok",
            Err(AuthError::NotLoggedIn(reason)) => reason,
            Err(AuthError::NoRole(_)) => "no_role",
            Err(AuthError::Unavailable(_)) => "unavailable",
            Err(AuthError::NotConfigured) => "not_configured",
        });
        match decision {
            Ok(user) => Outcome::Success(user.clone()),
            Err(error) => Outcome::Error((error.status(), error.clone())),
        }
    }
}

impl Sentinel for AuthorizedUser {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        rocket.state::<AppId>().is_none()
    }
}

/// The guard's logic, apart from Rocket: session → access token (verified locally, cached)
/// → introspection (by policy) → roles (cached with bounded staleness).
pub async fn authorize(session: Option<&Session>, appid: &AppId) -> Decision {
    let session = session.ok_or(AuthError::NotLoggedIn("no_session"))?;
    let key = session.token_key().ok_or(AuthError::NotLoggedIn("no_session"))?;
    let claims = match appid.verify_access_token_keyed(&session.access_token, key).await {
        Ok(claims) => claims,
        Err(VerifyError::Token(error)) => {
            tracing::info!(event = "session_refused", reason = error.reason());
            return Err(AuthError::NotLoggedIn(error.reason()));
        }
        Err(VerifyError::Provider(error)) => return Err(AuthError::Unavailable(error)),
    };
    if claims.sub != session.sub {
        tracing::warn!(event = "session_refused", reason = "sub_mismatch");
        return Err(AuthError::NotLoggedIn("sub_mismatch"));
    }
    match appid.is_active(&session.access_token, key, claims.exp).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(event = "session_refused", reason = "token_inactive");
            return Err(AuthError::NotLoggedIn("token_inactive"));
        }
        Err(error) => return Err(AuthError::Unavailable(error)),
    }
    let roles = appid.roles(&session.sub).await.map_err(AuthError::Unavailable)?;
    if roles.is_empty() {
        tracing::info!(event = "access_denied", sub = %session.sub, reason = "no_role");
        return Err(AuthError::NoRole(Viewer::from(session)));
    }
    Ok(AuthorizedUser {
        sub: session.sub.clone(),
        name: session.name.clone(),
        email: session.email.clone(),
        roles,
        expires_at: session.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
