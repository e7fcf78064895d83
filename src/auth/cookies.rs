//! Names and attributes of our cookies, in one place.

use rocket::http::{Cookie, SameSite};
use rocket::time::Duration;

/// The session (who is logged in).
pub const SESSION: &str = "appid_session";
/// A login in progress (state, nonce, PKCE verifier, return path).
pub const LOGIN: &str = "appid_login";
/// Set by logout and removed by the next response: a cookie change *after* the logout
/// page has replaced the protected one, which makes browsers drop the protected page from
/// their back/forward cache (Chromium keeps `no-store` pages there until a cookie changes).
pub const SIGNED_OUT: &str = "appid_signed_out";

/// The `Set-Cookie` value that removes the [`SIGNED_OUT`] marker.
/// (A response fairing cannot use the cookie jar, so it sends this header itself.)
pub fn signed_out_removal(secure: bool) -> String {
    build(SIGNED_OUT, String::new(), secure, 0).to_string()
}

/// The cookie's name: with `__Host-` when served over https (the prefix requires `Secure`
/// and forbids `Domain`, so no sibling host can plant or shadow it).
pub fn name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A private cookie with our attributes. `SameSite=Lax`: a Strict cookie would not be sent
/// on the provider's redirect back to `/afterauth`, nor on the redirect that follows it.
pub fn build(base: &str, value: String, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build((name(base, secure), value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(max_age_secs.max(0)))
        .build()
}

/// A cookie that removes ours (same name and path).
pub fn removal(base: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(name(base, secure)).path("/").build()
}
