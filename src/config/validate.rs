//! Validation of the raw settings: every problem is collected, named by its
//! environment variable, and reported together; values are never repeated.

use std::fmt;
use std::time::Duration;

use url::{Host, Url};

use super::secret_key::SessionKey;
use super::settings::{IntrospectionPolicy, PkceMode, ProviderKind, RawSettings, RolesSource};
use crate::secret::Secret;

/// One configuration problem: the setting's name (as the environment variable
/// an operator would set) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub name: &'static str,
    pub what: String,
}

/// All problems found, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigProblems(pub Vec<Problem>);

impl ConfigProblems {
    /// Records a problem.
    pub fn push(&mut self, name: &'static str, what: impl Into<String>) {
        self.0.push(Problem { name, what: what.into() });
    }

    /// The names of the settings with problems.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.name).collect()
    }
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "App ID configuration is incomplete or invalid ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {}: {}", p.name, p.what)?;
        }
        write!(
            f,
            "Set them as environment variables or under [<profile>.appid] in Rocket.toml (see README.md)."
        )
    }
}

/// Upper bound of `session_max_chunks`: 8 cookies of under 4 KB each already make a
/// `Cookie` header of about 32 KB, more than many proxies accept.
pub const MAX_SESSION_CHUNKS: usize = 8;
/// Upper bound of `login_max_pending` (the entries share one cookie of under 4 KB anyway).
pub const MAX_PENDING_LOGINS: usize = 8;

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
    pub management_url: Option<Url>,
    pub pkce: PkceMode,
    pub introspection: IntrospectionPolicy,
    pub introspection_ttl_secs: u64,
    pub roles_ttl_secs: u64,
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

