//! The session: who is logged in, kept in one private (AES-256-GCM) cookie.
//! It holds only what the guard needs: not the id_token, not the refresh token, not the
//! roles (those are cached per user with bounded staleness, see `AppId::roles`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::CookieJar;
use rocket::Request;
use serde::{Deserialize, Serialize};

use super::cookies;

/// Bumped when the layout changes: older cookies then count as absent.
const VERSION: u8 = 3;
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
}

/// The request-local copy of the session (a distinct type for Rocket's request cache).
struct RequestSession(Option<Session>);

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
        }
    }

    /// SHA-256 of the access token (see the `th` field).
    pub fn token_key(&self) -> Option<[u8; 32]> {
        let mut key = [0u8; 32];
        let written = URL_SAFE_NO_PAD.decode_slice(&self.th, &mut key).ok()?;
        (written == 32).then_some(key)
    }

    /// The session of this request, if there is a readable, current one.
    /// Undecryptable, old-format or expired cookies count as no session.
    pub fn read(jar: &CookieJar<'_>, secure: bool) -> Option<Session> {
        let cookie = jar.get_private(&cookies::name(cookies::SESSION, secure))?;
        let session: Session = serde_json::from_str(cookie.value()).ok()?;
        (session.v == VERSION && session.expires_at > crate::clock::now()).then_some(session)
    }

    /// The session of this request, decrypted once per request however many guards and
    /// responders ask (the guard and the page header both need it).
    pub fn of_request<'r>(request: &'r Request<'_>, secure: bool) -> Option<&'r Session> {
        request.local_cache(|| RequestSession(Session::read(request.cookies(), secure))).0.as_ref()
    }

    /// Stores the session, refusing one the browser would silently drop.
    pub fn write(&self, jar: &CookieJar<'_>, secure: bool) -> Result<usize, SessionTooLarge> {
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
}
