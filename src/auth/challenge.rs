//! What a request without a usable session gets: the login policy behind the 401 catcher.
//! A browser navigation starts a login that returns to the page it asked for; anything
//! else is told it is not signed in. Refused session cookies are removed on the way, and a
//! browser that just signed in but did not keep the cookie is not sent round again.

use rocket::http::Method;
use rocket::request::Request;
use url::Url;

use super::guard::{AuthError, Decision};
use super::limits::SignInLimits;
use super::session::{Loaded, Session};
use super::{cookies, login, return_to};
use crate::appid::AppId;

/// The answer to a request that needs a session and has none.
#[derive(Debug)]
pub enum Challenge {
    /// Send the browser to the provider (a login was started).
    Login(Url),
    /// A script or API client: 401, no redirect.
    Unauthenticated,
    /// The browser signed in moments ago and still shows no session: it did not keep the
    /// cookie, and another redirect would loop (R-C7).
    CookieNotKept,
    /// This client started too many logins lately: come back after this long.
    TooMany(std::time::Duration),
    /// The provider could not be asked to start a login.
    Unavailable,
    /// The app has no App ID configuration (a browser gets the 500 page).
    NotConfigured,
}

/// True for a browser navigation (not an API call or script): only those are redirected.
/// A script (`fetch`, XHR) says so with `Sec-Fetch-Mode` other than `navigate`, with
/// `X-Requested-With`, or by accepting JSON and not HTML.
pub fn is_browser_navigation(request: &Request<'_>) -> bool {
    let method_ok = matches!(request.method(), Method::Get | Method::Head);
    let headers = request.headers();
    let fetch_mode_ok = headers.get_one("Sec-Fetch-Mode").is_none_or(|m| m.eq_ignore_ascii_case("navigate"));
    method_ok && fetch_mode_ok && !wants_json(request)
}

/// True when the client asked for JSON (and not HTML), or is a script (XHR).
pub fn wants_json(request: &Request<'_>) -> bool {
    let headers = request.headers();
    let accepts_json = headers.get_one("Accept").is_some_and(|a| a.contains("json") && !a.contains("html"));
    accepts_json || headers.get_one("X-Requested-With").is_some()
}

/// What the guard decided for this request, if it ran.
pub fn decision<'r>(request: &'r Request<'_>) -> &'r Decision {
    request.local_cache(|| Err(AuthError::NotLoggedIn("no_guard")))
}

/// The login policy for a request refused with 401 (see the module docs).
pub async fn challenge(request: &Request<'_>) -> Challenge {
    let Some(appid) = request.rocket().state::<AppId>() else {
        return if is_browser_navigation(request) {
            Challenge::NotConfigured
        } else {
            Challenge::Unauthenticated
        };
    };
    let secure = appid.config().secure_cookies();
    let jar = request.cookies();
    let loaded = Session::resolve(request).await;
    // A refused session cookie (undecryptable, expired, idle, logged out, token refused) is
    // removed so the browser stops sending it, whoever asked (a page or a script). Done
    // here: catchers drop the guard's changes.
    if matches!(loaded, Loaded::Refused(_) | Loaded::Valid(_))
        || matches!(decision(request), Err(AuthError::NotLoggedIn(r)) if *r != "no_session")
    {
        Session::clear(jar, secure);
    }
    // A session that opened under our key (then expired, idled out, or had its token
    // refused) proves the browser keeps our cookies: the login-loop marker has done its
    // job, and must not turn the next visit into the "cookie not kept" page.
    let kept_ours =
        matches!(loaded, Loaded::Valid(_)) || matches!(loaded, Loaded::Refused(r) if *r != "undecryptable");
    if kept_ours && jar.get(cookies::SIGNED_IN).is_some() {
        jar.remove(cookies::signed_in_removal());
    }
    if !is_browser_navigation(request) {
        return Challenge::Unauthenticated;
    }
    // Login-loop guard (R-C7): this browser completed a login moments ago and still shows
    // no session, so it did not keep the cookie. (Only when no session arrived at all, or
    // one sealed with another instance's key.)
    let kept_nothing = matches!(loaded, Loaded::Absent | Loaded::Refused("undecryptable"));
    if kept_nothing && jar.get(cookies::SIGNED_IN).is_some() {
        jar.remove(cookies::signed_in_removal());
        tracing::warn!(event = "session_cookie_not_kept");
        return Challenge::CookieNotKept;
    }
    if let Some(limits) = request.rocket().state::<SignInLimits>() {
        if let Err(over) = limits.start_login(request) {
            tracing::warn!(event = "login_rate_limited", retry_after_secs = over.retry_after.as_secs());
            return Challenge::TooMany(over.retry_after);
        }
    }
    let destination = return_to::from_request(request.uri());
    match login::begin(appid, jar, destination).await {
        Ok(url) => {
            appid.metrics().login_started();
            Challenge::Login(url)
        }
        Err(error) => {
            tracing::warn!(event = "login_unavailable", %error);
            Challenge::Unavailable
        }
    }
}
