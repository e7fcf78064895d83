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
    /// OIDC RP-Initiated Logout; App ID does not list one (its SSO logout is a fixed path).
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// RFC 7009; App ID does not list it (its `/revoke` path is documented).
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// How the token endpoint wants clients to authenticate (RFC 8414; absent means
    /// `client_secret_basic`).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9207: the provider adds `iss` to every authorization response. App ID does not
    /// list it today; if it ever does, a callback without `iss` is refused.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// The endpoints we call, all checked to belong to the configured provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    /// App ID: listed or `{oAuthServerUrl}/introspect`; `oidc`: only when listed.
    pub introspection_endpoint: Option<Url>,
    /// The UserInfo endpoint, when listed on the provider's origin (one elsewhere is not
    /// used: the access token goes to it).
    pub userinfo_endpoint: Option<Url>,
    /// App ID's management API; `None` with `provider = "oidc"`.
    pub management_url: Option<Url>,
    /// App ID: listed or `{oAuthServerUrl}/revoke`; `oidc`: only when listed.
    pub revocation_endpoint: Option<Url>,
    /// Send the client secret in the form body (`client_secret_post`) rather than by HTTP
    /// Basic: only when the provider lists `client_secret_post` and not `client_secret_basic`.
    pub client_secret_post: bool,
    /// The provider lists `S256` in `code_challenge_methods_supported`.
    pub pkce_s256: bool,
    /// Where the browser ends the provider's session, if discovery lists it.
    pub end_session_endpoint: Option<Url>,
    /// Every callback must carry `iss` (RFC 9207 §2.4, the provider advertises it).
    pub iss_parameter_required: bool,
}

/// Where the discovery document lives (App ID: under `oAuthServerUrl`; `oidc`: under the
/// issuer URL, OIDC Discovery §4).
pub fn discovery_url(config: &AppIdConfig) -> String {
    config.endpoint(".well-known/openid-configuration")
}

/// Checks a discovery document against the configuration.
///
/// The issuer must equal `oAuthServerUrl` exactly (OIDC Discovery §4.3), and every
/// endpoint must be on the provider's own origin (scheme, host and port; any path): a
/// document that points our client secret or our trust in signing keys at another host is
/// refused. This holds for `oidc` too, so a provider that spreads its endpoints over
/// several hosts is not supported.
///
/// With App ID, the endpoints App ID does not list (`/introspect`, `/revoke`) are derived
/// from `oAuthServerUrl` and the management API from `management_endpoint` or the path; with
/// `oidc` only what discovery lists is used, and there is no management API.
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
    let app_id = config.is_app_id();
    let listed_or_app_id_path = |listed: Option<&str>, path: &str| -> Result<Option<Url>, ProviderError> {
        match listed {
            Some(value) => same_origin(value).map(Some),
            // App ID does not list it; the path is documented under oAuthServerUrl.
            None if app_id => same_origin(&config.endpoint(path)).map(Some),
            None => Ok(None),
        }
    };
    let introspection = listed_or_app_id_path(doc.introspection_endpoint.as_deref(), "introspect")?;
    let revocation = listed_or_app_id_path(doc.revocation_endpoint.as_deref(), "revoke")?;
    let management_url = if !app_id {
        None
    } else {
        Some(match (&config.management_url, doc.management_endpoint.as_deref()) {
            (Some(configured), _) => configured.clone(),
            (None, Some(listed)) => same_origin(listed)?,
            (None, None) => {
                derive_management_url(&base).ok_or(ProviderError::Untrusted("no management endpoint"))?
            }
        })
    };
    let methods = &doc.token_endpoint_auth_methods_supported;
    let client_secret_post = !app_id
        && methods.iter().any(|m| m == "client_secret_post")
        && !methods.iter().any(|m| m == "client_secret_basic");
    Ok(ProviderMetadata {
        authorization_endpoint: same_origin(&doc.authorization_endpoint)?,
        token_endpoint: same_origin(&doc.token_endpoint)?,
        jwks_uri: same_origin(&doc.jwks_uri)?,
        introspection_endpoint: introspection,
        // Only read for a name or e-mail the id_token lacks: one on another origin is left
        // unused rather than failing discovery, which worked without it.
        userinfo_endpoint: doc.userinfo_endpoint.as_deref().and_then(|v| same_origin(v).ok()),
        management_url,
        revocation_endpoint: revocation,
        client_secret_post,
        pkce_s256: doc.code_challenge_methods_supported.iter().any(|m| m == "S256"),
        iss_parameter_required: doc.authorization_response_iss_parameter_supported,
        end_session_endpoint: doc.end_session_endpoint.as_deref().map(same_origin).transpose()?,
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

    use crate::config::{validate, ProviderKind, RawSettings, RolesSource};

    fn config(provider: ProviderKind, issuer: &str) -> AppIdConfig {
        validate(&RawSettings {
            client_id: Some("client".into()),
            client_secret: Some("secret".into()),
            oauth_server_url: Some(issuer.into()),
            redirect_uri: Some("https://app.example.com/afterauth".into()),
            ibm_cloud_apikey: Some("key".into()),
            iam_url: Some("https://iam.cloud.ibm.com/identity/token".into()),
            provider,
            roles_source: (provider == ProviderKind::Oidc).then_some(RolesSource::Token),
            ..RawSettings::default()
        })
        .unwrap()
    }

    fn document(issuer: &str, extra: serde_json::Value) -> DiscoveryDocument {
        let mut doc = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        });
        if let (Some(doc), serde_json::Value::Object(extra)) = (doc.as_object_mut(), extra) {
            doc.extend(extra);
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn app_id_paths_are_derived_only_for_app_id() {
        let app_id = "https://us-south.appid.cloud.ibm.com/oauth/v4/t-1";
        let metadata =
            interpret(document(app_id, serde_json::json!({})), &config(ProviderKind::Appid, app_id)).unwrap();
        assert_eq!(metadata.introspection_endpoint.unwrap().as_str(), format!("{app_id}/introspect"));
        assert_eq!(metadata.revocation_endpoint.unwrap().as_str(), format!("{app_id}/revoke"));
        assert!(metadata.management_url.is_some());
        assert!(!metadata.client_secret_post);

        // A generic provider: only what discovery lists, on the issuer's origin (any path).
        let issuer = "https://login.example.com/realms/main";
        let oidc = config(ProviderKind::Oidc, issuer);
        let bare = interpret(document(issuer, serde_json::json!({})), &oidc).unwrap();
        assert!(bare.introspection_endpoint.is_none() && bare.revocation_endpoint.is_none());
        assert!(bare.management_url.is_none());
        let listed = interpret(
            document(
                issuer,
                serde_json::json!({
                    "introspection_endpoint": "https://login.example.com/protocol/introspect",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                }),
            ),
            &oidc,
        )
        .unwrap();
        assert_eq!(
            listed.introspection_endpoint.unwrap().as_str(),
            "https://login.example.com/protocol/introspect"
        );
        assert!(listed.client_secret_post, "client_secret_post when basic is not listed");
        let both = document(
            issuer,
            serde_json::json!({ "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"] }),
        );
        assert!(!interpret(both, &oidc).unwrap().client_secret_post);
        // Another origin is still refused.
        let elsewhere = document(issuer, serde_json::json!({ "jwks_uri": "https://keys.example.net/jwks" }));
        assert!(interpret(elsewhere, &oidc).is_err());
    }

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
