//! The emulator's HTTP surface: route list, shared checks, the home page and fallbacks.

use rocket::http::Status;
use rocket::{Catcher, Request, Route, State};
use serde_json::json;

use crate::guards::BasicAuth;
use crate::reply::Reply;
use crate::state::{Emulator, Endpoint};
use crate::util::{self, escape_html as esc};

mod authorize;
mod iam;
mod login_page;
mod mgmt_config;
mod oidc;
mod token;

/// Every route the emulator serves.
pub(crate) fn routes() -> Vec<Route> {
    rocket::routes![
        home,
        call_counts,
        oidc::discovery,
        authorize::authorize_page,
        authorize::authorize_submit,
        token::token,
        oidc::public_keys,
        oidc::introspect,
        oidc::userinfo,
        oidc::revoke,
        oidc::sso_logout,
        oidc::end_session,
        iam::iam_token,
        iam::user_roles,
        iam::roles,
        mgmt_config::redirect_uris,
        mgmt_config::tokens,
        fallback_get,
        fallback_post,
    ]
}

/// Catchers that answer without echoing anything from the request.
pub(crate) fn catchers() -> Vec<Catcher> {
    rocket::catchers![default_catcher]
}

/// Whether the path's tenant is ours.
pub(crate) fn tenant_ok(emu: &Emulator, tenant: &str) -> bool {
    tenant == emu.config().tenant_id
}

/// Checks HTTP Basic client credentials; on failure answers 401 `invalid_client`.
pub(crate) fn authenticate_client(emu: &Emulator, auth: &BasicAuth) -> Result<String, Reply> {
    let cfg = emu.config();
    match &auth.0 {
        Some((id, secret)) if id == &cfg.client_id && util::ct_eq(secret, &cfg.client_secret) => {
            Ok(id.clone())
        }
        _ => Err(Reply::json(
            Status::Unauthorized,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        )
        .header("WWW-Authenticate", "Basic realm=\"appid-emulator\"")
        .no_store()),
    }
}

/// `GET /_emulator/calls`: how many requests each endpoint received (for benchmarks that
/// count provider calls from outside the process). Not part of App ID's API.
#[rocket::get("/_emulator/calls")]
fn call_counts(emu: &State<Emulator>) -> Reply {
    let counts: serde_json::Map<String, serde_json::Value> =
        Endpoint::ALL.iter().map(|e| (format!("{e:?}"), json!(emu.calls(*e)))).collect();
    Reply::json(Status::Ok, &json!({ "total": emu.total_calls(), "endpoints": counts }))
}

/// `GET /`: what this server is and how to point an app at it.
#[rocket::get("/")]
fn home(emu: &State<Emulator>) -> Reply {
    let mut users = String::new();
    for u in emu.users() {
        users.push_str(&format!(
            "<li>{} &lt;{}&gt; - roles: {}</li>",
            esc(&u.name),
            esc(&u.email),
            esc(&if u.roles.is_empty() { "none".to_owned() } else { u.roles.join(", ") })
        ));
    }
    let body = format!(
        "<p>This server emulates IBM Cloud App ID (OAuth/OIDC, IAM token, management roles) \
         for local development and tests.</p>\
         <p>oAuthServerUrl: <code>{}</code><br>Client id: <code>{}</code></p>\
         <h2>Test users</h2><ul>{users}</ul>",
        esc(&emu.oauth_server_url()),
        esc(&emu.config().client_id)
    );
    Reply::html(Status::Ok, login_page::page("App ID emulator", &body))
}

// Catch-alls keep Rocket from logging "No matching routes for <uri>", which would print
// query strings (codes, tokens) to the host's log.
#[rocket::get("/<_..>", rank = 100)]
fn fallback_get() -> Reply {
    Reply::not_found()
}

#[rocket::post("/<_..>", rank = 100)]
fn fallback_post() -> Reply {
    Reply::not_found()
}

#[rocket::catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> Reply {
    Reply::text(status, status.reason().unwrap_or("Error"))
}
