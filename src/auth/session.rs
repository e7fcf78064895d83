//! The session: who is logged in, kept in one private (AES-256-GCM) cookie.
//! It holds only what the guard needs: not the id_token, not the refresh token, not the
//! roles (those are cached per user with bounded staleness, see `AppId::roles`).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::CookieJar;
use rocket::Request;
use serde::{Deserialize, Serialize};

use super::cookies;

/// Bumped when the layout changes incompatibly: older cookies then count as absent.
/// (Adding the optional `last_seen` did not need a bump.)
pub const VERSION: u8 = 3;
/// A session not used for this long has ended (ASVS 7.3.1), whatever its absolute expiry.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// `last_seen` is written back at most this often: every refresh re-seals and resends the
/// cookie, which is not worth doing on every request.
pub const ACTIVITY_GRANULARITY_SECS: i64 = 60;
/// At most this many logged-out sessions are remembered per process (see [`deny`]).
const MAX_DENIED: usize = 10_000;
/// Browsers keep cookies of at most 4096 bytes (name + value); we stay below with margin.
pub const MAX_COOKIE_BYTES: usize = 4000;

/// The session stored in the cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    v: u8,
    /// A fresh random id for every login (no session fixation).
    pub sid: String,
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub access_token: String,
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

/// Logged-out session ids and when their sessions would have ended: a copy of the cookie
/// saved before logout is refused until then (R-L2). Per process: with several instances
/// a logged-out cookie still works on the others until it expires (documented).
static DENIED: Mutex<Option<HashMap<String, i64>>> = Mutex::new(None);

/// Remembers that session `sid` (ending at `expires_at`) was logged out.
/// The list is bounded: expired entries go first; when it is still full, the entry that
/// expires soonest is dropped (that one cookie then works again until its own expiry).
pub fn deny(sid: &str, expires_at: i64) {
    let now = crate::clock::now();
    // A poisoned lock still holds a valid map (each update is one insert or removal).
    let mut guard = DENIED.lock().unwrap_or_else(|p| p.into_inner());
    let denied = guard.get_or_insert_with(HashMap::new);
    if denied.len() >= MAX_DENIED {
        denied.retain(|_, exp| *exp > now);
    }
    if denied.len() >= MAX_DENIED {
        let soonest = denied.iter().min_by_key(|(_, exp)| **exp).map(|(sid, _)| sid.clone());
        if let Some(sid) = soonest {
            denied.remove(&sid);
        }
    }
    denied.insert(sid.to_string(), expires_at);
}

/// True if session `sid` was logged out.
fn is_denied(sid: &str) -> bool {
    let guard = DENIED.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().is_some_and(|denied| denied.contains_key(sid))
}

/// The session would not fit in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTooLarge;

impl Session {
    /// A new session for a login that just completed.
    pub fn new(
        sub: String,
        name: Option<String>,
        email: Option<String>,
        access_token: String,
        expires_at: i64,
    ) -> Self {
        Session {
            v: VERSION,
            sid: super::login::random_token(),
            sub,
            name,
            email,
            th: URL_SAFE_NO_PAD.encode(crate::appid::token_key(&access_token)),
            access_token,
            expires_at,
            created_at: crate::clock::now(),
            last_seen: Some(crate::clock::now()),
        }
    }

    /// SHA-256 of the access token (see the `th` field).
    pub fn token_key(&self) -> Option<[u8; 32]> {
        let mut key = [0u8; 32];
        let written = URL_SAFE_NO_PAD.decode_slice(&self.th, &mut key).ok()?;
        (written == 32).then_some(key)
    }

    /// The session of this request, if there is a readable, current one.
    /// Undecryptable, old-format, expired, idle or logged-out cookies count as no session.
    pub fn read(jar: &CookieJar<'_>, secure: bool) -> Option<Session> {
        match Session::load(jar, secure) {
            Loaded::Valid(session) => Some(session),
            _ => None,
        }
    }

