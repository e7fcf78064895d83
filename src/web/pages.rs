//! The app's own pages: the Flask pattern's routes and texts.

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::State;
use serde_json::json;

use super::page::Page;
use crate::appid::AppId;
use crate::auth::AuthorizedUser;

/// `/` sends everyone to the protected page (as the Flask pattern does).
#[rocket::get("/")]
pub fn index() -> Redirect {
    Redirect::to(rocket::uri!(auth_route))
}

/// Needs login and a role.
#[rocket::get("/auth_route")]
pub fn auth_route(user: AuthorizedUser) -> Page {
    let session_ends = super::when::When::new(user.expires_at, crate::clock::now());
    Page::new("protected", json!({ "user": user, "session_ends": session_ends })).no_store()
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

/// Readiness: configuration loaded, provider discovery and signing keys available
/// (fetched or from cache); 503 with a reason code otherwise. Never calls the provider.
#[rocket::get("/ready")]
pub async fn ready(appid: &State<AppId>) -> (Status, Json<serde_json::Value>) {
    match appid.readiness().await {
        Ok(()) => (Status::Ok, Json(json!({ "status": "ready" }))),
        Err(reason) => (Status::ServiceUnavailable, Json(json!({ "status": "not_ready", "reason": reason }))),
    }
}
