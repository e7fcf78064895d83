//! The management API's tenant configuration reads that an app's `doctor` checks:
//! `GET /config/redirect_uris` and `GET /config/tokens`, in App ID's documented shapes.

use rocket::http::Status;
use rocket::State;
use serde_json::json;

use crate::guards::Bearer;
use crate::reply::Reply;
use crate::routes::iam::check_management;
use crate::state::{Emulator, Endpoint};

/// App ID's default lifetime of anonymous tokens (its token configuration lists them).
const ANONYMOUS_TTL: u64 = 2_592_000;

/// `GET /management/v4/{tenant}/config/redirect_uris`: `{"redirectUris": [...]}`, the
/// allow-list `/authorization` checks (empty when any loopback URL is accepted).
#[rocket::get("/management/v4/<tenant>/config/redirect_uris")]
pub(crate) fn redirect_uris(emu: &State<Emulator>, tenant: &str, bearer: Bearer) -> Reply {
    emu.count(Endpoint::ManagementRoles);
    if let Err(reply) = check_management(emu, tenant, &bearer) {
        return reply;
    }
    Reply::json(Status::Ok, &json!({ "redirectUris": emu.config().redirect_uris }))
}

/// `GET /management/v4/{tenant}/config/tokens`: lifetimes, whether refresh tokens are on,
/// and the custom claims; a `{"source": "roles"}` mapping when tokens carry role names.
#[rocket::get("/management/v4/<tenant>/config/tokens")]
pub(crate) fn tokens(emu: &State<Emulator>, tenant: &str, bearer: Bearer) -> Reply {
    emu.count(Endpoint::ManagementRoles);
    if let Err(reply) = check_management(emu, tenant, &bearer) {
        return reply;
    }
    let claims = if emu.config().roles_claim { vec![json!({"source": "roles"})] } else { Vec::new() };
    Reply::json(
        Status::Ok,
        &json!({
            "access": {"expires_in": emu.access_token_ttl()},
            "refresh": {"enabled": emu.refresh_tokens(), "expires_in": emu.refresh_token_ttl()},
            "anonymousAccess": {"enabled": true, "expires_in": ANONYMOUS_TTL},
            "accessTokenClaims": claims,
            "idTokenClaims": claims,
        }),
    )
}
