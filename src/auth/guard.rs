//! `AuthorizedUser`: the request guard of protected routes. It proves a readable session,
//! a valid access token (checked locally, and by introspection when configured) and at
//! least one App ID role. When the access token has expired (or is about to) and the
//! session holds a refresh token, it renews the tokens first, without a redirect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::Serialize;

use super::cookies;
use super::session::{Loaded, Session};
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
        let decision: &'r Decision = request
            .local_cache_async(async {
                match request.rocket().state::<AppId>() {
                    Some(appid) => decide(request, appid).await,
                    None => Err(AuthError::NotConfigured),
                }
            })
            .await;
        crate::metrics::METRICS.guard_outcome(match decision {
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
async fn decide(request: &Request<'_>, appid: &AppId) -> Decision {
    let secure = appid.config().secure_cookies();
    let session = match Session::loaded_of_request(request, secure) {
        Loaded::Refused(reason) => {
            tracing::info!(event = "session_refused", reason = *reason);
            return Err(AuthError::NotLoggedIn(reason));
        }
        loaded => loaded.valid(),
    };
    let (decision, renewed) = authorize_renewing(session, appid).await;
    let jar = request.cookies();
    match renewed {
        // The renewed session replaces the cookie in this response. If it no longer fits,
        // the old cookie stays: its refresh token is served from the grace cache for a
        // while, then the user logs in again.
        Some(renewed) => {
            if renewed.rewrite(jar, secure).is_err() {
                tracing::warn!(event = "session_renewal_not_stored", reason = "session_too_large");
            }
        }
        // The idle timeout counts from the last use, written back at most once a minute.
        // (Not after a renewal: the renewed session was just written with a fresh
        // `last_seen`, and writing the old one back would undo it.)
        None => {
            if let Some(session) = session.filter(|s| decision.is_ok() && s.needs_touch()) {
                session.touch(jar, secure);
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
        rocket.state::<AppId>().is_none()
    }
}

impl Sentinel for &AuthorizedUser {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        AuthorizedUser::abort(rocket)
    }
}

/// [`authorize`] with silent renewal: when the session's access token has expired or has
/// less than `refresh_window_secs` left and the session holds a refresh token, the tokens
/// are renewed first (at most one refresh per session in flight, see [`renew`]). Returns
/// the decision and, when the tokens were renewed, the session to write back.
pub async fn authorize_renewing(session: Option<&Session>, appid: &AppId) -> (Decision, Option<Session>) {
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
    let usable = match appid.verify_access_token_keyed(&current.access_token, key).await {
        Ok(claims) if claims.exp - now > window => {
            return (authorize_verified(current, appid, key, &claims).await, None)
        }
        Ok(claims) => Some(claims),
        Err(VerifyError::Token(crate::appid::TokenError::Expired)) => None,
        // Anything else wrong with the token is not cured by renewing it.
        Err(_) => return (authorize(Some(current), appid).await, None),
    };
    match (renew(current, appid).await, usable) {
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
enum Renewal {
    Renewed(Arc<Session>),
    /// The provider refused the refresh token (`invalid_grant`: expired, revoked, used up)
    /// or the renewed tokens did not verify: the user must log in again.
    Rejected(&'static str),
    /// The provider could not be asked: 503, and the session stays as it is.
    Unavailable(ProviderError),
}

/// A renewal in flight, or finished a moment ago (the grace period).
struct Flight {
    outcome: tokio::sync::OnceCell<Renewal>,
    started: Instant,
}

/// Renewals by SHA-256 of the refresh token they use, per process. An entry lives while the
/// refresh is in flight (concurrent requests of the session wait for it) and, once it has
/// succeeded or been refused, for `refresh_grace_secs` more: requests that still carry the
/// previous cookie (sent in parallel, or before the browser stored the renewed one) get the
/// same renewed session instead of presenting a used-up refresh token. Failures to reach
/// the provider are forgotten at once, so the next request tries again.
static FLIGHTS: Mutex<Option<HashMap<[u8; 32], Arc<Flight>>>> = Mutex::new(None);
/// Most renewals remembered at once; beyond this the finished ones are dropped.
const MAX_FLIGHTS: usize = 10_000;

fn flights() -> std::sync::MutexGuard<'static, Option<HashMap<[u8; 32], Arc<Flight>>>> {
    // Every update is a single insert, removal or retain: a poisoned map is still consistent.
    FLIGHTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a flight's outcome may still be handed out.
fn is_current(flight: &Flight, grace: Duration) -> bool {
    match flight.outcome.get() {
        None => true,
        Some(Renewal::Unavailable(_)) => false,
        Some(_) => flight.started.elapsed() < grace,
    }
}

/// Renews the session's tokens, once per refresh token however many requests ask at once.
async fn renew(session: &Session, appid: &AppId) -> Renewal {
    let Some(refresh_token) = session.refresh_token() else {
        return Renewal::Rejected("no_refresh_token");
    };
    let key = crate::appid::token_key(refresh_token);
    let grace = Duration::from_secs(appid.config().refresh_grace_secs);
    let flight = {
        let mut guard = flights();
        let map = guard.get_or_insert_with(HashMap::new);
        match map.get(&key) {
            Some(flight) if is_current(flight, grace) => flight.clone(),
            _ => {
                // Renewals are rare (one per session per token lifetime), so finished
                // entries past their grace period are swept whenever one starts.
                map.retain(|_, f| is_current(f, grace));
                if map.len() >= MAX_FLIGHTS {
                    // Only under a flood: keep the ones in flight, forget the grace entries.
                    map.retain(|_, f| f.outcome.get().is_none());
                }
                let flight =
                    Arc::new(Flight { outcome: tokio::sync::OnceCell::new(), started: Instant::now() });
                map.insert(key, flight.clone());
                flight
            }
        }
    };
    let outcome = flight
        .outcome
        .get_or_init(|| async {
            // Its own task: a request cancelled half-way (the browser navigated on) must
            // not lose the rotated refresh token that the provider has already issued.
            let (session, appid) = (session.clone(), appid.clone());
            let refresh = async move {
                let outcome = refresh_once(&session, &appid).await;
                crate::metrics::METRICS.renewal(match &outcome {
                    Renewal::Renewed(_) => "renewed",
                    Renewal::Rejected(_) => "rejected",
                    Renewal::Unavailable(_) => "unavailable",
                });
                outcome
            };
            match tokio::spawn(refresh).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    Renewal::Unavailable(ProviderError::Unreachable { endpoint: "token", kind: "request" })
                }
            }
        })
        .await
        .clone();
    if matches!(outcome, Renewal::Unavailable(_)) {
        let mut guard = flights();
        if let Some(map) = guard.as_mut() {
            if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                map.remove(&key);
            }
        }
    }
    outcome
}

/// Forgets the renewal made with this refresh token (at logout: a renewed session must not
/// outlive it in the grace cache; the deny-list refuses its cookie anyway).
pub fn forget_renewal(refresh_token: &str) {
    let key = crate::appid::token_key(refresh_token);
    if let Some(map) = flights().as_mut() {
        map.remove(&key);
    }
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
    let access = match appid.verify_access_token(renewed.access_token.expose()).await {
        Ok(claims) => claims,
        Err(error) => return verify_failed(error, "access_token"),
    };
    if access.sub != session.sub {
        tracing::warn!(event = "session_refresh_refused", reason = "sub_mismatch");
        return Renewal::Rejected("sub_mismatch");
    }
    let (mut name, mut email) = (None, None);
    if let Some(id_token) = &renewed.id_token {
        match appid.verify_refreshed_id_token(id_token.expose(), &session.sub).await {
            Ok(id) if id.at_hash_matches(renewed.access_token.expose()) => {
                name = id.name;
                email = id.email;
            }
            Ok(_) => {
                tracing::warn!(event = "session_refresh_refused", reason = "at_hash_mismatch");
                return Renewal::Rejected("at_hash_mismatch");
            }
            Err(error) => return verify_failed(error, "id_token"),
        }
    }
    tracing::info!(event = "session_refreshed", sub = %session.sub, rotated = renewed.refresh_token.is_some());
    let refresh_token = renewed.refresh_token.map(|t| t.expose().to_string());
    let renewed = session.renewed(renewed.access_token.expose().to_string(), refresh_token, name, email);
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

/// The guard's logic, apart from Rocket: session → access token (verified locally, cached)
/// → introspection (by policy) → roles (cached with bounded staleness).
pub async fn authorize(session: Option<&Session>, appid: &AppId) -> Decision {
    let session = session.ok_or(AuthError::NotLoggedIn("no_session"))?;
    let key = session.token_key().ok_or(AuthError::NotLoggedIn("no_session"))?;
    let claims = verified_claims(appid, &session.access_token, key, "session_refused").await?;
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
async fn authorize_verified(
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
    grant(appid, &session.access_token, key, claims, viewer, session.expires_at).await
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

    #[test]
    fn a_sessions_debug_form_shows_no_token() {
        let session = Session::new("sub-1".into(), None, None, "eyJ-access-CANARY".into(), 0);
        let renewed = session.renewed("eyJ-renewed-CANARY".into(), Some("rt-CANARY".into()), None, None);
        for debug in [format!("{session:?}"), format!("{renewed:?}")] {
            assert!(!debug.contains("CANARY") && debug.contains("sub-1"), "{debug}");
        }
        assert_eq!(renewed.sid, session.sid, "a renewal continues the same session");
        assert_eq!(renewed.refresh_token(), Some("rt-CANARY"));
        let kept = renewed.renewed("eyJ-third".into(), None, None, None);
        assert_eq!(kept.refresh_token(), Some("rt-CANARY"), "no new refresh token: the old one stays");
    }

    #[test]
    fn renewals_are_shared_while_in_flight_and_for_the_grace_period_but_failures_are_not_kept() {
        let grace = Duration::from_secs(30);
        let flight = |outcome: Option<Renewal>, age: Duration| {
            let cell = tokio::sync::OnceCell::new();
            if let Some(outcome) = outcome {
                let _ = cell.set(outcome);
            }
            Flight { outcome: cell, started: Instant::now() - age }
        };
        let renewed = Renewal::Renewed(Arc::new(Session::new("s".into(), None, None, "t".into(), 0)));
        let down = Renewal::Unavailable(ProviderError::Unreachable { endpoint: "token", kind: "connect" });
        assert!(is_current(&flight(None, Duration::ZERO), grace), "in flight: wait for it");
        assert!(is_current(&flight(Some(renewed.clone()), Duration::from_secs(5)), grace));
        assert!(!is_current(&flight(Some(renewed), Duration::from_secs(31)), grace), "grace over");
        assert!(is_current(&flight(Some(Renewal::Rejected("refresh_invalid_grant")), Duration::ZERO), grace));
        assert!(!is_current(&flight(Some(down), Duration::ZERO), grace), "the next request tries again");
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
