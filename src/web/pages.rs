//! The app's own pages: the Flask pattern's routes and texts.

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::State;
use rocket_dyn_templates::tera::Context;
use serde_json::json;

use super::page::{shown, Page};
use super::when::When;
use crate::appid::AppId;
use crate::auth::store::SessionStore;
use crate::auth::{Admin, Authorized, AuthorizedUser, Bearer};
use crate::metrics::Metrics;

/// `/` sends everyone to the protected page (as the Flask pattern does).
#[rocket::get("/")]
pub fn index() -> Redirect {
    Redirect::to(rocket::uri!(auth_route))
}

/// Needs login and a role.
#[rocket::get("/auth_route")]
pub fn auth_route(user: &AuthorizedUser) -> Page {
    let ends = When::new(user.expires_at, crate::clock::now());
    let mut context = user_context(user);
    context.insert("ends_iso", &ends.iso);
    context.insert("ends_text", &ends.text);
    context.insert("ends_relative", &ends.relative);
    Page::with_context("protected", context).no_store()
}

/// Needs login and the App ID role `admin`.
#[rocket::get("/admin_route")]
pub fn admin_route(user: Authorized<Admin>) -> Page {
    let mut context = user_context(&user);
    context.insert("user_scopes", &user.scopes);
    Page::with_context("admin", context).no_store()
}

/// The user as the protected pages show them, as flat keys (`user_name`, `user_email`,
/// `user_sub`, `user_roles`): Tera looks a dotted name (`user.name`) up with four string
/// allocations and a flat one with none.
fn user_context(user: &AuthorizedUser) -> Context {
    let mut context = Context::new();
    context.insert("user_name", &shown(&user.name));
    context.insert("user_email", &shown(&user.email));
    context.insert("user_sub", &user.sub);
    context.insert("user_roles", &user.roles);
    context
}

/// The API caller, for clients with an access token (`Authorization: Bearer …`). `name`
/// and `email` are `null`: an access token does not carry them.
#[rocket::get("/api/me")]
pub fn api_me(user: Bearer) -> Json<serde_json::Value> {
    Json(json!({
        "sub": user.sub,
        "name": user.name,
        "email": user.email,
        "roles": user.roles,
        "scopes": user.scopes,
    }))
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
pub async fn ready(appid: &State<AppId>, store: &State<SessionStore>) -> (Status, Json<serde_json::Value>) {
    match appid.readiness().await {
        // Ready, but some provider endpoints are failing (their circuit breakers are open),
        // or the shared session store is, or sessions are served from stale answers:
        // existing sessions keep working from cached keys and each instance's own state; say
        // what, so an operator sees it, without failing the probe and restarting a healthy
        // process.
        Ok(()) => {
            let mut body = json!({ "status": "ready" });
            let degraded = appid.degraded_endpoints();
            if !degraded.is_empty() {
                body["degraded"] = json!(degraded);
            }
            if store.degraded() {
                body["store"] = json!("degraded");
            }
            // Signed-in users are being let in on the last answers (the outage window):
            // ready, but an operator should know that revocations are not seen meanwhile.
            let stale = appid.serving_stale();
            if !stale.is_empty() {
                body["serving_stale"] = json!(stale);
            }
            // The management API refused our configuration: signed-in users get the 503
            // page until an operator fixes it. Still 200: a probe failing on this would take
            // every instance out of service, and none would then make the call that shows
            // the fix has worked.
            if let Some(problem) = appid.configuration_problem() {
                body["configuration_error"] = json!(problem);
            }
            (Status::Ok, Json(body))
        }
        Err(reason) => {
            let mut body = json!({ "status": "not_ready", "reason": reason });
            if let Some(problem) = appid.configuration_problem() {
                body["configuration_error"] = json!(problem);
            }
            (Status::ServiceUnavailable, Json(body))
        }
    }
}

/// Who may read `/metrics`: nobody unless `appid.metrics` is on; then anyone on the
/// network, or only holders of `APPID_METRICS_TOKEN` when it is set.
pub struct MetricsAccess;

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for MetricsAccess {
    type Error = ();

    async fn from_request(request: &'r rocket::Request<'_>) -> rocket::request::Outcome<Self, ()> {
        use rocket::request::Outcome;
        use subtle::ConstantTimeEq;
        let Some(config) = request.rocket().state::<AppId>().map(|a| a.config()) else {
            return Outcome::Error((Status::NotFound, ()));
        };
        if !config.metrics {
            return Outcome::Error((Status::NotFound, ()));
        }
        let Some(token) = &config.metrics_token else { return Outcome::Success(MetricsAccess) };
        let sent =
            request.headers().get_one("Authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        if bool::from(sent.as_bytes().ct_eq(token.expose().as_bytes())) {
            Outcome::Success(MetricsAccess)
        } else {
            // 403, not 401: a 401 would send the scraper to the login page.
            Outcome::Error((Status::Forbidden, ()))
        }
    }
}

impl crate::auth::Guarded for MetricsAccess {
    fn requirement() -> String {
        "metrics token (when configured)".to_string()
    }
}

/// Prometheus metrics (see `crate::metrics`).
#[rocket::get("/metrics")]
pub fn metrics(_access: MetricsAccess, metrics: &State<Metrics>) -> (rocket::http::ContentType, String) {
    let text = rocket::http::ContentType::parse_flexible(crate::metrics::CONTENT_TYPE)
        .unwrap_or(rocket::http::ContentType::Plain);
    (text, metrics.render())
}
