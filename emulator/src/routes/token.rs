//! `POST /oauth/v4/{tenant}/token`: authorization_code (with PKCE), refresh_token and
//! client_credentials grants, with RFC 6749 error answers (`invalid_grant` with 400, or
//! 401 when configured, as IBM's SDK mocks answer).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rocket::http::Status;
use rocket::State;
use sha2::{Digest as _, Sha256};

use crate::guards::{BasicAuth, Body, Params};
use crate::reply::Reply;
use crate::routes::{authenticate_client, tenant_ok};
use crate::state::{Emulator, Endpoint};
use crate::tokens::{self, Issued};
use crate::util;

/// The token endpoint.
#[rocket::post("/oauth/v4/<tenant>/token", data = "<body>")]
pub(crate) fn token(emu: &State<Emulator>, tenant: &str, auth: BasicAuth, body: Body) -> Reply {
    emu.count(Endpoint::Token);
    if !tenant_ok(emu, tenant) {
        return Reply::not_found();
    }
    let client_id = match authenticate_client(emu, &auth) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let Some(p) = body.0 else {
        return bad_request("invalid_request", "The request body could not be parsed");
    };
    if p.client_id.as_deref().is_some_and(|id| id != client_id) {
        return bad_request("invalid_request", "client_id does not match the credentials");
    }
    let issued = match p.grant_type.as_deref() {
        Some("authorization_code") => code_grant(emu, &client_id, &p),
        Some("refresh_token") => refresh_grant(emu, &client_id, &p),
        Some("client_credentials") => Ok(tokens::issue_for_client(emu, &client_id)),
        Some(_) => {
            Err(bad_request("unsupported_grant_type", "This grant type is not supported by the emulator"))
        }
        None => Err(bad_request("invalid_request", "grant_type is required")),
    };
    match issued {
        Ok(issued) => Reply::json(Status::Ok, &issued.to_json()).no_store(),
        Err(reply) => reply,
    }
}

fn bad_request(error: &str, description: &str) -> Reply {
    Reply::oauth_error(Status::BadRequest, error, description)
}

/// A refused code or refresh token, with the configured status (400, or 401 as in IBM's
/// SDK mocks).
fn invalid_grant(emu: &Emulator, description: &str) -> Reply {
    let status = Status::from_code(emu.config().invalid_grant_status).unwrap_or(Status::BadRequest);
    Reply::oauth_error(status, "invalid_grant", description)
}

fn code_grant(emu: &Emulator, client_id: &str, p: &Params) -> Result<Issued, Reply> {
    let code = p.code.as_deref().ok_or_else(|| bad_request("invalid_request", "code is required"))?;
    let redirect_uri = p
        .redirect_uri
        .as_deref()
        .ok_or_else(|| bad_request("invalid_request", "redirect_uri is required"))?;
    // Any redemption attempt burns the code (RFC 6749 4.1.2), so a wrong verifier cannot be
    // retried against the same code.
    let grant = emu
        .store()
        .codes
        .remove(code)
        .ok_or_else(|| invalid_grant(emu, "The authorization code is invalid or was already used"))?;
    if grant.expires_at <= util::unix_now() {
        return Err(invalid_grant(emu, "The authorization code has expired"));
    }
    if grant.client_id != client_id {
        return Err(invalid_grant(emu, "The authorization code was issued to another client"));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(invalid_grant(emu, "redirect_uri does not match the authorization request"));
    }
    match (&grant.code_challenge, p.code_verifier.as_deref()) {
        (None, None) => {}
        (None, Some(_)) => {
            return Err(invalid_grant(emu, "code_verifier sent but no code_challenge was registered"))
        }
        (Some(_), None) => return Err(invalid_grant(emu, "code_verifier is required")),
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let well_formed = super::authorize::is_pkce_value(verifier);
            if !well_formed || !util::ct_eq(&computed, challenge) {
                return Err(invalid_grant(emu, "PKCE verification failed"));
            }
        }
    }
    Ok(tokens::issue_for_user(emu, &grant.user, client_id, grant.nonce.as_deref()))
}

fn refresh_grant(emu: &Emulator, client_id: &str, p: &Params) -> Result<Issued, Reply> {
    if !emu.refresh_tokens() {
        return Err(bad_request("unauthorized_client", "Refresh tokens are not enabled for this tenant"));
    }
    let presented = p
        .refresh_token
        .as_deref()
        .ok_or_else(|| bad_request("invalid_request", "refresh_token is required"))?;
    // Rotation: a new refresh token on every use. By default the presented one is consumed
    // whether or not the rest succeeds; with `refresh_token_reuse`, or without rotation,
    // it stays valid.
    let rotation = emu.config().refresh_token_rotation;
    let grant = {
        let mut store = emu.store();
        if emu.refresh_token_reuse() || !rotation {
            store.refresh.get(presented).cloned()
        } else {
            store.refresh.remove(presented)
        }
    }
    .ok_or_else(|| invalid_grant(emu, "The refresh token is invalid, revoked or already used"))?;
    if grant.expires_at <= emu.now() || grant.client_id != client_id {
        return Err(invalid_grant(emu, "The refresh token is invalid or expired"));
    }
    let user = emu.user_by_sub(&grant.sub).ok_or_else(|| invalid_grant(emu, "The user no longer exists"))?;
    let mut issued = tokens::issue_for_user(emu, &user, client_id, None);
    if !rotation {
        // The client keeps the token it presented: none is sent, none is kept.
        if let Some(unsent) = issued.refresh_token.take() {
            emu.store().refresh.remove(&unsent);
        }
    }
    Ok(issued)
}
