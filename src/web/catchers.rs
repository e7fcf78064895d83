//! Error pages for every status the app produces. The 401 catcher is where a browser
//! that is not logged in gets sent to the provider.

use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::{catch, catchers, Catcher, Either};
use serde_json::{json, Value};

use super::page::{ErrorPage, Page, SeeOther};
use crate::appid::AppId;
use crate::auth::cookies;
use crate::auth::guard::Decision;
use crate::auth::session::{Loaded, Session};
use crate::auth::{login, return_to, AuthError};

/// The `realm` of every `WWW-Authenticate` challenge.
const REALM: &str = "rocket-appid";

/// True for a request to an API route: one whose guard is [`crate::Bearer`], or any path
/// under `/api/` (so an unknown API path or a failure before the guard ran is answered
/// the same way). API routes are answered as JSON on every failure path.
pub fn is_api_request(request: &Request<'_>) -> bool {
    let path = request.uri().path();
    request.local_cache(|| crate::auth::bearer::ApiRoute(false)).0
        || path == "/api"
        || path.starts_with("/api/")
}

/// Why a guard refused: a recorded refusal (requirement, bearer token), else the session
/// decision.
fn refusal<'r>(request: &'r Request<'_>) -> Option<&'r AuthError> {
    crate::auth::require::refusal(request).or_else(|| decision(request).as_ref().err())
}

/// A JSON error for API clients, with an RFC 6750 §3 challenge when it is about the token.
pub struct ApiError {
    status: Status,
    body: Value,
    challenge: Option<String>,
}

