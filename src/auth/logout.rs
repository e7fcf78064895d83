//! `POST /logout`: ends the local session. Only same-origin form posts are honoured,
//! and the destination is fixed (never taken from the request).

use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::State;

use super::cookies;
use super::session::Session;
use crate::appid::AppId;
use crate::web::page::{ErrorPage, Page, SeeOther};

/// Proof that a state-changing request came from one of our own pages (by the browser's
/// `Sec-Fetch-Site`, or else its `Origin`).
pub struct SameOrigin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOrigin {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(appid) = request.rocket().state::<AppId>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let ours = appid.config().redirect_uri.origin().ascii_serialization();
        let headers = request.headers();
        // Browsers that send Sec-Fetch-Site are judged by it alone: with our
        // `Referrer-Policy: no-referrer` they send `Origin: null` even for our own forms.
        // Older browsers are judged by Origin; clients that send neither are no browser
        // (a cross-site form post always carries one of the two).
        let allowed = match (headers.get_one("Sec-Fetch-Site"), headers.get_one("Origin")) {
            (Some(site), _) => site == "same-origin" || site == "none",
            (None, Some(origin)) => origin == ours,
            (None, None) => true,
        };
        if allowed {
            Outcome::Success(SameOrigin)
        } else {
            Outcome::Error((Status::Forbidden, ()))
        }
    }
}

/// Ends the session and shows the open page.
#[rocket::post("/logout")]
pub fn logout(
    same_origin: Result<SameOrigin, ()>,
    jar: &CookieJar<'_>,
    appid: &State<AppId>,
) -> Result<SeeOther, Page> {
    if same_origin.is_err() {
        tracing::warn!(event = "logout_refused", reason = "cross_origin");
        return Err(ErrorPage::CrossSite.page());
    }
    let secure = appid.config().secure_cookies();
    if let Some(session) = Session::read(jar, secure) {
        tracing::info!(event = "logout", sub = %session.sub);
    }
    Session::clear(jar, secure);
    jar.remove_private(cookies::removal(cookies::LOGIN, secure));
    Ok(SeeOther::to("/noauth_route".to_string()))
}
