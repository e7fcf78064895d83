//! Responders: a Tera page with a status and the signed-in user in its header, the
//! error pages with fixed, user-safe texts, and a 303 redirect that is never cached.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket_dyn_templates::Template;
use std::io::Cursor;

use super::render::Renderer;
use rocket_dyn_templates::tera::Context;
use serde_json::{json, Value};

use crate::auth::challenge::decision;
use crate::auth::session::Session;
use crate::auth::{Admin, Requirement, Viewer};

/// A rendered template. Templates get display data only, never tokens.
pub struct Page {
    status: Status,
    template: &'static str,
    context: Context,
    no_store: bool,
    retry_after: Option<u32>,
    shown: Shown,
}

/// Who the page says is signed in.
enum Shown {
    /// The user of this request's session cookie, if any (most pages).
    FromSession,
    /// Nobody (the page after logout: the cookie is being removed).
    Nobody,
    /// This user (the unauthorized page, from the guard's refusal).
    This(Viewer),
}

impl Page {
    /// A 200 page with the data of a JSON object (`json!({ ... })`).
    pub fn new(template: &'static str, context: Value) -> Self {
        // Only an object can be a context; the callers pass `json!({ ... })` literals.
        Page::with_context(template, Context::from_value(context).unwrap_or_default())
    }

    /// A 200 page with a Tera context built by the caller (the pages served most often:
    /// filling Tera's context directly skips building a JSON map first and then Tera's
    /// map from it).
    pub fn with_context(template: &'static str, context: Context) -> Self {
        Page {
            status: Status::Ok,
            template,
            context,
            no_store: false,
            retry_after: None,
            shown: Shown::FromSession,
        }
    }

    /// Showing `viewer` as signed in (instead of reading the session cookie again).
    pub fn showing(mut self, viewer: Viewer) -> Self {
        self.shown = Shown::This(viewer);
        self
    }

    /// Showing nobody as signed in.
    pub fn showing_nobody(mut self) -> Self {
        self.shown = Shown::Nobody;
        self
    }

    /// With another status.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// With `Cache-Control: no-store` (pages about a signed-in user).
    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut context = self.context;
        // Which page this is (the header marks it). Display data only.
        context.insert("page_id", self.template);
        // The "Admin" link: shown only where this request's guard already established the
        // user's roles (its cached decision), so no page asks the provider just for the
        // navigation; pages without a guard (the open page) never show it.
        context.insert("nav_admin", &decision(request).as_ref().is_ok_and(Admin::allows));
        // Every page's header shows who is signed in, from the session cookie.
        let session = Session::of_request(request);
        let renderer = request.rocket().state::<Renderer>();
        match (&self.shown, session, renderer) {
            (Shown::Nobody, _, _) | (Shown::FromSession, None, _) => context.insert("viewer", &false),
            // The header's block of a session, rendered once (see `web::account`): the
            // page itself gets only `viewer` and `viewer_label`.
            (Shown::FromSession, Some(session), Some(renderer)) => {
                let (name, email) = (shown(&session.name), shown(&session.email));
                context.insert("viewer", &true);
                context.insert("viewer_label", label(name, email));
                let block = renderer.account(session, || {
                    let mut block = Context::new();
                    insert_viewer(&mut block, &session.name, &session.email);
                    insert_logout_token(&mut block, request, session);
                    block
                });
                if let Some(block) = block {
                    context.insert("account", &*block);
                }
            }
            (Shown::FromSession, Some(session), None) => {
                insert_viewer(&mut context, &session.name, &session.email);
                insert_logout_token(&mut context, request, session);
            }
            (Shown::This(viewer), session, _) => {
                insert_viewer(&mut context, &viewer.name, &viewer.email);
                if let Some(session) = session {
                    insert_logout_token(&mut context, request, session);
                }
            }
        }
        let mut response = match renderer {
            Some(renderer) => {
                let (content_type, html) =
                    renderer.render(self.template, &context).ok_or(Status::InternalServerError)?;
                Response::build().header(content_type).sized_body(html.len(), Cursor::new(html)).finalize()
            }
            // An app that attached `Template::fairing()` itself (the library use).
            None => Template::render(self.template, context.into_json()).respond_to(request)?,
        };
        response.set_status(self.status);
        if self.no_store {
            response.set_raw_header("Cache-Control", "no-store");
        }
        if let Some(secs) = self.retry_after {
            response.set_raw_header("Retry-After", secs.to_string());
        }
        Ok(response)
    }
}

/// Who is signed in, as flat keys for the templates: `viewer` (signed in or not),
/// `viewer_label` (the name, else the e-mail, else a fixed text), `viewer_name` and
/// `viewer_email` (`null` when unknown). Flat because Tera looks up a dotted name
/// (`viewer.name`) with four string allocations and a flat one with none; and the label
/// is chosen once here rather than by chained `default` filters in every template that
/// shows it. Pages of the session's own user get only `viewer` and `viewer_label` (and the
/// header's `account` block); the whole set goes to that block and to pages that show a
/// given viewer (the unauthorized page).
fn insert_viewer(context: &mut Context, name: &Option<String>, email: &Option<String>) {
    let (name, email) = (shown(name), shown(email));
    context.insert("viewer", &true);
    context.insert("viewer_label", label(name, email));
    context.insert("viewer_name", &name);
    context.insert("viewer_email", &email);
}