/// Checks the raw settings and returns the validated configuration or every problem.
pub fn validate(raw: &RawSettings) -> Result<AppIdConfig, ConfigProblems> {
    let mut problems = ConfigProblems::default();

    let client_id = required(&raw.client_id, "APPID_CLIENT_ID", &mut problems);
    let client_secret = required(&raw.client_secret, "APPID_CLIENT_SECRET", &mut problems);
    // The management API is App ID's: a generic provider reads roles from tokens, and
    // leaving the source unset picks the one that works with the provider.
    let roles_source = match (raw.provider, raw.roles_source) {
        (ProviderKind::Appid, source) => source.unwrap_or(RolesSource::ManagementApi),
        (ProviderKind::Oidc, None | Some(RolesSource::Token)) => RolesSource::Token,
        (ProviderKind::Oidc, Some(_)) => {
            problems.push(
                "APPID_ROLES_SOURCE",
                "must be token with APPID_PROVIDER=oidc (the management API exists only in App ID)",
            );
            RolesSource::Token
        }
    };
    let api_key = if roles_source.uses_management_api() {
        required_because(
            &raw.ibm_cloud_apikey,
            "IBM_CLOUD_APIKEY",
            "is missing (the roles source management_api or both reads roles through App ID's \
             management API; with APPID_ROLES_SOURCE=token no API key is needed)",
            &mut problems,
        )
    } else {
        // Not needed; an API key set anyway is simply not used.
        None
    };

    let oauth = required(&raw.oauth_server_url, "APPID_OAUTH_SERVER_URL", &mut problems)
        .and_then(|v| outbound_url(&v, "APPID_OAUTH_SERVER_URL", &mut problems));
    let tenant_id = match raw.provider {
        ProviderKind::Appid => oauth.as_ref().and_then(|url| match tenant_of(url) {
            Some(t) => Some(t),
            None => {
                problems.push(
                    "APPID_OAUTH_SERVER_URL",
                    "must be App ID's oAuthServerUrl, ending in /oauth/v4/{tenantId} \
                     (for another OpenID provider set APPID_PROVIDER=oidc and its issuer URL)",
                );
                None
            }
        }),
        // A generic provider has no tenant; the issuer URL is all there is.
        ProviderKind::Oidc => Some(String::new()),
    };
    let roles_claim = match raw.roles_claim.as_deref().map(str::trim) {
        None | Some("") => Some("roles".to_string()),
        Some(claim) if is_claim_path(claim) => Some(claim.to_string()),
        Some(_) => {
            problems.push(
                "APPID_ROLES_CLAIM",
                "must be a claim name or a dotted path of claim names (letters, digits, _ - : /), \
                 at most 128 characters",
            );
            None
        }
    };

    let redirect_uri = required(&raw.redirect_uri, "APPID_REDIRECT_URI", &mut problems)
        .and_then(|v| redirect_url(&v, &mut problems));
    // IAM is only called for the management API.
    let iam_url = if roles_source.uses_management_api() {
        required(&raw.iam_url, "IBM_CLOUD_IAM_URL", &mut problems)
            .and_then(|v| outbound_url(&v, "IBM_CLOUD_IAM_URL", &mut problems))
            .map(Some)
    } else {
        Some(None)
    };
    let management_url = raw
        .management_url
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| outbound_url(v, "APPID_MANAGEMENT_URL", &mut problems));

    for (name, secs) in [
        ("APPID_CONNECT_TIMEOUT_SECS", raw.connect_timeout_secs),
        ("APPID_REQUEST_TIMEOUT_SECS", raw.request_timeout_secs),
        ("APPID_TOKEN_TIMEOUT_SECS", raw.token_timeout_secs),
    ] {
        if !(1..=120).contains(&secs) {
            problems.push(name, "must be between 1 and 120 seconds");
        }
    }
    if !(1..=3600).contains(&raw.introspection_ttl_secs) {
        problems.push("APPID_INTROSPECTION_TTL_SECS", "must be between 1 and 3600 seconds");
    }
    if !(1..=86_400).contains(&raw.roles_ttl_secs) {
        problems.push("APPID_ROLES_TTL_SECS", "must be between 1 and 86400 seconds");
    }
    if !(1..=100).contains(&raw.breaker_failures) {
        problems.push("APPID_BREAKER_FAILURES", "must be between 1 and 100");
    }
    if !(1..=600).contains(&raw.breaker_open_secs) {
        problems.push("APPID_BREAKER_OPEN_SECS", "must be between 1 and 600 seconds");
    }
    if !(1..=10_000).contains(&raw.max_concurrent_calls) {
        problems.push("APPID_MAX_CONCURRENT_CALLS", "must be between 1 and 10000");
    }
    if raw.clock_leeway_secs > 300 {
        problems.push("APPID_CLOCK_LEEWAY_SECS", "must be at most 300 seconds");
    }
    if !(60..=7 * 24 * 3600).contains(&raw.session_max_age_secs) {
        problems.push("APPID_SESSION_MAX_AGE_SECS", "must be between 60 seconds and 7 days");
    }
    if raw.refresh_window_secs > 600 {
        problems.push("APPID_REFRESH_WINDOW_SECS", "must be at most 600 seconds");
    }
    if !(1..=300).contains(&raw.refresh_grace_secs) {
        problems.push("APPID_REFRESH_GRACE_SECS", "must be between 1 and 300 seconds");
    }
    let post_logout = raw
        .post_logout_redirect_uri
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| outbound_url(v, "APPID_POST_LOGOUT_REDIRECT_URI", &mut problems));

    // An idle timeout at or above the absolute lifetime simply never ends a session first.
    if !(60..=7 * 24 * 3600).contains(&raw.session_idle_secs) {
        problems.push("APPID_SESSION_IDLE_SECS", "must be between 60 seconds and 7 days");
    }
    if !(1..=MAX_SESSION_CHUNKS).contains(&raw.session_max_chunks) {
        problems.push("APPID_SESSION_MAX_CHUNKS", format!("must be between 1 and {MAX_SESSION_CHUNKS}"));
    }
    if !(1..=MAX_PENDING_LOGINS).contains(&raw.login_max_pending) {
        problems.push("APPID_LOGIN_MAX_PENDING", format!("must be between 1 and {MAX_PENDING_LOGINS}"));
    }
    let previous_session_key = match raw.previous_session_secret_key.as_deref().map(str::trim) {
        Some(value) if !value.is_empty() => match SessionKey::from_setting(value) {
            Ok(key) => Some(key),
            Err(why) => {
                problems.push("SESSION_SECRET_KEY_PREVIOUS", why.to_string());
                None
            }
        },
        _ => None,
    };

    match (client_id, client_secret, oauth, tenant_id, redirect_uri, iam_url, roles_claim) {
        (
            Some(client_id),
            Some(secret),
            Some(oauth),
            Some(tenant),
            Some(redirect),
            Some(iam),
            Some(roles_claim),
        ) if problems.0.is_empty() => {
            // By default the provider returns to our own signed-out page.
            let post_logout_redirect_uri = post_logout.unwrap_or_else(|| {
                let mut url = redirect.clone();
                url.set_path("/signed_out");
                url.set_query(None);
                url
            });
            Ok(AppIdConfig {
                client_id,
                client_secret: Secret::new(secret),
                oauth_server_url: oauth.as_str().trim_end_matches('/').to_string(),
                tenant_id: tenant,
                redirect_uri: redirect,
                api_key: api_key.map(Secret::new),
                iam_url: iam,
                provider: raw.provider,
                roles_source,
                roles_claim,
                management_url,
                pkce: raw.pkce,
                introspection: raw.introspection,
                introspection_ttl_secs: raw.introspection_ttl_secs,
                roles_ttl_secs: raw.roles_ttl_secs,
                timeouts: Timeouts {
                    connect: Duration::from_secs(raw.connect_timeout_secs),
                    request: Duration::from_secs(raw.request_timeout_secs),
                    token: Duration::from_secs(raw.token_timeout_secs),
                },
                breaker: BreakerSettings {
                    failures: raw.breaker_failures,
                    open_for: Duration::from_secs(raw.breaker_open_secs),
                    max_concurrent: raw.max_concurrent_calls,
                },
                clock_leeway_secs: raw.clock_leeway_secs,
                session_max_age_secs: raw.session_max_age_secs,
                refresh_window_secs: raw.refresh_window_secs,
                refresh_grace_secs: raw.refresh_grace_secs,
                sso_logout: raw.sso_logout,
                post_logout_redirect_uri,
                metrics: raw.metrics,
                metrics_token: raw.metrics_token.as_deref().filter(|t| !t.is_empty()).map(Secret::new),
                session_idle_secs: raw.session_idle_secs,
                session_max_chunks: raw.session_max_chunks,
                login_max_pending: raw.login_max_pending,
                previous_session_key,
            })
        }
        _ => Err(problems),
    }
}

