//! The provider's OpenID discovery document, checked and turned into the endpoints we use.

use serde::Deserialize;
use url::Url;

use super::error::ProviderError;
use crate::config::AppIdConfig;

/// The members of `/.well-known/openid-configuration` we read (unknown ones are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoveryDocument {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub management_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

/// The endpoints we call, all checked to belong to the configured provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub introspection_endpoint: Url,
    pub management_url: Url,
    /// The provider lists `S256` in `code_challenge_methods_supported`.
    pub pkce_s256: bool,
}

/// Where the discovery document lives.
pub fn discovery_url(config: &AppIdConfig) -> String {
    config.endpoint(".well-known/openid-configuration")
}

/// Checks a discovery document against the configuration.
///
/// The issuer must equal `oAuthServerUrl` exactly (OIDC Discovery §4.3), and every
/// endpoint must be on the provider's own origin: a document that points our client
/// secret or our trust in signing keys at another host is refused.
pub fn interpret(doc: DiscoveryDocument, config: &AppIdConfig) -> Result<ProviderMetadata, ProviderError> {
    if doc.issuer != config.issuer() {
        return Err(ProviderError::Untrusted("issuer does not match APPID_OAUTH_SERVER_URL"));
    }
    let base = Url::parse(config.issuer()).map_err(|_| ProviderError::Untrusted("bad issuer URL"))?;
    let same_origin = |value: &str| -> Result<Url, ProviderError> {
        let url = Url::parse(value).map_err(|_| ProviderError::Untrusted("endpoint is not a URL"))?;
        if url.origin() != base.origin() {
            return Err(ProviderError::Untrusted("endpoint on another origin"));
        }
        Ok(url)
    };
    let introspection = match doc.introspection_endpoint.as_deref() {
        Some(value) => same_origin(value)?,
        // App ID does not list it; the path is documented under oAuthServerUrl.
        None => same_origin(&config.endpoint("introspect"))?,
    };
    let management_url = match (&config.management_url, doc.management_endpoint.as_deref()) {
        (Some(configured), _) => configured.clone(),
        (None, Some(listed)) => same_origin(listed)?,
        (None, None) => {
            derive_management_url(&base).ok_or(ProviderError::Untrusted("no management endpoint"))?
        }
    };
    Ok(ProviderMetadata {
        authorization_endpoint: same_origin(&doc.authorization_endpoint)?,
        token_endpoint: same_origin(&doc.token_endpoint)?,
        jwks_uri: same_origin(&doc.jwks_uri)?,
        introspection_endpoint: introspection,
        management_url,
        pkce_s256: doc.code_challenge_methods_supported.iter().any(|m| m == "S256"),
    })
}

/// `…/oauth/v4/{tenant}` → `…/management/v4/{tenant}`: only that path segment changes
/// (a blind string replace would also rewrite host names such as `appid-oauth.…`).
pub fn derive_management_url(oauth_server_url: &Url) -> Option<Url> {
    let segments: Vec<&str> = oauth_server_url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let [prefix @ .., "oauth", "v4", tenant] = segments.as_slice() else {
        return None;
    };
    let mut url = oauth_server_url.clone();
    {
        let mut path = url.path_segments_mut().ok()?;
        path.clear();
        path.extend(prefix.iter().copied());
        path.extend(["management", "v4", tenant]);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_management_url_replaces_only_the_oauth_path_segment() {
        let url = Url::parse("https://eu-gb.appid-oauth.cloud.ibm.com/oauth/v4/t-1").unwrap();
        assert_eq!(
            derive_management_url(&url).unwrap().as_str(),
            "https://eu-gb.appid-oauth.cloud.ibm.com/management/v4/t-1"
        );
        let other = Url::parse("https://example.com/somewhere/else").unwrap();
        assert!(derive_management_url(&other).is_none());
    }
}
