//! `POST /logout`: ends the local session. Only same-origin form posts are honoured,
//! and the destination is fixed (never taken from the request).

use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder};
use rocket::State;

use super::cookies;
use super::session::{self, Session};
use crate::appid::AppId;
use crate::web::page::{ErrorPage, Page};

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

/// A response that also asks the browser to drop every cookie of our origin
/// (`Clear-Site-Data: "cookies"`, ASVS 7.4.4): a second line of defence besides the
/// removal `Set-Cookie`s, which only reach the cookies we name.
pub struct ClearSiteData(Page);

impl<'r> Responder<'r, 'static> for ClearSiteData {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.0.respond_to(request)?;
        response.set_raw_header("Clear-Site-Data", "\"cookies\"");
        Ok(response)
    }
}

/// Ends the session and shows a "signed out" page that moves on to the open page.
#[rocket::post("/logout")]
pub fn logout(
    same_origin: Result<SameOrigin, ()>,
    jar: &CookieJar<'_>,
    appid: &State<AppId>,
) -> Result<ClearSiteData, Page> {
    if same_origin.is_err() {
        tracing::warn!(event = "logout_refused", reason = "cross_origin");
        return Err(ErrorPage::CrossSite.page());
    }
    let secure = appid.config().secure_cookies();
    if let Some(session) = Session::read(jar, secure) {
        tracing::info!(event = "logout", sub = %session.sub);
        // A copy of this cookie saved before now must not work afterwards (R-L2).
        session::deny(&session.sid, session.expires_at);
    }
    Session::clear(jar, secure);
    jar.remove_private(cookies::removal(cookies::LOGIN, secure));
    jar.remove(cookies::signed_in_removal());
    // A page rather than a redirect: the protected page must enter the back/forward cache
    // before the marker cookie is removed by the next response, or Back would restore it.
    jar.add(cookies::build(cookies::SIGNED_OUT, "1".to_string(), secure, 300));
    // `viewer: null`: the request still carries the old session, the header must not show it.
    Ok(ClearSiteData(Page::new("signed_out", serde_json::json!({ "viewer": null })).no_store()))
}