/// How a signed-in user is named: the name, else the e-mail, else a fixed text.
fn label<'a>(name: Option<&'a str>, email: Option<&'a str>) -> &'a str {
    name.or(email).unwrap_or("a user without a name")
}

/// The logout form's token of `session` as `logout_csrf`: the one it carries, else
/// computed (sessions written before it was kept).
fn insert_logout_token(context: &mut Context, request: &Request<'_>, session: &Session) {
    match session.logout_token() {
        Some(token) => context.insert("logout_csrf", token),
        None => {
            if let Some(token) = crate::auth::logout::csrf_token(request.rocket(), &session.sid) {
                context.insert("logout_csrf", &token);
            }
        }
    }
}

/// A profile text as pages show it: a blank one (`""`, spaces) counts as not provided.
pub(super) fn shown(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.trim().is_empty())
}

/// `303 See Other` to a location we built ourselves, never cached.
pub struct SeeOther(String);

impl SeeOther {
    /// Redirect to `location` (the caller has validated it).
    pub fn to(location: String) -> Self {
        SeeOther(location)
    }
}

impl<'r> Responder<'r, 'static> for SeeOther {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .status(Status::SeeOther)
            .raw_header("Location", self.0)
            .raw_header("Cache-Control", "no-store")
            .ok()
    }
}

/// The error pages, each with a fixed status and text (never provider or user text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPage {
    SignInFailed,
    SignInCancelled,
    SignInExpired,
    SessionTooLarge,
    CookieNotKept,
    TooManySignIns,
    Unavailable,
    LoginRequired,
    CrossSite,
    NotFound,
    BadRequest,
    Internal,
}

impl ErrorPage {
    /// Status, title and explanation.
    fn parts(self) -> (Status, &'static str, &'static str) {
        match self {
            ErrorPage::SignInFailed => (Status::BadRequest, "Sign-in could not be completed",
                "The sign-in could not be completed. This happens when a sign-in link is opened twice, in another browser, after it was tampered with, or when a newer sign-in was started in another tab or window."),
            ErrorPage::SignInCancelled => (Status::BadRequest, "Sign-in cancelled",
                "The sign-in was cancelled or refused by the identity provider."),
            ErrorPage::SignInExpired => (Status::BadRequest, "Sign-in could not be completed",
                "The sign-in took too long or was already used. Please start again."),
            ErrorPage::SessionTooLarge => (Status::ServiceUnavailable, "Session too large",
                "Your sign-in produced more data than a browser cookie can hold. Please tell the administrator of this application (the App ID token configuration adds too many claims)."),
            // A 500-class page (R-C7): the login worked, keeping it failed on this side of
            // the connection, and another redirect to the provider would only loop.
            ErrorPage::CookieNotKept => (Status::InternalServerError, "Sign-in cookie not kept",
                "You signed in, but your browser did not keep the sign-in cookie, so this application cannot see that you are signed in. Sending you to sign in again would only repeat this."),
            ErrorPage::TooManySignIns => (Status::TooManyRequests, "Too many sign-in attempts",
                "Too many sign-ins were started or finished from your network in a short time. Please wait a little, then try again."),
            ErrorPage::Unavailable => (Status::ServiceUnavailable, "Identity service unavailable",
                "The identity service is not answering. Please try again in a minute."),
            ErrorPage::LoginRequired => (Status::Unauthorized, "Sign-in required",
                "You need to sign in to use this page."),
            ErrorPage::CrossSite => (Status::Forbidden, "Request refused",
                "This request did not come from one of this application's pages."),
            ErrorPage::NotFound => (Status::NotFound, "Page not found", "There is no page at this address."),
            ErrorPage::BadRequest => (Status::BadRequest, "Bad request", "The request could not be understood."),
            ErrorPage::Internal => (Status::InternalServerError, "Something went wrong",
                "Something went wrong on our side. Please try again."),
        }
    }

    /// Which help and buttons the error page shows under the message.
    fn kind(self) -> &'static str {
        match self {
            ErrorPage::SignInFailed | ErrorPage::SignInExpired => "sign_in",
            ErrorPage::SignInCancelled => "cancelled",
            ErrorPage::Unavailable => "unavailable",
            ErrorPage::TooManySignIns => "too_many",
            ErrorPage::NotFound => "not_found",
            ErrorPage::Internal | ErrorPage::SessionTooLarge => "internal",
            ErrorPage::CookieNotKept => "cookie",
            ErrorPage::LoginRequired | ErrorPage::CrossSite | ErrorPage::BadRequest => "other",
        }
    }

    /// The page to send, telling the client to come back after `retry_after` (rounded up
    /// to whole seconds, at least one).
    pub fn page_retry_after(self, retry_after: std::time::Duration) -> Page {
        let mut page = self.page();
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        page.retry_after = Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX));
        page
    }

    /// The page to send.
    pub fn page(self) -> Page {
        let (status, title, message) = self.parts();
        let context =
            json!({ "title": title, "message": message, "status": status.code, "kind": self.kind() });
        let mut page = Page::new("error", context).with_status(status).no_store();
        if status == Status::ServiceUnavailable {
            page.retry_after = Some(30);
        }
        page
    }
}
