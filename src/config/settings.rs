//! The `appid` table as it arrives from Rocket.toml and the environment, before validation.

use serde::Deserialize;

/// Whether to send PKCE (RFC 7636, S256) on the authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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

/// When the guard asks the provider's `/introspect` endpoint about the session's access
/// token (it is always verified locally: signature, issuer, audience, tenant, expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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

/// Raw settings under `appid` (see the configuration table in README.md).
#[derive(Debug, Clone, Deserialize)]
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
    pub introspection: IntrospectionPolicy,
    /// How long an introspection answer is trusted (policy `cached`).
    pub introspection_ttl_secs: u64,
    /// How stale a user's roles may be (a role removed in App ID stops working within this).
    pub roles_ttl_secs: u64,
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
    /// How long a session lives at most, whatever the token lifetime (seconds).
    pub session_max_age_secs: u64,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
}

impl Default for RawSettings {
    fn default() -> Self {
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
            introspection: IntrospectionPolicy::default(),
            introspection_ttl_secs: 60,
            roles_ttl_secs: 300,
            connect_timeout_secs: 3,
            request_timeout_secs: 5,
            token_timeout_secs: 10,
            clock_leeway_secs: 60,
            breaker_failures: 5,
            breaker_open_secs: 30,
            max_concurrent_calls: 64,
            session_max_age_secs: 8 * 3600,
            metrics: false,
            metrics_token: None,
        }
    }
}
