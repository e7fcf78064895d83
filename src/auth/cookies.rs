//! Names and attributes of our cookies, in one place.

use rocket::http::{Cookie, SameSite};
use rocket::time::Duration;

/// The session (who is logged in).
pub const SESSION: &str = "appid_session";
/// A login in progress (state, nonce, PKCE verifier, return path).
pub const LOGIN: &str = "appid_login";
/// Set by the signed-out page (after `POST /logout`) and removed by the next response: a
/// cookie change *after* that page has replaced the protected one, which makes browsers
/// drop the protected page from their back/forward cache (Chromium keeps `no-store` pages
/// there until a cookie changes).
pub const SIGNED_OUT: &str = "appid_signed_out";

/// Set by a successful callback for a short while: a protected request that carries it
/// but no session shows "your browser did not keep the sign-in cookie" instead of starting
/// another login (which would loop). Deliberately without `Secure` and `__Host-`, and tiny,
/// so it survives where the session cookie was dropped (http in local development, size).
/// It holds nothing secret; a planted one can only turn a login redirect into that page.
pub const SIGNED_IN: &str = "appid_signed_in";
/// How long the [`SIGNED_IN`] marker lives: the round trip from the callback to the page.
pub const SIGNED_IN_SECS: i64 = 60;

/// The [`SIGNED_IN`] marker cookie.
pub fn signed_in_marker() -> Cookie<'static> {
    Cookie::build((SIGNED_IN, "1"))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(SIGNED_IN_SECS))
        .build()
}

/// The cookie that removes the [`SIGNED_IN`] marker.
pub fn signed_in_removal() -> Cookie<'static> {
    Cookie::build(SIGNED_IN).path("/").build()
}

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
    build_named(name(base, secure), value, secure, max_age_secs)
}

/// [`build`] for a full name (a numbered chunk, see `cookie_store`).
pub fn build_named(name: String, value: String, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build((name, value))
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
