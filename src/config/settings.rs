//! The `appid` table as it arrives from Rocket.toml and the environment, before validation.

use serde::{Deserialize, Serialize};

use super::limits::DEFAULTS;

/// Whether to send PKCE (RFC 7636, S256) on the authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PkceMode {
    /// Send it when the provider's discovery lists `S256` in `code_challenge_methods_supported`.
    /// App ID documents PKCE only for single-page apps, so against App ID this usually means off.
    #[default]
    Auto,
    /// Always send it.
    Always,
    /// Never send it.
    Never,
}

/// Where a session's tokens and profile are kept (`APPID_SESSION_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreMode {
    /// In the session cookie, sealed (split over several cookies when large).
    #[default]
    Cookie,
    /// In the session store (Redis with `APPID_STORE_URL`, else this process), sealed with
    /// a key that only the cookie holds; the cookie holds only that ticket.
    Server,
}

/// When the guard asks the provider's `/introspect` endpoint about the session's access
/// token (it is always verified locally: signature, issuer, audience, tenant, expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IntrospectionPolicy {
    /// Never: local verification only.
    Never,
    /// At most once per token per `introspection_ttl_secs`: a revoked token is refused
    /// within that time.
    #[default]
    Cached,
    /// Also introspect on every protected request (the Flask pattern's behaviour).
    Always,
}

/// Which kind of OpenID provider signs users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// IBM Cloud App ID: `oauth_server_url` is App ID's `oAuthServerUrl` (`…/oauth/v4/{tenant}`),
    /// tokens carry App ID's `tenant` claim and `ver` header, roles can come from the
    /// management API, and the SSO logout is Cloud Directory's.
    #[default]
    Appid,
    /// Any OpenID provider, by discovery only: `oauth_server_url` is its issuer URL; nothing
    /// App ID-specific is checked or called, and roles come from a token claim.
    Oidc,
}

/// Where a user's roles come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RolesSource {
    /// App ID's management API with an IAM token (the Flask pattern; needs `IBM_CLOUD_APIKEY`).
    ManagementApi,
    /// A claim of the verified access token and id_token (`roles_claim`); no API key.
    Token,
    /// The union of both.
    Both,
}

impl RolesSource {
    /// This source calls App ID's management API (and so needs the IAM API key).
    pub fn uses_management_api(self) -> bool {
        matches!(self, RolesSource::ManagementApi | RolesSource::Both)
    }

    /// This source reads roles from token claims.
    pub fn uses_token(self) -> bool {
        matches!(self, RolesSource::Token | RolesSource::Both)
    }
}

/// A list setting: a TOML array, or one string of values separated by commas or spaces
/// (what an environment variable can say).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ListSetting {
    Text(String),
    List(Vec<String>),
}

impl ListSetting {
    /// The values, in order, without empty ones.
    pub fn values(&self) -> Vec<&str> {
        match self {
            ListSetting::Text(text) => split_list(text).collect(),
            ListSetting::List(values) => values.iter().flat_map(|v| split_list(v)).collect(),
        }
    }
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|v| !v.is_empty())
}

