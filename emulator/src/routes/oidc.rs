//! Discovery, JWKS, introspection, userinfo, revocation and Cloud Directory SSO logout.

use rocket::http::{CookieJar, Status};
use rocket::State;
use serde_json::json;

use crate::guards::{BasicAuth, Bearer, Body};
use crate::reply::Reply;
use crate::routes::authorize::{redirect_allowed, SSO_COOKIE};
use crate::routes::{authenticate_client, login_page, tenant_ok};
use crate::state::{Emulator, Endpoint};
use crate::tokens;

/// The OpenID Provider configuration, shaped like App ID's documented document.
#[rocket::get("/oauth/v4/<tenant>/.well-known/openid-configuration")]
pub(crate) fn discovery(emu: &State<Emulator>, tenant: &str) -> Reply {
    emu.count(Endpoint::Discovery);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let oauth = emu.oauth_server_url();
    let base = emu.base_url();
    let mut doc = json!({
        "issuer": oauth,
        "authorization_endpoint": format!("{oauth}/authorization"),
        "token_endpoint": format!("{oauth}/token"),
        "jwks_uri": format!("{oauth}/publickeys"),
        "userinfo_endpoint": format!("{oauth}/userinfo"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid"],
        "response_types_supported": ["code"],
        "claims_supported": ["iss","aud","exp","tenant","iat","sub","nonce","amr","oauth_client"],
        "grant_types_supported": ["authorization_code","password","refresh_token",
            "client_credentials","urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "profiles_endpoint": base,
        "management_endpoint": emu.management_url(),
        "service_documentation": "https://cloud.ibm.com/docs/appid?topic=appid-getting-started",
    });
    if emu.config().pkce_advertised {
        doc["code_challenge_methods_supported"] = json!(["S256"]);
    }
    if emu.config().introspection_listed {
        doc["introspection_endpoint"] = json!(format!("{oauth}/introspect"));
        doc["revocation_endpoint"] = json!(format!("{oauth}/revoke"));
    }
    if emu.config().end_session_endpoint {
        doc["end_session_endpoint"] = json!(format!("{oauth}/end_session"));
    }
    Reply::json(Status::Ok, &doc)
}

/// The JWKS: the current signing key (and the previous one during a rotation overlap).
#[rocket::get("/oauth/v4/<tenant>/publickeys")]
pub(crate) fn public_keys(emu: &State<Emulator>, tenant: &str) -> Reply {
    emu.count(Endpoint::PublicKeys);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let keys: Vec<serde_json::Value> = emu.published_keys().iter().map(|k| k.jwk()).collect();
    Reply::json(Status::Ok, &json!({ "keys": keys }))
}

/// RFC 7662 introspection, answering only `active` as App ID does.
#[rocket::post("/oauth/v4/<tenant>/introspect", data = "<body>")]
pub(crate) fn introspect(emu: &State<Emulator>, tenant: &str, auth: BasicAuth, body: Body) -> Reply {
    emu.count(Endpoint::Introspect);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    if let Err(reply) = authenticate_client(emu, &auth) {
        return reply;
    }
    let Some(token) = body.0.and_then(|p| p.token) else {
        return Reply::oauth_error(Status::BadRequest, "invalid_request", "token is required");
    };
    let active = tokens::active_claims(emu, &token).is_some();
    Reply::json(Status::Ok, &json!({ "active": active })).no_store()
}

/// The signed-in user's profile for a valid access token. App ID's SDKs may send
/// `Bearer <access_token> <id_token>`: the id_token, when present, must be valid and name
/// the same user.
#[rocket::get("/oauth/v4/<tenant>/userinfo")]
pub(crate) fn userinfo(emu: &State<Emulator>, tenant: &str, bearer: Bearer) -> Reply {
    emu.count(Endpoint::UserInfo);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let parts: Vec<&str> = bearer.0.as_deref().unwrap_or("").split_ascii_whitespace().collect();
    let (access, id) = match parts.as_slice() {
        [access] => (Some(*access), None),
        [access, id] => (Some(*access), Some(*id)),
        _ => (None, None),
    };
    let user = access
        .and_then(|t| tokens::active_claims(emu, t))
        // Only access tokens (they carry `scope`) grant access to the profile.
        .filter(|claims| claims.contains_key("scope"))
        .filter(|claims| match id.map(|t| tokens::active_claims(emu, t)) {
            None => true,
            Some(Some(id)) => !id.contains_key("scope") && id.get("sub") == claims.get("sub"),
            Some(None) => false,
        })
        .and_then(|claims| emu.user_by_sub(claims.get("sub")?.as_str()?));
    let Some(user) = user else {
        return Reply::json(
            Status::Unauthorized,
            &json!({"error": "invalid_token", "error_description": "The access token is invalid"}),
        )
        .header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    };
    Reply::json(
        Status::Ok,
        &json!({
            "sub": user.sub, "name": user.name, "email": user.email,
            "given_name": user.given_name(), "family_name": user.family_name(),
            "identities": [{"provider": "cloud_directory", "id": user.identity_id()}],
        }),
    )
    .no_store()
}

/// RFC 7009 revocation of refresh tokens; unknown tokens also get 200 (RFC 7009 2.2).
#[rocket::post("/oauth/v4/<tenant>/revoke", data = "<body>")]
pub(crate) fn revoke(emu: &State<Emulator>, tenant: &str, auth: BasicAuth, body: Body) -> Reply {
    emu.count(Endpoint::Revoke);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let client_id = match authenticate_client(emu, &auth) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let Some(token) = body.0.and_then(|p| p.token) else {
        return Reply::oauth_error(Status::BadRequest, "invalid_request", "token is required");
    };
    let mut store = emu.store();
    if store.refresh.get(&token).is_some_and(|g| g.client_id == client_id) {
        store.refresh.remove(&token);
    }
    Reply::empty(Status::Ok)
}

/// Ends the emulated Cloud Directory SSO session of this browser (its cookie and the
/// session behind it) and returns to the app, if `redirect_uri` is registered for logout.
#[rocket::get("/oauth/v4/<tenant>/cloud_directory/sso/logout?<redirect_uri>&<client_id>")]
pub(crate) fn sso_logout(
    emu: &State<Emulator>,
    tenant: &str,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    cookies: &CookieJar<'_>,
) -> Reply {
    emu.count(Endpoint::SsoLogout);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    end_sso_session(emu, cookies, redirect_uri.as_deref(), client_id.as_deref())
}

/// OIDC RP-Initiated Logout (only routed usefully when `end_session_endpoint` is on; counted
/// as [`Endpoint::SsoLogout`]). `id_token_hint` is accepted and not required.
#[rocket::get("/oauth/v4/<tenant>/end_session?<post_logout_redirect_uri>&<client_id>")]
pub(crate) fn end_session(
    emu: &State<Emulator>,
    tenant: &str,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    cookies: &CookieJar<'_>,
) -> Reply {
    emu.count(Endpoint::SsoLogout);
    if !tenant_ok(emu, tenant) || !emu.config().end_session_endpoint {
        return Reply::not_found();
    }
    end_sso_session(emu, cookies, post_logout_redirect_uri.as_deref(), client_id.as_deref())
}

fn end_sso_session(
    emu: &Emulator,
    cookies: &CookieJar<'_>,
    redirect_uri: Option<&str>,
    client_id: Option<&str>,
) -> Reply {
    match (redirect_uri, client_id) {
        (Some(uri), Some(id)) if id == emu.config().client_id && logout_redirect_allowed(emu, uri) => {
            if let Some(cookie) = cookies.get(SSO_COOKIE) {
                emu.store().sso_sessions.remove(cookie.value());
            }
            let removal = format!(
                "{SSO_COOKIE}=; Path=/oauth/v4/{}; HttpOnly; SameSite=Lax; Max-Age=0",
                emu.config().tenant_id
            );
            Reply::found(uri.to_owned()).header("Set-Cookie", removal)
        }
        _ => login_page::error_page(
            Status::BadRequest,
            "Unknown client_id or redirect_uri not registered for logout.",
        ),
    }
}

/// The logout allow-list when one is configured, else the sign-in redirect rule.
fn logout_redirect_allowed(emu: &Emulator, uri: &str) -> bool {
    let allowed = &emu.config().logout_redirect_uris;
    if allowed.is_empty() {
        redirect_allowed(emu, uri)
    } else {
        allowed.iter().any(|a| a == uri)
    }
}
