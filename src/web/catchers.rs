//! Error pages for every status the app produces. The 401 catcher answers with the login
//! policy's challenge (`auth::challenge`): a redirect to the provider, or a 401.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::{catch, catchers, Catcher, Either};
use serde_json::{json, Value};

use super::page::{ErrorPage, Page, SeeOther};
use crate::auth::challenge::{challenge, decision, wants_json, Challenge};
use crate::auth::AuthError;

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
    match challenge(request).await {
        Challenge::Login(url) => Either::Left(Either::Left(SeeOther::to(url.to_string()))),
        Challenge::Unauthenticated => {
            Either::Right(Either::Left((Status::Unauthorized, Json(json!({ "error": "unauthenticated" })))))
        }
        Challenge::CookieNotKept => Either::Left(Either::Right(ErrorPage::CookieNotKept.page())),
        Challenge::TooMany(retry_after) => {
            Either::Left(Either::Right(ErrorPage::TooManySignIns.page_retry_after(retry_after)))
        }
        Challenge::Unavailable => Either::Left(Either::Right(ErrorPage::Unavailable.page())),
        Challenge::NotConfigured => Either::Left(Either::Right(ErrorPage::Internal.page())),
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
