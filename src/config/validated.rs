//! The configuration the app runs with, as `validate` returns it once every
//! setting has passed its checks.

use std::time::Duration;

use url::Url;

use super::secret_key::SessionKey;
use super::settings::{IntrospectionPolicy, PkceMode, ProviderKind, RolesSource, SessionStoreMode};
use crate::secret::Secret;

/// Outbound HTTP timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Discovery, keys, introspection, userinfo, IAM, management.
    pub request: Duration,
    /// The code exchange at `/token`.
    pub token: Duration,
}

/// The circuit breaker and concurrency limit in front of the provider.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive failures of one endpoint that open its breaker.
    pub failures: u32,
    /// How long an open breaker fails calls at once.
    pub open_for: Duration,
    /// Most provider calls in flight at once.
    pub max_concurrent: usize,
    /// Most calls to the token endpoint (code exchanges and refreshes) per second from this
    /// instance: App ID blocks every call for 30 s past its limit.
    pub token_calls_per_sec: u32,
}

/// Validated App ID configuration.
#[derive(Debug, Clone)]
pub struct AppIdConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// `oAuthServerUrl` (App ID) or the issuer URL (`oidc`) without a trailing slash; also
    /// the expected token issuer.
    pub oauth_server_url: String,
    /// App ID's tenant id (from `oAuthServerUrl`); empty with `provider = "oidc"`.
    pub tenant_id: String,
    pub redirect_uri: Url,
    /// The IBM Cloud API key; present whenever the roles source uses the management API.
    pub api_key: Option<Secret>,
    /// IAM's token URL; present whenever the roles source uses the management API.
    pub iam_url: Option<Url>,
    /// App ID or any OpenID provider.
    pub provider: ProviderKind,
    /// Where roles come from (`oidc` allows `token` only).
    pub roles_source: RolesSource,
    /// The token claim with the role names (a dotted path reads a nested member).
    pub roles_claim: String,
    /// Only roles whose access includes this application count (needs the management API).
    pub roles_this_app_only: bool,
    /// Audiences besides `client_id` that bearer tokens may be for, and that an id_token may
    /// name besides us (never `client_id` itself; empty by default).
    pub trusted_audiences: Vec<String>,
    /// The `scope` of the authorization request, space-separated, `openid` first.
    pub scopes: String,
    pub management_url: Option<Url>,
    pub pkce: PkceMode,
    pub session_store: SessionStoreMode,
    pub introspection: IntrospectionPolicy,
    pub introspection_ttl_secs: u64,
    pub roles_ttl_secs: u64,
    /// How long after it was read the last introspection answer or role list may be
    /// served while the provider cannot be asked (0 = never).
    pub outage_window_secs: u64,
    pub timeouts: Timeouts,
    pub breaker: BreakerSettings,
    pub clock_leeway_secs: u64,
    pub session_max_age_secs: u64,
    /// Renew the access token when it has less than this left (with a refresh token).
    pub refresh_window_secs: u64,
    /// How long requests with the cookie from before a renewal are still served.
    pub refresh_grace_secs: u64,
    /// Logout also ends the provider's single sign-on session.
    pub sso_logout: bool,
    /// Where the provider returns the browser after its SSO logout (registered there).
    pub post_logout_redirect_uri: Url,
    pub metrics: bool,
    pub metrics_token: Option<Secret>,
    /// A session unused for this long has ended (seconds).
    pub session_idle_secs: u64,
    /// Most cookies one session may be split across.
    pub session_max_chunks: usize,
    /// Most logins in progress at once in one browser.
    pub login_max_pending: usize,
    /// Logins one client may start per minute (twice as many callbacks).
    pub sign_in_per_minute: u32,
    /// Proxies in front of the app that append to `X-Forwarded-For` (0: the peer is the client).
    pub trusted_proxies: usize,
    /// The session key before the last rotation, still accepted for reading.
    pub previous_session_key: Option<SessionKey>,
}

impl AppIdConfig {
    /// The expected `iss` of App ID tokens (App ID uses `oAuthServerUrl` itself).
    pub fn issuer(&self) -> &str {
        &self.oauth_server_url
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) when the app is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.redirect_uri.scheme() == "https"
    }

    /// True for App ID (tenant claim, `ver` header, management API, Cloud Directory logout).
    pub fn is_app_id(&self) -> bool {
        self.provider == ProviderKind::Appid
    }

    /// An endpoint under `oAuthServerUrl`, e.g. `endpoint("introspect")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.oauth_server_url, path)
    }
}
