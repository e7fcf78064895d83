//! Request guards: Basic client credentials, Bearer tokens, and a lenient body parser that
//! accepts form, multipart and JSON bodies alike.
//!
//! All guards succeed and report problems as data: a failing guard would make Rocket log its
//! error value, and these values can contain secrets.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rocket::data::{Data, FromData, Outcome as DataOutcome, ToByteUnit as _};
use rocket::form::Form;
use rocket::request::{FromRequest, Outcome, Request};
use serde::Deserialize;

/// `Authorization: Basic base64(id:secret)` if present and decodable.
pub(crate) struct BasicAuth(pub Option<(String, String)>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BasicAuth {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let creds = req
            .headers()
            .get_one("Authorization")
            .and_then(|v| strip_scheme(v, "Basic"))
            .and_then(|b64| STANDARD.decode(b64.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.split_once(':').map(|(id, secret)| (id.to_owned(), secret.to_owned())));
        Outcome::Success(BasicAuth(creds))
    }
}

/// `Authorization: Bearer <token>` if present.
pub(crate) struct Bearer(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let token = req
            .headers()
            .get_one("Authorization")
            .and_then(|v| strip_scheme(v, "Bearer"))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        Outcome::Success(Bearer(token))
    }
}

/// Auth schemes are case-insensitive (RFC 7235).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// Every body parameter any endpoint reads. Unknown fields are ignored; for repeated fields
/// the first value wins (Rocket's lenient form parsing).
#[derive(Debug, Default, Clone, rocket::FromForm, Deserialize)]
pub(crate) struct Params {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub token: Option<String>,
    pub apikey: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub login_hint: Option<String>,
}

/// A request body parsed into [`Params`], or `None` when it was unreadable.
pub(crate) struct Body(pub Option<Params>);

#[rocket::async_trait]
impl<'r> FromData<'r> for Body {
    type Error = std::convert::Infallible;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> DataOutcome<'r, Self> {
        let is_json = req.content_type().is_some_and(|ct| ct.is_json());
        if is_json {
            let parsed = match data.open(1.mebibytes()).into_bytes().await {
                Ok(bytes) if bytes.is_complete() => serde_json::from_slice(&bytes).ok(),
                _ => None,
            };
            return DataOutcome::Success(Body(parsed));
        }
        // Form<T> handles both application/x-www-form-urlencoded and multipart/form-data.
        match Form::<Params>::from_data(req, data).await {
            DataOutcome::Success(form) => DataOutcome::Success(Body(Some(form.into_inner()))),
            _ => DataOutcome::Success(Body(None)),
        }
    }
}
