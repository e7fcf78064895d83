//! `GET|POST /oauth/v4/{tenant}/authorization`: validates the request, shows the login page
//! and, once a user is picked, redirects back with a single-use authorization code.

use rocket::http::{CookieJar, Status};
use rocket::State;

use crate::config::TestUser;
use crate::guards::{Body, Params};
use crate::reply::Reply;
use crate::routes::{login_page, tenant_ok};
use crate::state::{AuthCode, Emulator, Endpoint};
use crate::util;

/// Authorization codes live this long (host clock).
const CODE_TTL_SECS: i64 = 600;

/// Name of the emulated Cloud Directory single sign-on cookie.
pub(crate) const SSO_COOKIE: &str = "appid_emulator_sso";

/// Shows the login page for a valid authorization request, or, with a live single sign-on
/// session (`sso` on), signs its user in again without asking.
#[rocket::get("/oauth/v4/<tenant>/authorization?<params..>")]
pub(crate) fn authorize_page(
    emu: &State<Emulator>,
    tenant: &str,
    params: Params,
    cookies: &CookieJar<'_>,
) -> Reply {
    emu.count(Endpoint::Authorization);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let redirect_uri = match validate(emu, &params) {
        Ok(uri) => uri,
        Err(reply) => return reply,
    };
    if emu.config().sso {
        let sso_user = cookies.get(SSO_COOKIE).and_then(|c| {
            let sub = emu.store().sso_sessions.get(c.value()).cloned()?;
            emu.user_by_sub(&sub)
        });
        if let Some(user) = sso_user {
            return issue_code(emu, &params, redirect_uri, user);
        }
    }
    login_page::render(emu, &params, &redirect_uri)
}

/// Signs in the user named by `login_hint` and redirects back with a code.
#[rocket::post("/oauth/v4/<tenant>/authorization", data = "<params>")]
pub(crate) fn authorize_submit(emu: &State<Emulator>, tenant: &str, params: Body) -> Reply {
    emu.count(Endpoint::Authorization);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let Some(params) = params.0 else {
        return login_page::error_page(Status::BadRequest, "The sign-in form could not be read.");
    };
    let redirect_uri = match validate(emu, &params) {
        Ok(uri) => uri,
        Err(reply) => return reply,
    };
    let email = params.login_hint.as_deref().unwrap_or("").trim();
    if !util::is_plausible_email(email) {
        return login_page::error_page(Status::BadRequest, "Enter a valid e-mail address.");
    }
    let user = emu.user_for_login(email);
    let sso_cookie = if emu.config().sso {
        // A new single sign-on session for this browser (path-scoped to the tenant).
        let session = util::random_token(32);
        {
            let mut store = emu.store();
            // A development server: a bound is enough, no expiry bookkeeping.
            if store.sso_sessions.len() >= 10_000 {
                store.sso_sessions.clear();
            }
            store.sso_sessions.insert(session.clone(), user.sub.clone());
        }
        let cookie = format!(
            "{SSO_COOKIE}={session}; Path=/oauth/v4/{}; HttpOnly; SameSite=Lax",
            emu.config().tenant_id
        );
        Some(cookie)
    } else {
        None
    };
    let answer = issue_code(emu, &params, redirect_uri, user);
    match sso_cookie {
        Some(cookie) => answer.header("Set-Cookie", cookie),
        None => answer,
    }
}

/// Stores a single-use code for `user` and redirects back to the app with it.
fn issue_code(emu: &Emulator, params: &Params, redirect_uri: String, user: TestUser) -> Reply {
    let code = util::random_token(32);
    let now = util::unix_now();
    {
        let mut store = emu.store();
        // Expired codes are dropped here so the map stays small in long-running emulators.
        store.codes.retain(|_, c| c.expires_at > now);
        store.codes.insert(
            code.clone(),
            AuthCode {
                client_id: emu.config().client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                nonce: params.nonce.clone(),
                code_challenge: params.code_challenge.clone(),
                user,
                expires_at: now + CODE_TTL_SECS,
            },
        );
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = params.state.as_deref() {
        pairs.push(("state", state));
    }
    Reply::found(with_query(&redirect_uri, &pairs))
}

/// Checks client, redirect URI, response type and PKCE parameters. Returns the redirect URI,
/// or the reply to send: a 400 page when the client or redirect URI cannot be trusted
/// (never redirect there), an error redirect otherwise.
fn validate(emu: &Emulator, p: &Params) -> Result<String, Reply> {
    let cfg = emu.config();
    if p.client_id.as_deref() != Some(cfg.client_id.as_str()) {
        return Err(login_page::error_page(Status::BadRequest, "Unknown or missing client_id."));
    }
    let redirect_uri = match p.redirect_uri.as_deref() {
        Some(uri) if redirect_allowed(emu, uri) => uri.to_owned(),
        _ => {
            return Err(login_page::error_page(
                Status::BadRequest,
                "The redirect_uri is missing or not registered for this application.",
            ))
        }
    };
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(state) = p.state.as_deref() {
            pairs.push(("state", state));
        }
        Err(Reply::found(with_query(&redirect_uri, &pairs)))
    };
    if p.response_type.as_deref() != Some("code") {
        return fail("unsupported_response_type", "Only response_type=code is supported");
    }
    match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        (None, None) => {}
        (Some(challenge), Some("S256")) if is_pkce_value(challenge) => {}
        (Some(_), Some("S256")) => return fail("invalid_request", "Malformed code_challenge"),
        // An absent method means "plain" (RFC 7636 4.3), which is not supported.
        (_, _) => return fail("invalid_request", "code_challenge_method must be S256"),
    }
    Ok(redirect_uri)
}

/// The redirect URI rule: exact match against the allow-list, or, with an empty list, any
/// http/https URL on a loopback host. Fragments are never allowed (RFC 6749 3.1.2).
pub(crate) fn redirect_allowed(emu: &Emulator, uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let allowed = &emu.config().redirect_uris;
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a == uri);
    }
    url.username().is_empty()
        && url.password().is_none()
        && matches!(url.host_str(), Some("127.0.0.1") | Some("localhost") | Some("[::1]"))
}

/// RFC 7636 4.1/4.2: 43-128 unreserved characters.
pub(crate) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Appends query pairs to `uri`, keeping any query it already has.
pub(crate) fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs.iter().copied());
            url.to_string()
        }
        // Only validated URIs reach here; fall back to the bare URI rather than panic.
        Err(_) => uri.to_owned(),
    }
}
