//! The session: who is logged in, kept in a private (AES-256-GCM) cookie, or in several
//! numbered ones when it is larger than one cookie holds (see `cookie_store`).
//! It holds only what the guard needs: the access token and, when the provider issued one,
//! the refresh token (for silent renewal); not the id_token (App ID has no
//! `end_session_endpoint` that would want it as `id_token_hint`, and the cookie budget is
//! better spent on the tokens that are used), not the roles (those are cached per user with
//! bounded staleness, see `AppId::roles`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::CookieJar;
use rocket::Request;
use serde::{Deserialize, Serialize};

use super::cookie_store::{self, Opened, StoreSettings};
use super::cookies;
use super::store::SessionStore;
use crate::appid::{IdClaims, Verified};
use crate::config::AppIdConfig;
use crate::metrics::Metrics;
use crate::secret::{AccessToken, RefreshToken};

/// Bumped when the layout changes incompatibly: older cookies then count as absent.
/// Optional fields added with `serde(default)` need no bump.
pub const VERSION: u8 = 3;
/// The default idle timeout (`appid.session_idle_secs`): a session not used for this long
/// has ended (ASVS 7.3.1), whatever its absolute expiry.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// The default absolute lifetime (`appid.session_max_age_secs`).
pub const MAX_AGE_SECS: i64 = 8 * 3600;
/// `last_seen` is written back at most this often: every refresh re-seals and resends the
/// cookie, which is not worth doing on every request.
pub const ACTIVITY_GRANULARITY_SECS: i64 = 60;
/// Browsers keep cookies of at most 4096 bytes (name + value + attributes); each cookie of
/// the session stays below this estimate (see `cookie_store`).
pub const MAX_COOKIE_BYTES: usize = cookie_store::MAX_COOKIE_BYTES;

/// The session stored in the cookie. `Debug` leaves the tokens out (see below).
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    v: u8,
    /// A fresh random id for every login (no session fixation).
    pub sid: String,
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub access_token: AccessToken,
    /// SHA-256 of the access token, base64url: the guard's cache key, computed once at
    /// login (the sealed cookie vouches that it belongs to this token).
    th: String,
    /// Seconds since the epoch when the session ends (checked by the server, not only the browser).
    pub expires_at: i64,
    pub created_at: i64,
    /// When the session was last used (seconds since the epoch, refreshed at most once per
    /// [`ACTIVITY_GRANULARITY_SECS`]): the idle timeout counts from here. Absent in cookies
    /// written before it existed: then it counts from `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<i64>,
    /// The refresh token, when the provider issued one: the guard renews an expiring access
    /// token with it, logout revokes it. Sealed like the rest; never shown or logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<RefreshToken>,
}

/// Tokens never reach a log line, even through `{:?}` of a session.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &"[redacted]")
            .field("sub", &self.sub)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("refresh_token", &self.rt.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// What the session cookie of a request amounts to.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// No session cookie at all.
    Absent,
    /// A session cookie that does not count, with the reason code for the log
    /// (`undecryptable`, `malformed`, `old_version`, `expired`, `idle`, `logged_out`).
    Refused(&'static str),
    /// A readable, current session.
    Valid(Session),
    /// A session cookie that could not be checked against the deny-list (the store is down
    /// and set to fail closed): the request gets the 503 page and the cookie stays.
    Unchecked,
}

impl Loaded {
    /// The session, if it counts.
    pub fn valid(&self) -> Option<&Session> {
        match self {
            Loaded::Valid(session) => Some(session),
            _ => None,
        }
    }
}

/// The request-local copy of the session (a distinct type for Rocket's request cache).
struct RequestSession(Loaded);

/// Resolves the session of every request before routing, so responders, which cannot
/// wait, find it decided (the page header shows who is signed in).
#[derive(Debug, Default)]
pub struct ResolveSession;

#[rocket::async_trait]
impl rocket::fairing::Fairing for ResolveSession {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info { name: "Session", kind: rocket::fairing::Kind::Request }
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut rocket::Data<'_>) {
        Session::resolve(request).await;
    }
}

