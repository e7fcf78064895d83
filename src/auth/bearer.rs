//! `Bearer<R>`: the guard of API routes. The caller sends an App ID access token in
//! `Authorization: Bearer …` (RFC 6750 §2.1); it is verified locally like a session's
//! (signature, issuer, audience contains our client id or a trusted audience, tenant,
//! expiry), then introspected by policy and its subject's roles read, exactly as for a
//! browser session. App ID's client SDKs send the id_token after the access token
//! (`Bearer <access_token> <id_token>`, accepted by IBM's own API strategy): it is verified
//! too, must name the same user, and then names the caller.
//!
//! The session cookie is not accepted on these routes: an API that honoured the ambient
//! cookie could be driven by any page the user visits (CSRF), and API clients have no
//! cookie anyway. A browser script calling the API sends the token explicitly.
//!
//! Failures are answered by the catchers as JSON with `WWW-Authenticate: Bearer …`
//! (RFC 6750 §3), never with a redirect.

use std::marker::PhantomData;

use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};

use super::guard::{grant, verified_claims, AuthError, AuthorizedUser, Decision, Viewer};
use super::require::{insufficient, refuse, AnyRole, Requirement};
use crate::appid::{AppId, VerifyError};

/// An API caller whose bearer token belongs to a user with at least one role who also
/// meets `R`. Dereferences to the [`AuthorizedUser`] (`name` and `email` come from the
/// id_token when the caller sent one; an access token does not carry them).
pub struct Bearer<R: Requirement = AnyRole> {
    user: AuthorizedUser,
    requirement: PhantomData<fn() -> R>,
}

impl<R: Requirement> Bearer<R> {
    /// The user, without the proof of `R`.
    pub fn into_inner(self) -> AuthorizedUser {
        self.user
    }
}

impl<R: Requirement> std::ops::Deref for Bearer<R> {
    type Target = AuthorizedUser;

    fn deref(&self) -> &AuthorizedUser {
        &self.user
    }
}

/// Marks a request that reached an API route (a route with a [`Bearer`] guard): the
/// catchers answer it as an API, whatever its `Accept` says.
pub(crate) struct ApiRoute(pub(crate) bool);

/// The bearer decision, computed once per request.
struct BearerDecision(Decision);

/// The tokens of a well-formed bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BearerTokens<'r> {
    pub(crate) access: &'r str,
    /// The id_token App ID's client SDKs send after the access token, one space apart.
    pub(crate) id: Option<&'r str>,
}

/// The tokens of a well-formed `Authorization: Bearer <b64token> [<b64token>]` header
/// (RFC 6750 §2.1: the scheme is case-insensitive; a token is `1*( ALPHA / DIGIT / "-" /
/// "." / "_" / "~" / "+" / "/" ) *"="`; the optional second one is App ID's id_token).
/// `Err` for a malformed header, `Ok(None)` when there is no bearer credential at all (no
/// header, or another scheme).
pub(crate) fn bearer_token<'r>(request: &'r Request<'_>) -> Result<Option<BearerTokens<'r>>, ()> {
    let mut values = request.headers().get("Authorization");
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(());
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let well_formed = |token: &str| {
        let body = token.trim_end_matches('=');
        !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    };
    let mut tokens = rest.trim_start_matches(' ').split(' ');
    match (tokens.next(), tokens.next(), tokens.next()) {
        (Some(access), id, None) if well_formed(access) && id.is_none_or(well_formed) => {
            Ok(Some(BearerTokens { access, id }))
        }
        _ => Err(()),
    }
}

async fn decide(request: &Request<'_>) -> Decision {
    let Some(appid) = request.rocket().state::<AppId>() else { return Err(AuthError::NotConfigured) };
    let tokens = match bearer_token(request) {
        Ok(Some(tokens)) => tokens,
        Ok(None) => return Err(AuthError::NotLoggedIn("no_token")),
        Err(()) => {
            tracing::info!(event = "bearer_refused", reason = "malformed_header");
            return Err(AuthError::MalformedCredentials);
        }
    };
    let key = crate::appid::token_key(tokens.access);
    let claims = verified_claims(appid, tokens.access, key, "bearer_refused").await?;
    let viewer = match tokens.id {
        Some(id_token) => caller(appid, id_token, &claims.sub).await?,
        None => Viewer { name: None, email: None },
    };
    grant(appid, tokens.access, key, &claims, viewer, claims.exp).await
}

/// Who the id_token an API caller sent names, once it has verified for the access token's
/// subject `sub`; a refusal as for a bad access token otherwise.
async fn caller(appid: &AppId, id_token: &str, sub: &str) -> Result<Viewer, AuthError> {
    match appid.verify_api_id_token(id_token, sub).await {
        Ok(id) => Ok(Viewer { name: id.name.clone(), email: id.email.clone() }),
        Err(VerifyError::Token(error)) => {
            tracing::info!(event = "bearer_refused", token = "id_token", reason = error.reason());
            Err(AuthError::NotLoggedIn(error.reason()))
        }
        Err(VerifyError::Provider(error)) => Err(AuthError::Unavailable(error)),
    }
}

#[rocket::async_trait]
impl<'r, R: Requirement> FromRequest<'r> for Bearer<R> {
    type Error = AuthError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, AuthError> {
        request.local_cache(|| ApiRoute(true));
        let decision = &request.local_cache_async(async { BearerDecision(decide(request).await) }).await.0;
        let error = match decision {
            Ok(user) if R::allows(user) => {
                return Outcome::Success(Bearer { user: user.clone(), requirement: PhantomData })
            }
            Ok(user) => insufficient::<R>(user),
            Err(error) => error.clone(),
        };
        refuse(request, error.clone());
        Outcome::Error((error.status(), error))
    }
}

impl<R: Requirement> Sentinel for Bearer<R> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        rocket.state::<AppId>().is_none()
    }
}