    /// What this request's session cookie amounts to. Never logs the cookie's value.
    pub fn load(jar: &CookieJar<'_>, secure: bool) -> Loaded {
        let name = cookies::name(cookies::SESSION, secure);
        let Some(cookie) = jar.get_private(&name) else {
            if jar.get(&name).is_some() {
                // Forged, tampered, moved from another cookie name, or sealed with another
                // key (rotation, or instances with different keys: F6, F8).
                crate::metrics::METRICS.cookie_undecryptable();
                return Loaded::Refused("undecryptable");
            }
            return Loaded::Absent;
        };
        let session: Session = match serde_json::from_str(cookie.value()) {
            Ok(session) => session,
            Err(_) => return Loaded::Refused(old_or_malformed(cookie.value())),
        };
        let now = crate::clock::now();
        if session.v != VERSION {
            Loaded::Refused("old_version")
        } else if session.expires_at <= now {
            Loaded::Refused("expired")
        } else if now - session.last_seen() > IDLE_TIMEOUT_SECS {
            Loaded::Refused("idle")
        } else if is_denied(&session.sid) {
            Loaded::Refused("logged_out")
        } else {
            Loaded::Valid(session)
        }
    }

    /// The session of this request, decrypted once per request however many guards and
    /// responders ask (the guard and the page header both need it).
    pub fn of_request<'r>(request: &'r Request<'_>, secure: bool) -> Option<&'r Session> {
        Session::loaded_of_request(request, secure).valid()
    }

    /// [`Session::load`] for this request, computed once.
    pub fn loaded_of_request<'r>(request: &'r Request<'_>, secure: bool) -> &'r Loaded {
        &request.local_cache(|| RequestSession(Session::load(request.cookies(), secure))).0
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
        let _ = session.store(jar, secure);
    }

    /// Stores a new session, refusing one the browser would silently drop, and sets the
    /// short-lived "just signed in" marker of the login-loop guard (R-C7).
    pub fn write(&self, jar: &CookieJar<'_>, secure: bool) -> Result<usize, SessionTooLarge> {
        let size = self.store(jar, secure)?;
        jar.add(cookies::signed_in_marker());
        Ok(size)
    }

    fn store(&self, jar: &CookieJar<'_>, secure: bool) -> Result<usize, SessionTooLarge> {
        let value = serde_json::to_string(self).map_err(|_| SessionTooLarge)?;
        let size = sealed_size(&cookies::name(cookies::SESSION, secure), value.len());
        if size > MAX_COOKIE_BYTES {
            return Err(SessionTooLarge);
        }
        let max_age = self.expires_at - crate::clock::now();
        jar.add_private(cookies::build(cookies::SESSION, value, secure, max_age));
        Ok(size)
    }

    /// Removes the session cookie.
    pub fn clear(jar: &CookieJar<'_>, secure: bool) {
        jar.remove_private(cookies::removal(cookies::SESSION, secure));
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

/// Bytes of `name=value` once sealed: base64 of nonce (12) + plaintext + tag (16), plus
/// the percent-encoding of `/` and `=` in the header (about 3 %; we allow 1/16).
fn sealed_size(name: &str, plaintext: usize) -> usize {
    let base64 = (plaintext + 28).div_ceil(3) * 4;
    name.len() + 1 + base64 + base64 / 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_estimate_covers_the_sealed_value() {
        // 1,000 bytes of plaintext seal to 1,372 base64 characters.
        assert_eq!(sealed_size("appid_session", 1000), 14 + 1372 + 85);
    }

    #[test]
    fn an_older_layout_is_told_apart_from_junk() {
        assert_eq!(old_or_malformed(r#"{"v":2,"sid":"x"}"#), "old_version");
        assert_eq!(old_or_malformed(r#"{"sid":"x"}"#), "malformed");
        assert_eq!(old_or_malformed("not json"), "malformed");
    }

    #[test]
    fn the_deny_list_remembers_logged_out_sessions() {
        let sid = crate::auth::login::random_token();
        assert!(!is_denied(&sid));
        deny(&sid, crate::clock::now() + 60);
        assert!(is_denied(&sid));
    }
}