/// The session would not fit in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTooLarge;

impl Session {
    /// A new session for a login that just completed: who it is comes from the id_token
    /// verified at that login.
    pub fn new(id: &Verified<IdClaims>, access_token: AccessToken, expires_at: i64) -> Self {
        let key = crate::appid::token_key(access_token.secret());
        let now = crate::clock::now();
        Session {
            v: VERSION,
            sid: super::login::random_token(),
            sub: id.sub.clone(),
            name: id.name.clone(),
            email: id.email.clone(),
            th: URL_SAFE_NO_PAD.encode(key),
            access_token,
            expires_at,
            created_at: now,
            last_seen: Some(now),
            rt: None,
        }
    }

    /// With the refresh token issued at login: the guard renews the access token with it,
    /// so the session then lasts the configured session lifetime (from its start), not
    /// just the access token's.
    pub fn with_refresh_token(mut self, refresh_token: RefreshToken, session_max_age_secs: u64) -> Self {
        let max_age = i64::try_from(session_max_age_secs).unwrap_or(i64::MAX);
        self.expires_at = self.expires_at.max(self.created_at.saturating_add(max_age));
        self.rt = Some(refresh_token);
        self
    }

    /// The refresh token, if the provider issued one.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.rt.as_ref()
    }

    /// The same session (same id, subject, start and end) with renewed tokens. A provider
    /// that sends no new refresh token keeps the old one valid (RFC 6749 §6). Name and
    /// e-mail are updated when the renewal's verified id_token `id` carries them.
    pub fn renewed(
        &self,
        access_token: AccessToken,
        refresh_token: Option<RefreshToken>,
        id: Option<&Verified<IdClaims>>,
    ) -> Session {
        let mut session = self.clone();
        session.th = URL_SAFE_NO_PAD.encode(crate::appid::token_key(access_token.secret()));
        session.access_token = access_token;
        if refresh_token.is_some() {
            session.rt = refresh_token;
        }
        if let Some(name) = id.and_then(|id| id.name.clone()) {
            session.name = Some(name);
        }
        if let Some(email) = id.and_then(|id| id.email.clone()) {
            session.email = Some(email);
        }
        session.last_seen = Some(crate::clock::now());
        session
    }

    /// SHA-256 of the access token (see the `th` field).
    pub fn token_key(&self) -> Option<[u8; 32]> {
        let mut key = [0u8; 32];
        let written = URL_SAFE_NO_PAD.decode_slice(&self.th, &mut key).ok()?;
        (written == 32).then_some(key)
    }

    /// What this request's session cookies amount to, apart from the deny-list (see
    /// [`Session::resolve`]), and whether they opened only with the previous key. Never
    /// logs a cookie's value.
    pub fn open(
        jar: &CookieJar<'_>,
        settings: &SessionSettings,
        metrics: Option<&Metrics>,
    ) -> (Loaded, bool) {
        let (plaintext, with_previous_key) = match cookie_store::read(jar, cookies::SESSION, &settings.store)
        {
            Opened::Absent => return (Loaded::Absent, false),
            Opened::Unreadable(reason) => {
                // Forged, tampered, moved from another cookie name, sealed with another key
                // (rotation, or instances with different keys: F6, F8), or chunks that do
                // not belong together.
                if let Some(metrics) = metrics {
                    metrics.cookie_undecryptable();
                }
                return (Loaded::Refused(reason), false);
            }
            Opened::Value { plaintext, with_previous_key } => (plaintext, with_previous_key),
        };
        let session: Session = match serde_json::from_str(&plaintext) {
            Ok(session) => session,
            Err(_) => return (Loaded::Refused(old_or_malformed(&plaintext)), false),
        };
        let now = crate::clock::now();
        let loaded = if session.v != VERSION {
            Loaded::Refused("old_version")
        } else if session.expires_at <= now
            // The absolute lifetime counts from the login, however often the tokens were
            // renewed since.
            || session.created_at.saturating_add(settings.max_age_secs) <= now
        {
            Loaded::Refused("expired")
        } else if now - session.last_seen() > settings.idle_secs {
            Loaded::Refused("idle")
        } else {
            Loaded::Valid(session)
        };
        (loaded, with_previous_key)
    }

    /// The session of this request, decided once per request however many guards,
    /// catchers and responders ask: opened from the cookies, then checked against the
    /// deny-list of the app's [`SessionStore`]. A session that opened only with the
    /// previous key (a key rotation in progress) is sealed again with the current key.
    pub async fn resolve<'r>(request: &'r Request<'_>) -> &'r Loaded {
        &request
            .local_cache_async(async {
                let rocket = request.rocket();
                let appid = rocket.state::<crate::appid::AppId>();
                let settings = match appid {
                    Some(appid) => SessionSettings::of(appid.config()),
                    None => SessionSettings::defaults(false),
                };
                let (loaded, with_previous_key) =
                    Session::open(request.cookies(), &settings, rocket.state::<Metrics>());
                let loaded = match (loaded, rocket.state::<SessionStore>()) {
                    (Loaded::Valid(session), Some(store)) => match store.check_denied(&session.sid).await {
                        Some(false) => Loaded::Valid(session),
                        Some(true) => Loaded::Refused("logged_out"),
                        None => {
                            tracing::warn!(event = "session_unchecked", reason = "store_unavailable");
                            Loaded::Unchecked
                        }
                    },
                    // Without a store there is no deny-list to honour: no session counts.
                    (Loaded::Valid(_), None) => Loaded::Refused("no_store"),
                    (loaded, _) => loaded,
                };
                if let (true, Loaded::Valid(session)) = (with_previous_key, &loaded) {
                    tracing::info!(event = "session_resealed", reason = "previous_key");
                    let _ =
                        session.store_with(request.cookies(), &StoreSettings::rewrite(settings.store.secure));
                }
                RequestSession(loaded)
            })
            .await
            .0
    }

    /// The session of this request as [`Session::resolve`] decided it, if it counts.
    pub fn of_request<'r>(request: &'r Request<'_>) -> Option<&'r Session> {
        Session::loaded_of_request(request).valid()
    }

    /// What [`Session::resolve`] decided for this request. Every request of an app built
    /// with [`crate::protect`] is resolved before routing ([`ResolveSession`]); elsewhere,
    /// before resolution, no session counts.
    pub fn loaded_of_request<'r>(request: &'r Request<'_>) -> &'r Loaded {
        &request.local_cache(|| RequestSession(Loaded::Refused("not_resolved"))).0
    }

    /// When the session was last used (seconds since the epoch).
    pub fn last_seen(&self) -> i64 {
        self.last_seen.unwrap_or(self.created_at)
    }

    /// True when `last_seen` is old enough to be written back (see [`Session::touch`]).
    pub fn needs_touch(&self) -> bool {
        crate::clock::now() - self.last_seen() >= ACTIVITY_GRANULARITY_SECS
    }

    /// Re-issues the cookie with `last_seen` = now (the session was used). Same size as
    /// before, so it fits; if it somehow does not, the old cookie simply stays.
    pub fn touch(&self, jar: &CookieJar<'_>, secure: bool) {
        let mut session = self.clone();
        session.last_seen = Some(crate::clock::now());
        let _ = session.rewrite(jar, secure);
    }

    /// Stores a new session within `settings.max_chunks` cookies, refusing one the browser
    /// would silently drop, and sets the short-lived "just signed in" marker of the
    /// login-loop guard (R-C7). Returns the number of cookies.
    pub fn write_with(
        &self,
        jar: &CookieJar<'_>,
        settings: &StoreSettings,
    ) -> Result<usize, SessionTooLarge> {
        let chunks = self.store_with(jar, settings)?;
        jar.add(cookies::signed_in_marker());
        Ok(chunks)
    }

    /// Seals the session into as many cookies as it needs (see `cookie_store`); the number
    /// of cookies, or [`SessionTooLarge`] beyond `settings.max_chunks` (nothing is set then).
    fn store_with(&self, jar: &CookieJar<'_>, settings: &StoreSettings) -> Result<usize, SessionTooLarge> {
        let value = serde_json::to_string(self).map_err(|_| SessionTooLarge)?;
        let max_age = self.expires_at - crate::clock::now();
        cookie_store::write(jar, cookies::SESSION, &value, settings, max_age).map_err(|_| SessionTooLarge)
    }

    /// Re-issues the cookie of a session that goes on (a renewal), without the login-loop
    /// marker that [`Session::write_with`] sets for a new login.
    pub fn rewrite(&self, jar: &CookieJar<'_>, secure: bool) -> Result<usize, SessionTooLarge> {
        self.store_with(jar, &StoreSettings::rewrite(secure))
    }

    /// Removes the session's cookies (every chunk).
    pub fn clear(jar: &CookieJar<'_>, secure: bool) {
        cookie_store::clear(jar, cookies::SESSION, secure);
    }
}