impl ApiError {
    /// The answer for `status` on an API route, from what the guard recorded.
    fn for_status(request: &Request<'_>, status: Status) -> Self {
        let refusal = refusal(request);
        // `challenge`: whether the answer carries an RFC 6750 §3 `WWW-Authenticate`.
        let (error, description, challenge) = match (status.code, refusal) {
            (401, Some(AuthError::NotLoggedIn("no_token" | "no_session" | "no_guard")) | None) => {
                ("unauthenticated", None, true)
            }
            (401, Some(AuthError::NotLoggedIn(reason))) => ("invalid_token", Some(*reason), true),
            (401, Some(_)) => ("invalid_token", None, true),
            (403, Some(AuthError::NoRole(_))) => ("insufficient_scope", Some("no_role"), true),
            (403, Some(AuthError::Insufficient { .. })) => {
                ("insufficient_scope", Some("requirement_not_met"), true)
            }
            (403, _) => ("forbidden", None, false),
            (400, Some(AuthError::MalformedCredentials)) => {
                ("invalid_request", Some("malformed_authorization_header"), true)
            }
            (400 | 422, _) => ("bad_request", None, false),
            (404, _) => ("not_found", None, false),
            (503, _) => ("temporarily_unavailable", None, false),
            _ => ("server_error", None, false),
        };
        // RFC 6750 §3.1: no credentials at all → a challenge without an error code.
        let challenge = challenge.then(|| match error {
            "unauthenticated" => format!(r#"Bearer realm="{REALM}""#),
            code => format!(r#"Bearer realm="{REALM}", error="{code}""#),
        });
        let mut body = json!({ "error": error });
        if let Some(description) = description {
            body["error_description"] = json!(description);
        }
        if let Some(AuthError::Insufficient { requirement, .. }) = refusal.filter(|_| status.code == 403) {
            body["required"] = json!(requirement);
        }
        ApiError { status, body, challenge }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build_from(Json(self.body).respond_to(request)?)
            .status(self.status)
            .raw_header("Cache-Control", "no-store")
            .finalize();
        if let Some(challenge) = self.challenge {
            response.set_raw_header("WWW-Authenticate", challenge);
        }
        if self.status == Status::ServiceUnavailable {
            response.set_raw_header("Retry-After", "30");
        }
        Ok(response)
    }
}

/// A page, or JSON for an API route.
type PageOrApi = Either<Page, ApiError>;

/// `page` for pages, the JSON error for API routes.
fn page_or_api(request: &Request<'_>, status: Status, page: impl FnOnce() -> Page) -> PageOrApi {
    if is_api_request(request) {
        Either::Right(ApiError::for_status(request, status))
    } else {
        Either::Left(page())
    }
}

/// All catchers, to register at `/`.
pub fn all() -> Vec<Catcher> {
    catchers![bad_request, unauthorized, forbidden, not_found, unprocessable, internal, unavailable]
}

/// What the guard decided for this request, if it ran.
fn decision<'r>(request: &'r Request<'_>) -> &'r Decision {
    request.local_cache(|| Err(AuthError::NotLoggedIn("no_guard")))
}

/// True for a browser navigation (not an API call or script): only those are redirected.
/// A script (`fetch`, XHR) says so with `Sec-Fetch-Mode` other than `navigate`, with
/// `X-Requested-With`, or by accepting JSON and not HTML.
fn is_browser_navigation(request: &Request<'_>) -> bool {
    let method_ok = matches!(request.method(), Method::Get | Method::Head);
    let headers = request.headers();
    let fetch_mode_ok = headers.get_one("Sec-Fetch-Mode").is_none_or(|m| m.eq_ignore_ascii_case("navigate"));
    method_ok && fetch_mode_ok && !wants_json(request)
}

/// True when the client asked for JSON (and not HTML), or is a script (XHR).
fn wants_json(request: &Request<'_>) -> bool {
    let headers = request.headers();
    let accepts_json = headers.get_one("Accept").is_some_and(|a| a.contains("json") && !a.contains("html"));
    accepts_json || headers.get_one("X-Requested-With").is_some()
}

/// Not logged in: a browser GET starts a login that returns here; anything else gets 401.
#[catch(401)]
async fn unauthorized(
    request: &Request<'_>,
) -> Either<Either<SeeOther, Page>, Either<(Status, Json<Value>), ApiError>> {
    // API routes: the RFC 6750 answer, whoever asks; a browser's session cookie is not
    // this route's business, so it is left alone.
    if is_api_request(request) {
        return Either::Right(Either::Right(ApiError::for_status(request, Status::Unauthorized)));
    }
    let unauthenticated =
        || Either::Right(Either::Left((Status::Unauthorized, Json(json!({ "error": "unauthenticated" })))));
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
    // A session that opened under our key (then expired, idled out, or had its token
    // refused) proves the browser keeps our cookies: the login-loop marker has done its
    // job, and must not turn the next visit into the "cookie not kept" page.
    let kept_ours = Session::of_request(request, secure).is_some()
        || matches!(Session::loaded_of_request(request, secure), Loaded::Refused(r) if *r != "undecryptable");
    if kept_ours && jar.get(cookies::SIGNED_IN).is_some() {
        jar.remove(cookies::signed_in_removal());
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

/// Logged in without a role, or without what the route requires: say so, and who is
/// logged in (never a redirect loop). JSON for API routes and for scripts.
#[catch(403)]
fn forbidden(request: &Request<'_>) -> PageOrApi {
    if is_api_request(request) {
        return Either::Right(ApiError::for_status(request, Status::Forbidden));
    }
    match refusal(request) {
        Some(AuthError::NoRole(_) | AuthError::Insufficient { .. }) if wants_json(request) => {
            Either::Right(ApiError::for_status(request, Status::Forbidden))
        }
        Some(AuthError::NoRole(viewer)) => Either::Left(
            Page::new("unauthorized", json!({}))
                .showing(viewer.clone())
                .with_status(Status::Forbidden)
                .no_store(),
        ),
        Some(AuthError::Insufficient { viewer, requirement }) => Either::Left(
            Page::new("unauthorized", json!({ "requirement": requirement }))
                .showing(viewer.clone())
                .with_status(Status::Forbidden)
                .no_store(),
        ),
        _ => Either::Left(ErrorPage::CrossSite.page()),
    }
}

#[catch(400)]
fn bad_request(request: &Request<'_>) -> PageOrApi {
    page_or_api(request, Status::BadRequest, || ErrorPage::BadRequest.page())
}

#[catch(404)]
fn not_found(request: &Request<'_>) -> PageOrApi {
    page_or_api(request, Status::NotFound, || ErrorPage::NotFound.page())
}

/// Rocket answers 422 for a query or form it cannot parse; to users that is a bad request.
#[catch(422)]
fn unprocessable(request: &Request<'_>) -> PageOrApi {
    page_or_api(request, Status::BadRequest, || ErrorPage::BadRequest.page())
}

#[catch(500)]
fn internal(request: &Request<'_>) -> PageOrApi {
    page_or_api(request, Status::InternalServerError, || ErrorPage::Internal.page())
}

/// A script on a page route (it asked for JSON) gets JSON too, as for its 401 and 403.
#[catch(503)]
fn unavailable(request: &Request<'_>) -> PageOrApi {
    if wants_json(request) {
        return Either::Right(ApiError::for_status(request, Status::ServiceUnavailable));
    }
    page_or_api(request, Status::ServiceUnavailable, || ErrorPage::Unavailable.page())
}