fn required(value: &Option<String>, name: &'static str, problems: &mut ConfigProblems) -> Option<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Some(v.to_string()),
        _ => {
            problems.push(name, "is missing");
            None
        }
    }
}

/// Like [`required`], with a message that says why the setting is needed.
fn required_because(
    value: &Option<String>,
    name: &'static str,
    missing: &'static str,
    problems: &mut ConfigProblems,
) -> Option<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Some(v.to_string()),
        _ => {
            problems.push(name, missing);
            None
        }
    }
}

/// A claim name, or names joined by dots for a nested member (`realm_access.roles`).
fn is_claim_path(s: &str) -> bool {
    s.len() <= 128
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'/'))
        })
}

/// True for hosts that never leave this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A URL the app calls: https, or http only to a loopback host (tests, local development).
fn outbound_url(value: &str, name: &'static str, problems: &mut ConfigProblems) -> Option<Url> {
    let Ok(url) = Url::parse(value.trim()) else {
        problems.push(name, "is not a valid absolute URL");
        return None;
    };
    let ok = match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(&url),
        _ => false,
    };
    if !ok {
        problems.push(name, "must be an https URL (http is allowed only for 127.0.0.1, localhost or [::1])");
        return None;
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        problems.push(name, "must not contain credentials, a query or a fragment");
        return None;
    }
    Some(url)
}

/// The redirect URI: absolute http(s), no fragment; http only for loopback hosts.
fn redirect_url(value: &str, problems: &mut ConfigProblems) -> Option<Url> {
    let url = outbound_url(value, "APPID_REDIRECT_URI", problems)?;
    if url.path() != "/afterauth" {
        problems.push("APPID_REDIRECT_URI", "must be the full URL of this app's /afterauth route");
        return None;
    }
    Some(url)
}