/// Why a decrypted cookie did not parse: an older layout (its `v` differs) or junk.
fn old_or_malformed(plaintext: &str) -> &'static str {
    let v =
        serde_json::from_str::<serde_json::Value>(plaintext).ok().and_then(|value| value.get("v").cloned());
    if v.is_some_and(|v| v != serde_json::json!(VERSION)) {
        "old_version"
    } else {
        "malformed"
    }
}

/// How sessions are read and written: the configured timeouts and cookie settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub store: StoreSettings,
    /// Idle timeout (seconds).
    pub idle_secs: i64,
    /// Absolute lifetime from the login (seconds).
    pub max_age_secs: i64,
}

impl SessionSettings {
    /// The configured settings.
    pub fn of(config: &AppIdConfig) -> Self {
        SessionSettings {
            store: StoreSettings {
                secure: config.secure_cookies(),
                max_chunks: config.session_max_chunks,
                previous_key: config.previous_session_key.clone(),
            },
            idle_secs: i64::try_from(config.session_idle_secs).unwrap_or(IDLE_TIMEOUT_SECS),
            max_age_secs: i64::try_from(config.session_max_age_secs).unwrap_or(MAX_AGE_SECS),
        }
    }

    /// The default timeouts, no previous key.
    pub fn defaults(secure: bool) -> Self {
        SessionSettings {
            store: StoreSettings::rewrite(secure),
            idle_secs: IDLE_TIMEOUT_SECS,
            max_age_secs: MAX_AGE_SECS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_layout_is_told_apart_from_junk() {
        assert_eq!(old_or_malformed(r#"{"v":2,"sid":"x"}"#), "old_version");
        assert_eq!(old_or_malformed(r#"{"sid":"x"}"#), "malformed");
        assert_eq!(old_or_malformed("not json"), "malformed");
    }

    /// Sessions written when the tokens were plain strings still open, and are written back
    /// in the same shape; `Debug` shows no token.
    #[test]
    fn the_cookie_format_is_unchanged_and_debug_shows_no_token() {
        let stored = r#"{"v":3,"sid":"s","sub":"u","name":null,"email":null,"access_token":"at-CANARY","th":"h","expires_at":9,"created_at":1,"last_seen":2,"rt":"rt-CANARY"}"#;
        let session: Session = serde_json::from_str(stored).unwrap();
        assert_eq!(session.access_token.secret(), "at-CANARY");
        assert_eq!(session.refresh_token().map(RefreshToken::secret), Some("rt-CANARY"));
        assert_eq!(serde_json::to_string(&session).unwrap(), stored);
        assert!(!format!("{session:?}").contains("CANARY"));
    }
}
