//! The app's own pages: the Flask pattern's routes and texts.

use rocket::response::Redirect;
use serde_json::json;

use super::page::Page;
use crate::auth::AuthorizedUser;

/// `/` sends everyone to the protected page (as the Flask pattern does).
#[rocket::get("/")]
pub fn index() -> Redirect {
    Redirect::to(rocket::uri!(auth_route))
}

/// Needs login and a role.
#[rocket::get("/auth_route")]
pub fn auth_route(user: AuthorizedUser) -> Page {
    Page::new("protected", json!({ "user": user })).no_store()
}

/// Open to all.
#[rocket::get("/noauth_route")]
pub fn noauth_route() -> Page {
    Page::new("open", json!({}))
}

/// Liveness: the process serves requests.
#[rocket::get("/health")]
pub fn health() -> &'static str {
    "ok"
}
