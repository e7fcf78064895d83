//! The routes of signing in and out: the redirect URI (`/afterauth`), `POST /logout` and
//! the "signed out" page. `auth` decides each outcome; these turn it into pages and
//! redirects.

use rocket::form::Form;
use rocket::http::uri::Origin;
use rocket::http::CookieJar;
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder};
use rocket::State;

use super::page::{ErrorPage, Page, SeeOther};
use crate::appid::AppId;
use crate::auth::callback::{self, LoginFailure, Refusal};
use crate::auth::limits::{OverLimit, SignInLimits};
use crate::auth::logout::{
    end_session, mark_signed_out, provider_logout_url, CurrentSession, LogoutRefused, SameOrigin,
};
use crate::auth::session::SessionSettings;
use crate::auth::store::SessionStore;

/// The redirect URI registered with App ID.
#[rocket::get("/afterauth")]
pub async fn afterauth(
    uri: &Origin<'_>,
    jar: &CookieJar<'_>,
    appid: &State<AppId>,
    store: &State<SessionStore>,
    sessions: &State<SessionSettings>,
    limited: FinishLimit,
) -> Result<SeeOther, Page> {
    if let FinishLimit(Err(over)) = limited {
        tracing::warn!(event = "login_rate_limited", retry_after_secs = over.retry_after.as_secs());
        appid.metrics().login_refused("rate_limited");
        return Err(ErrorPage::TooManySignIns.page_retry_after(over.retry_after));
    }
    match callback::finish(uri.query().map(|q| q.as_str()), jar, appid, store, sessions).await {
        Ok(destination) => Ok(SeeOther::to(destination)),
        Err(Refusal(_, LoginFailure::TooMany)) => {
            Err(ErrorPage::TooManySignIns.page_retry_after(std::time::Duration::from_secs(1)))
        }
        Err(Refusal(_, failure)) => Err(failure_page(failure).page()),
    }
}

/// Whether this client may finish a login now (see `auth::limits`).
pub struct FinishLimit(Result<(), OverLimit>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for FinishLimit {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let allowed = match request.rocket().state::<SignInLimits>() {
            Some(limits) => limits.finish_login(request),
            None => Ok(()),
        };
        request::Outcome::Success(FinishLimit(allowed))
    }
}

/// The page that tells the user why their login was refused.
fn failure_page(failure: LoginFailure) -> ErrorPage {
    match failure {
        LoginFailure::Failed => ErrorPage::SignInFailed,
        LoginFailure::Cancelled => ErrorPage::SignInCancelled,
        LoginFailure::Expired => ErrorPage::SignInExpired,
        LoginFailure::SessionTooLarge => ErrorPage::SessionTooLarge,
        LoginFailure::Unavailable => ErrorPage::Unavailable,
        LoginFailure::TooMany => ErrorPage::TooManySignIns,
    }
}

/// The logout form: only the per-session token.
#[derive(rocket::FromForm)]
pub struct LogoutForm {
    csrf: String,
}

/// A response that also asks the browser to drop every cookie of our origin
/// (`Clear-Site-Data: "cookies"`, ASVS 7.4.4): a second line of defence besides the
/// removal `Set-Cookie`s, which only reach the cookies we name.
pub struct ClearSiteData<R>(R);

impl<'r, R: Responder<'r, 'static>> Responder<'r, 'static> for ClearSiteData<R> {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.0.respond_to(request)?;
        response.set_raw_header("Clear-Site-Data", "\"cookies\"");
        Ok(response)
    }
}

/// Ends the session, then sends the browser to the "signed out" page (which moves on to
/// the open page, or, with `appid.sso_logout`, to the provider's single sign-on logout).
///
/// Why a 303 to `/signed_out` rather than the page itself: `Clear-Site-Data` here wipes
/// every cookie, including any set in the same response. The signed-out page then sets a
/// marker cookie that the next response removes; that change, made while the protected
/// page sits in the browser's back/forward cache, is what evicts it there (Chromium keeps
/// `no-store` pages in that cache until a cookie changes), so Back cannot show it.
#[rocket::post("/logout", data = "<form>")]
pub async fn logout(
    same_origin: Result<SameOrigin, ()>,
    current: CurrentSession,
    form: Option<Form<LogoutForm>>,
    jar: &CookieJar<'_>,
    appid: &State<AppId>,
    store: &State<SessionStore>,
) -> Result<ClearSiteData<SeeOther>, Page> {
    let sent = form.as_ref().map(|f| f.csrf.as_str());
    match end_session(same_origin.is_ok(), &current, sent, jar, appid, store).await {
        Ok(next) => Ok(ClearSiteData(SeeOther::to(next.to_string()))),
        Err(LogoutRefused::CrossSite) => Err(ErrorPage::CrossSite.page()),
    }
}

/// The "signed out" page: reached after `POST /logout`, and where the provider returns the
/// browser after its SSO logout (the default `post_logout_redirect_uri`). With
/// `?provider=1` and `appid.sso_logout` on, it moves on to the provider's SSO logout.
#[rocket::get("/signed_out?<provider>")]
pub async fn signed_out(provider: Option<u8>, jar: &CookieJar<'_>, appid: &State<AppId>) -> Page {
    mark_signed_out(jar, appid.config().secure_cookies());
    let provider_logout = match provider {
        Some(1) if appid.config().sso_logout => provider_logout_url(appid).await,
        _ => None,
    };
    // The header must not show anyone (the session is gone).
    let context = serde_json::json!({ "provider_logout": provider_logout });
    Page::new("signed_out", context).showing_nobody().no_store()
}
