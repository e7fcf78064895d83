//! The IAM API-key token endpoint and App ID management role lookups guarded by IAM tokens.

use rocket::http::Status;
use rocket::State;
use serde_json::{json, Value};

use crate::config::role_id;
use crate::guards::{Bearer, Body};
use crate::reply::Reply;
use crate::routes::tenant_ok;
use crate::state::{Emulator, Endpoint};
use crate::util;

const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";
const IAM_TTL: i64 = 3600;

/// `POST /identity/token`: exchanges the configured API key for an opaque IAM access token.
#[rocket::post("/identity/token", data = "<body>")]
pub(crate) fn iam_token(emu: &State<Emulator>, body: Body) -> Reply {
    emu.count(Endpoint::IamToken);
    let p = body.0.unwrap_or_default();
    if p.grant_type.as_deref() != Some(APIKEY_GRANT) {
        return iam_error(emu, "BXNIM0103E", "Operation not supported. Grant type not supported");
    }
    let key_ok = p.apikey.as_deref().is_some_and(|k| util::ct_eq(k, &emu.config().api_key));
    if !key_ok {
        return iam_error(emu, "BXNIM0415E", "Provided API key could not be found");
    }
    let token = util::random_token(48);
    let expiration = emu.now() + IAM_TTL;
    {
        let mut store = emu.store();
        let now = emu.now();
        store.iam_tokens.retain(|_, exp| *exp > now);
        store.iam_tokens.insert(util::fingerprint(&token), expiration);
    }
    Reply::json(
        Status::Ok,
        &json!({
            "access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
            "expires_in": IAM_TTL, "expiration": expiration, "scope": "ibm openid",
        }),
    )
    .no_store()
}

fn iam_error(emu: &Emulator, code: &str, message: &str) -> Reply {
    Reply::json(
        Status::BadRequest,
        &json!({
            "errorCode": code, "errorMessage": message,
            "context": {"requestId": util::random_token(12), "url": emu.base_url()},
        }),
    )
}

/// `GET /management/v4/{tenant}/users/{sub}/roles`.
#[rocket::get("/management/v4/<tenant>/users/<sub>/roles")]
pub(crate) fn user_roles(emu: &State<Emulator>, tenant: &str, sub: &str, bearer: Bearer) -> Reply {
    emu.count(Endpoint::ManagementRoles);
    if let Err(reply) = check_management(emu, tenant, &bearer) {
        return reply;
    }
    let Some(user) = emu.user_by_sub(sub) else {
        return Reply::json(
            Status::NotFound,
            &json!({"errorCode": "NOT_FOUND", "message": "User not found"}),
        );
    };
    let roles: Vec<Value> =
        user.roles.iter().map(|name| json!({"id": role_id(name), "name": name})).collect();
    Reply::json(Status::Ok, &json!({ "roles": roles }))
}

/// `GET /management/v4/{tenant}/roles`: the tenant's roles with their scopes and the
/// application each one's access is for.
#[rocket::get("/management/v4/<tenant>/roles")]
pub(crate) fn roles(emu: &State<Emulator>, tenant: &str, bearer: Bearer) -> Reply {
    emu.count(Endpoint::ManagementRoles);
    if let Err(reply) = check_management(emu, tenant, &bearer) {
        return reply;
    }
    let client_id = &emu.config().client_id;
    let roles: Vec<Value> = emu
        .config()
        .roles
        .iter()
        .map(|r| {
            json!({
                "id": r.id(), "name": r.name, "description": format!("{} role", r.name),
                "access": [{"application_id": r.application_id.as_ref().unwrap_or(client_id), "scopes": r.scopes}],
            })
        })
        .collect();
    Reply::json(Status::Ok, &json!({ "roles": roles }))
}

/// Unknown tenant -> 404 first (App ID answers that before auth), then a live IAM token,
/// then the API key's identity must hold the Reader role (else 403).
pub(crate) fn check_management(emu: &Emulator, tenant: &str, bearer: &Bearer) -> Result<(), Reply> {
    if !tenant_ok(emu, tenant) {
        return Err(Reply::not_found());
    }
    let now = emu.now();
    let valid = bearer
        .0
        .as_deref()
        .is_some_and(|t| emu.store().iam_tokens.get(&util::fingerprint(t)).is_some_and(|exp| *exp > now));
    if valid && !emu.config().api_key_reader {
        // App ID's 403 body is not documented; this follows its other error bodies.
        Err(Reply::json(Status::Forbidden, &json!({"errorCode": "FORBIDDEN", "message": "Forbidden"})))
    } else if valid {
        Ok(())
    } else {
        Err(Reply::json(
            Status::Unauthorized,
            &json!({"errorCode": "INVALID_TOKEN", "message": "Unauthorized", "error": "unauthorized"}),
        ))
    }
}