/// Raw settings under `appid` (see the configuration table in README.md). Serializable so
/// `doctor` can list every setting with its effective value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub oauth_server_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub session_secret_key: Option<String>,
    pub ibm_cloud_apikey: Option<String>,
    pub iam_url: Option<String>,
    /// Overrides the management API base (normally from discovery or derived).
    pub management_url: Option<String>,
    /// Start the embedded development identity provider when no `oauth_server_url` is set.
    pub emulator: bool,
    /// Port of the embedded emulator (0 = any free port).
    pub emulator_port: u16,
    pub pkce: PkceMode,
    pub session_store: SessionStoreMode,
    pub introspection: IntrospectionPolicy,
    /// How long an introspection answer is trusted (policy `cached`).
    pub introspection_ttl_secs: u64,
    /// How stale a user's roles may be (a role removed in App ID stops working within this).
    pub roles_ttl_secs: u64,
    /// While the provider cannot be asked, the last introspection answer (active) and the
    /// last known roles are served for this long after they were read (0 = fail closed).
    pub outage_window_secs: u64,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub token_timeout_secs: u64,
    pub clock_leeway_secs: u64,
    /// Consecutive failures (no answer, 5xx, 429) of one provider endpoint that open its
    /// circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker answers at once, before one trial call is let through.
    pub breaker_open_secs: u64,
    /// Most calls to the provider in flight at once (all endpoints together).
    pub max_concurrent_calls: usize,
    /// Most token-endpoint calls per second from this instance.
    pub token_calls_per_sec: u32,
    /// How long a session lives at most, whatever the token lifetime (seconds).
    pub session_max_age_secs: u64,
    /// With a refresh token, the access token is renewed when it has less than this left
    /// (seconds; 0 = only once it has expired).
    pub refresh_window_secs: u64,
    /// After a renewal, requests still carrying the previous session cookie are served
    /// with the renewed session for this long (seconds): parallel requests and the browser
    /// picking up the new cookie do not log the user out.
    pub refresh_grace_secs: u64,
    /// Logout also ends the provider's single sign-on session (App ID: Cloud Directory SSO
    /// logout; a provider whose discovery lists `end_session_endpoint`: that).
    pub sso_logout: bool,
    /// Where the provider sends the browser after its SSO logout; must be registered there
    /// (App ID: SSO `logoutRedirectUris`). Default: this app's `/signed_out` page.
    pub post_logout_redirect_uri: Option<String>,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
    /// A session not used for this long has ended (seconds; ASVS 7.3.1).
    pub session_idle_secs: u64,
    /// Most cookies one session may be split across (each under 4 KB); a larger session
    /// gets the "session too large" page.
    pub session_max_chunks: usize,
    /// Most logins in progress at once in one browser (tabs); the oldest is dropped.
    pub login_max_pending: usize,
    /// Logins one client may start per minute (twice as many callbacks): the abuse limit.
    pub sign_in_per_minute: u32,
    /// Proxies in front of the app that append to `X-Forwarded-For`.
    pub trusted_proxies: usize,
    /// The key before the last `SESSION_SECRET_KEY` rotation: cookies sealed with it are
    /// still read (and re-sealed with the current key) during the rotation window.
    pub previous_session_secret_key: Option<String>,
    /// `appid` (default) or `oidc` (any OpenID provider by discovery).
    pub provider: ProviderKind,
    /// Where roles come from; unset means `management_api` for App ID, `token` for `oidc`.
    pub roles_source: Option<RolesSource>,
    /// The token claim holding role names (default `roles`, App ID's name; a dotted path
    /// such as `realm_access.roles` reads a nested member).
    pub roles_claim: Option<String>,
    /// Count only the roles whose access includes this application (App ID's roles are
    /// tenant-wide; `GET {mgmt}/roles` says which application each one is for).
    pub roles_this_app_only: bool,
    /// Audiences besides our client id whose tokens the API accepts (other clients of the
    /// tenant, e.g. a single-page or mobile front end), and which an id_token may name
    /// besides us (with `azp` = our client id).
    pub trusted_audiences: Option<ListSetting>,
    /// The scopes the authorization request asks for (must include `openid`); unset means
    /// `openid` for App ID (the Flask pattern) and `openid profile email` for `oidc`.
    pub scopes: Option<ListSetting>,
}

impl Default for RawSettings {
    fn default() -> Self {
        // Numbers come from the table in `limits.rs`, where each default is next to its bounds.
        let numbers = DEFAULTS;
        RawSettings {
            client_id: None,
            client_secret: None,
            oauth_server_url: None,
            redirect_uri: None,
            session_secret_key: None,
            ibm_cloud_apikey: None,
            iam_url: None,
            management_url: None,
            emulator: false,
            emulator_port: 0,
            pkce: PkceMode::default(),
            session_store: SessionStoreMode::default(),
            introspection: IntrospectionPolicy::default(),
            introspection_ttl_secs: numbers.introspection_ttl_secs,
            roles_ttl_secs: numbers.roles_ttl_secs,
            outage_window_secs: numbers.outage_window_secs,
            connect_timeout_secs: numbers.connect_timeout_secs,
            request_timeout_secs: numbers.request_timeout_secs,
            token_timeout_secs: numbers.token_timeout_secs,
            clock_leeway_secs: numbers.clock_leeway_secs,
            breaker_failures: numbers.breaker_failures,
            breaker_open_secs: numbers.breaker_open_secs,
            max_concurrent_calls: numbers.max_concurrent_calls,
            token_calls_per_sec: numbers.token_calls_per_sec,
            session_max_age_secs: numbers.session_max_age_secs,
            refresh_window_secs: numbers.refresh_window_secs,
            refresh_grace_secs: numbers.refresh_grace_secs,
            sso_logout: false,
            post_logout_redirect_uri: None,
            metrics: false,
            metrics_token: None,
            session_idle_secs: numbers.session_idle_secs,
            session_max_chunks: numbers.session_max_chunks,
            login_max_pending: numbers.login_max_pending,
            sign_in_per_minute: numbers.sign_in_per_minute,
            trusted_proxies: numbers.trusted_proxies,
            previous_session_secret_key: None,
            provider: ProviderKind::default(),
            roles_source: None,
            roles_claim: None,
            roles_this_app_only: false,
            trusted_audiences: None,
            scopes: None,
        }
    }
}
