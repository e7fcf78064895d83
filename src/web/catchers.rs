//! Error pages for every status the app produces. The 401 catcher is where a browser
//! that is not logged in gets sent to the provider.

use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::serde::json::Json;
use rocket::{catch, catchers, Catcher, Either};
use serde_json::{json, Value};

use super::page::{ErrorPage, Page, SeeOther};
use crate::appid::AppId;
use crate::auth::cookies;
use crate::auth::guard::Decision;
use crate::auth::session::{Loaded, Session};
use crate::auth::{login, return_to, AuthError};

/// All catchers, to register at `/`.
pub fn all() -> Vec<Catcher> {
    catchers![bad_request, unauthorized, forbidden, not_found, unprocessable, internal, unavailable]
}

/// What the guard decided for this request, if it ran.
fn decision<'r>(request: &'r Request<'_>) -> &'r Decision {
    request.local_cache(|| Err(AuthError::NotLoggedIn("no_guard")))
}

/// True for a browser navigation (not an API call or script): only those are redirected.
fn is_browser_navigation(request: &Request<'_>) -> bool {
    let method_ok = matches!(request.method(), Method::Get | Method::Head);
    let headers = request.headers();
    let wants_json = headers.get_one("Accept").is_some_and(|a| a.contains("json") && !a.contains("html"));
    let is_xhr = headers.get_one("X-Requested-With").is_some();
    method_ok && !wants_json && !is_xhr
}

/// Not logged in: a browser GET starts a login that returns here; anything else gets 401.
#[catch(401)]
async fn unauthorized(request: &Request<'_>) -> Either<Either<SeeOther, Page>, (Status, Json<Value>)> {
    let unauthenticated =
        || Either::Right((Status::Unauthorized, Json(json!({ "error": "unauthenticated" }))));
    let Some(appid) = request.rocket().state::<AppId>() else {
        if !is_browser_navigation(request) {
            return unauthenticated();
        }
        return Either::Left(Either::Right(ErrorPage::Internal.page()));
    };
    let secure = appid.config().secure_cookies();
    let jar = request.cookies();
    // A refused session cookie (undecryptable, expired, idle, logged out, token refused) is
    // removed so the browser stops sending it, whoever asked (a page or a script). Done
    // here: catchers drop the guard's changes.
    if matches!(Session::loaded_of_request(request, secure), Loaded::Refused(_))
        || Session::of_request(request, secure).is_some()
        || matches!(decision(request), Err(AuthError::NotLoggedIn(r)) if *r != "no_session")
    {
        Session::clear(jar, secure);
    }
    if !is_browser_navigation(request) {
        return unauthenticated();
    }
    // Login-loop guard (R-C7): this browser completed a login moments ago and still shows
    // no session, so it did not keep the cookie. Another redirect would loop; say so.
    // (Only when no session arrived at all, or one sealed with another instance's key.)
    let kept_nothing = matches!(
        Session::loaded_of_request(request, secure),
        Loaded::Absent | Loaded::Refused("undecryptable")
    );
    if kept_nothing && jar.get(cookies::SIGNED_IN).is_some() {
        jar.remove(cookies::signed_in_removal());
        tracing::warn!(event = "session_cookie_not_kept");
        return Either::Left(Either::Right(ErrorPage::CookieNotKept.page()));
    }
    let destination = return_to::from_request(request.uri());
    match login::begin(appid, jar, destination).await {
        Ok(url) => {
            crate::metrics::METRICS.login_started();
            Either::Left(Either::Left(SeeOther::to(url.to_string())))
        }
        Err(error) => {
            tracing::warn!(event = "login_unavailable", %error);
            Either::Left(Either::Right(ErrorPage::Unavailable.page()))
        }
    }
}

/// Logged in without a role: say so, and who is logged in (never a redirect loop).
#[catch(403)]
fn forbidden(request: &Request<'_>) -> Page {
    match decision(request) {
        Err(AuthError::NoRole(viewer)) => {
            Page::new("unauthorized", json!({ "viewer": viewer })).with_status(Status::Forbidden).no_store()
        }
        _ => ErrorPage::CrossSite.page(),
    }
}

#[catch(400)]
fn bad_request() -> Page {
    ErrorPage::BadRequest.page()
}

#[catch(404)]
fn not_found() -> Page {
    ErrorPage::NotFound.page()
}

/// Rocket answers 422 for a query or form it cannot parse; to users that is a bad request.
#[catch(422)]
fn unprocessable() -> Page {
    ErrorPage::BadRequest.page()
}

#[catch(500)]
fn internal() -> Page {
    ErrorPage::Internal.page()
}

#[catch(503)]
fn unavailable() -> Page {
    ErrorPage::Unavailable.page()
}