/// The tenant id: the segment after `/oauth/v4/` in `oAuthServerUrl`.
fn tenant_of(url: &Url) -> Option<String> {
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., "oauth", "v4", tenant] if is_safe_segment(tenant) => Some((*tenant).to_string()),
        _ => None,
    }
}

/// A value that can be used as one URL path segment without encoding tricks.
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> RawSettings {
        RawSettings {
            client_id: Some("client".into()),
            client_secret: Some("s3cret-value".into()),
            oauth_server_url: Some("https://us-south.appid.cloud.ibm.com/oauth/v4/tenant-1".into()),
            redirect_uri: Some("https://app.example.com/afterauth".into()),
            ibm_cloud_apikey: Some("api-key-value".into()),
            iam_url: Some("https://iam.cloud.ibm.com/identity/token".into()),
            ..RawSettings::default()
        }
    }

    #[test]
    fn a_complete_configuration_is_accepted() {
        let config = validate(&complete()).unwrap();
        assert_eq!(config.tenant_id, "tenant-1");
        assert_eq!(config.issuer(), "https://us-south.appid.cloud.ibm.com/oauth/v4/tenant-1");
        assert!(config.secure_cookies());
    }

    #[test]
    fn every_missing_setting_is_named_in_one_report() {
        let raw = RawSettings { iam_url: None, ..RawSettings::default() };
        let problems = validate(&raw).unwrap_err();
        assert_eq!(
            problems.names(),
            vec![
                "APPID_CLIENT_ID",
                "APPID_CLIENT_SECRET",
                "IBM_CLOUD_APIKEY",
                "APPID_OAUTH_SERVER_URL",
                "APPID_REDIRECT_URI",
                "IBM_CLOUD_IAM_URL"
            ]
        );
    }

    #[test]
    fn plain_http_is_refused_except_for_loopback_hosts() {
        let mut raw = complete();
        raw.oauth_server_url = Some("http://appid.example.com/oauth/v4/t".into());
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_OAUTH_SERVER_URL"]);
        raw.oauth_server_url = Some("http://127.0.0.1:9000/oauth/v4/t".into());
        raw.redirect_uri = Some("http://localhost:8000/afterauth".into());
        let config = validate(&raw).unwrap();
        assert!(!config.secure_cookies());
    }

    #[test]
    fn problems_never_repeat_the_values() {
        let mut raw = complete();
        raw.redirect_uri = Some("https://app.example.com/wrong-path-s3cret".into());
        raw.oauth_server_url = Some("not a url s3cret".into());
        let report = validate(&raw).unwrap_err().to_string();
        assert!(report.contains("APPID_REDIRECT_URI"));
        assert!(report.contains("APPID_OAUTH_SERVER_URL"));
        assert!(!report.contains("s3cret"));
    }

    #[test]
    fn breaker_settings_have_defaults_and_bounds() {
        let config = validate(&complete()).unwrap();
        assert_eq!(config.breaker.failures, 5);
        assert_eq!(config.breaker.open_for, Duration::from_secs(30));
        let mut raw = complete();
        raw.breaker_failures = 0;
        raw.breaker_open_secs = 0;
        raw.max_concurrent_calls = 0;
        assert_eq!(
            validate(&raw).unwrap_err().names(),
            vec!["APPID_BREAKER_FAILURES", "APPID_BREAKER_OPEN_SECS", "APPID_MAX_CONCURRENT_CALLS"]
        );
    }

    #[test]
    fn session_settings_have_defaults_and_bounds() {
        let config = validate(&complete()).unwrap();
        assert_eq!(
            (config.session_idle_secs, config.session_max_chunks, config.login_max_pending),
            (1800, 4, 4)
        );
        assert!(config.previous_session_key.is_none());
        let mut raw = complete();
        raw.session_idle_secs = 7 * 24 * 3600 + 1;
        raw.session_max_chunks = 0;
        raw.login_max_pending = 9;
        raw.previous_session_secret_key = Some("short-s3cret".into());
        let problems = validate(&raw).unwrap_err();
        assert_eq!(
            problems.names(),
            vec![
                "APPID_SESSION_IDLE_SECS",
                "APPID_SESSION_MAX_CHUNKS",
                "APPID_LOGIN_MAX_PENDING",
                "SESSION_SECRET_KEY_PREVIOUS"
            ]
        );
        assert!(!problems.to_string().contains("s3cret"));
        raw = complete();
        raw.session_idle_secs = 59;
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_SESSION_IDLE_SECS"]);
        raw.session_idle_secs = 60;
        raw.previous_session_secret_key =
            Some("an old passphrase that is long enough to be stretched".into());
        assert!(validate(&raw).unwrap().previous_session_key.is_some());
    }

    #[test]
    fn renewal_and_logout_settings_have_defaults_and_bounds() {
        let config = validate(&complete()).unwrap();
        assert_eq!((config.refresh_window_secs, config.refresh_grace_secs), (60, 30));
        assert!(!config.sso_logout);
        assert_eq!(config.post_logout_redirect_uri.as_str(), "https://app.example.com/signed_out");
        let mut raw = complete();
        raw.refresh_window_secs = 601;
        raw.refresh_grace_secs = 0;
        raw.post_logout_redirect_uri = Some("javascript:alert(1)".into());
        assert_eq!(
            validate(&raw).unwrap_err().names(),
            vec!["APPID_REFRESH_WINDOW_SECS", "APPID_REFRESH_GRACE_SECS", "APPID_POST_LOGOUT_REDIRECT_URI"]
        );
        raw = complete();
        raw.post_logout_redirect_uri = Some("https://www.example.com/goodbye".into());
        let config = validate(&raw).unwrap();
        assert_eq!(config.post_logout_redirect_uri.as_str(), "https://www.example.com/goodbye");
    }

    #[test]
    fn the_api_key_is_needed_only_by_the_management_api_and_says_so() {
        let mut raw = complete();
        raw.ibm_cloud_apikey = None;
        raw.iam_url = None;
        let problems = validate(&raw).unwrap_err();
        assert_eq!(problems.names(), vec!["IBM_CLOUD_APIKEY", "IBM_CLOUD_IAM_URL"]);
        assert!(problems.to_string().contains("APPID_ROLES_SOURCE=token"), "{problems}");
        raw.roles_source = Some(RolesSource::Both);
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["IBM_CLOUD_APIKEY", "IBM_CLOUD_IAM_URL"]);
        raw.roles_source = Some(RolesSource::Token);
        let config = validate(&raw).unwrap();
        assert!(config.api_key.is_none() && config.iam_url.is_none());
        assert_eq!(config.roles_claim, "roles");
        assert_eq!(validate(&complete()).unwrap().roles_source, RolesSource::ManagementApi);
    }

    #[test]
    fn a_generic_provider_takes_any_issuer_url_and_reads_roles_from_tokens() {
        let mut raw = complete();
        raw.provider = ProviderKind::Oidc;
        raw.oauth_server_url = Some("https://login.example.com/realms/main".into());
        raw.ibm_cloud_apikey = None;
        raw.roles_claim = Some("realm_access.roles".into());
        let config = validate(&raw).unwrap();
        assert_eq!(config.roles_source, RolesSource::Token);
        assert_eq!(config.tenant_id, "");
        assert!(!config.is_app_id());
        assert_eq!(config.roles_claim, "realm_access.roles");
        // The management API is App ID's: refused by name, not silently ignored.
        for source in [RolesSource::ManagementApi, RolesSource::Both] {
            raw.roles_source = Some(source);
            assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_ROLES_SOURCE"]);
        }
        raw.roles_source = Some(RolesSource::Token);
        raw.roles_claim = Some("my roles".into());
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_ROLES_CLAIM"]);
        // App ID still needs its oAuthServerUrl shape, and says how to use another provider.
        let mut raw = complete();
        raw.oauth_server_url = Some("https://login.example.com/realms/main".into());
        assert!(validate(&raw).unwrap_err().to_string().contains("APPID_PROVIDER=oidc"));
    }

    #[test]
    fn the_oauth_server_url_must_name_a_tenant() {
        let mut raw = complete();
        raw.oauth_server_url = Some("https://us-south.appid.cloud.ibm.com/oauth/v4/".into());
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_OAUTH_SERVER_URL"]);
    }
}
