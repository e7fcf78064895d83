//! The provider's UserInfo endpoint (OIDC Core §5.3): asked at login for the name and
//! e-mail address an id_token does not carry.

use serde::Deserialize;
use url::Url;

use super::error::ProviderError;
use super::http::{Auth, Http};
use crate::secret::AccessToken;

/// The members of a UserInfo answer the app shows.
#[derive(Debug, Deserialize)]
pub struct Profile {
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// The profile at `url`, asked with the access token in the `Authorization` header (RFC
/// 6750 §2.1; never in the query, where it would reach logs).
pub async fn profile(http: &Http, url: &Url, access_token: &AccessToken) -> Result<Profile, ProviderError> {
    http.get_json("userinfo", url.as_str(), Auth::Bearer(access_token.secret())).await
}
