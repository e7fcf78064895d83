//! Validation of the raw settings: every problem is collected, named by its
//! environment variable, and reported together; values are never repeated.

use std::time::Duration;

use url::{Host, Url};

use super::limits::{self, BROWSER_SESSION_LIMITS, CALL_AND_TOKEN_LIMITS};
use super::problems::ConfigProblems;
use super::secret_key::SessionKey;
use super::settings::{ProviderKind, RawSettings, RolesSource};
use super::validated::{AppIdConfig, BreakerSettings, Timeouts};
use crate::secret::Secret;

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
    // Which application a role is for is known only from App ID's management API.
    if raw.roles_this_app_only && !roles_source.uses_management_api() {
        problems.push(
            "APPID_ROLES_THIS_APP_ONLY",
            "needs App ID's management API (APPID_ROLES_SOURCE management_api or both, with \
             IBM_CLOUD_APIKEY): only it says which application a role is for",
        );
    }
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

    let trusted_audiences = trusted_audiences(raw, client_id.as_deref(), &mut problems);
    let scopes = scopes(raw, &mut problems);

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

    limits::check(CALL_AND_TOKEN_LIMITS, raw, &mut problems);

    let post_logout = raw
        .post_logout_redirect_uri
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| outbound_url(v, "APPID_POST_LOGOUT_REDIRECT_URI", &mut problems));

    limits::check(BROWSER_SESSION_LIMITS, raw, &mut problems);
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
                roles_this_app_only: raw.roles_this_app_only,
                trusted_audiences,
                scopes,
                management_url,
                pkce: raw.pkce,
                session_store: raw.session_store,
                introspection: raw.introspection,
                introspection_ttl_secs: raw.introspection_ttl_secs,
                roles_ttl_secs: raw.roles_ttl_secs,
                outage_window_secs: raw.outage_window_secs,
                timeouts: Timeouts {
                    connect: Duration::from_secs(raw.connect_timeout_secs),
                    request: Duration::from_secs(raw.request_timeout_secs),
                    token: Duration::from_secs(raw.token_timeout_secs),
                },
                breaker: BreakerSettings {
                    failures: raw.breaker_failures,
                    open_for: Duration::from_secs(raw.breaker_open_secs),
                    max_concurrent: raw.max_concurrent_calls,
                    token_calls_per_sec: raw.token_calls_per_sec,
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
                sign_in_per_minute: raw.sign_in_per_minute,
                trusted_proxies: raw.trusted_proxies,
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

/// The audiences trusted besides our client id: client ids, so printable ASCII without
/// spaces or commas, at most 255 characters each; repeats and our own id are dropped.
fn trusted_audiences(
    raw: &RawSettings,
    client_id: Option<&str>,
    problems: &mut ConfigProblems,
) -> Vec<String> {
    let Some(setting) = &raw.trusted_audiences else { return Vec::new() };
    let mut audiences: Vec<String> = Vec::new();
    for value in setting.values() {
        if value.len() > 255 || !value.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            problems.push(
                "APPID_TRUSTED_AUDIENCES",
                "must be client ids separated by commas (printable characters, at most 255 each)",
            );
            return Vec::new();
        }
        if Some(value) != client_id && !audiences.iter().any(|a| a == value) {
            audiences.push(value.to_string());
        }
    }
    audiences
}

/// The scopes to ask for: the configured ones (RFC 6749 §3.3 scope tokens; `openid` must be
/// among them, and comes first), else the provider's default: App ID signs in with `openid`
/// (the Flask pattern), a standard provider releases name and e-mail only for the `profile`
/// and `email` scopes (OIDC Core §5.4).
fn scopes(raw: &RawSettings, problems: &mut ConfigProblems) -> String {
    let Some(setting) = &raw.scopes else {
        return match raw.provider {
            ProviderKind::Appid => "openid".to_string(),
            ProviderKind::Oidc => "openid profile email".to_string(),
        };
    };
    let values = setting.values();
    let scope_token =
        |v: &&str| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if !values.iter().all(scope_token) || !values.contains(&"openid") {
        problems.push("APPID_SCOPES", "must be scope names separated by spaces or commas, including openid");
        return "openid".to_string();
    }
    let mut scopes = vec!["openid"];
    for value in values {
        if !scopes.contains(&value) {
            scopes.push(value);
        }
    }
    scopes.join(" ")
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
    fn the_outage_window_defaults_to_15_minutes_and_may_be_0_up_to_a_day() {
        assert_eq!(validate(&complete()).unwrap().outage_window_secs, 900);
        let mut raw = complete();
        for fine in [0, 86_400] {
            raw.outage_window_secs = fine;
            assert_eq!(validate(&raw).unwrap().outage_window_secs, fine);
        }
        raw.outage_window_secs = 86_401;
        let problems = validate(&raw).unwrap_err();
        assert_eq!(problems.names(), vec!["APPID_OUTAGE_WINDOW_SECS"]);
        assert!(problems.to_string().contains("must be at most 86400 seconds"), "{problems}");
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

    /// Every numeric setting out of bounds with the URL and key checks between them: the
    /// report's order and wording.
    #[test]
    fn every_problem_in_one_report_in_a_stable_order() {
        let mut raw = complete();
        (raw.connect_timeout_secs, raw.request_timeout_secs, raw.token_timeout_secs) = (0, 121, 0);
        (raw.introspection_ttl_secs, raw.roles_ttl_secs) = (3601, 0);
        (raw.breaker_failures, raw.breaker_open_secs, raw.max_concurrent_calls) = (101, 601, 10_001);
        (raw.clock_leeway_secs, raw.session_max_age_secs) = (301, 59);
        (raw.refresh_window_secs, raw.refresh_grace_secs) = (601, 301);
        raw.post_logout_redirect_uri = Some("http://app.example.com/bye".into());
        (raw.session_idle_secs, raw.session_max_chunks, raw.login_max_pending) = (59, 9, 0);
        raw.previous_session_secret_key = Some("short".into());
        raw.management_url = Some("ftp://example.com/".into());
        let report = validate(&raw).unwrap_err().to_string();
        let expected = "\
App ID configuration is incomplete or invalid (18 problem(s)):
  - APPID_MANAGEMENT_URL: must be an https URL (http is allowed only for 127.0.0.1, localhost or [::1])
  - APPID_CONNECT_TIMEOUT_SECS: must be between 1 and 120 seconds
  - APPID_REQUEST_TIMEOUT_SECS: must be between 1 and 120 seconds
  - APPID_TOKEN_TIMEOUT_SECS: must be between 1 and 120 seconds
  - APPID_INTROSPECTION_TTL_SECS: must be between 1 and 3600 seconds
  - APPID_ROLES_TTL_SECS: must be between 1 and 86400 seconds
  - APPID_BREAKER_FAILURES: must be between 1 and 100
  - APPID_BREAKER_OPEN_SECS: must be between 1 and 600 seconds
  - APPID_MAX_CONCURRENT_CALLS: must be between 1 and 10000
  - APPID_CLOCK_LEEWAY_SECS: must be at most 300 seconds
  - APPID_SESSION_MAX_AGE_SECS: must be between 60 seconds and 7 days
  - APPID_REFRESH_WINDOW_SECS: must be at most 600 seconds
  - APPID_REFRESH_GRACE_SECS: must be between 1 and 300 seconds
  - APPID_POST_LOGOUT_REDIRECT_URI: must be an https URL (http is allowed only for 127.0.0.1, localhost or [::1])
  - APPID_SESSION_IDLE_SECS: must be between 60 seconds and 7 days
  - APPID_SESSION_MAX_CHUNKS: must be between 1 and 8
  - APPID_LOGIN_MAX_PENDING: must be between 1 and 8
  - SESSION_SECRET_KEY_PREVIOUS: ";
        assert!(report.starts_with(expected), "{report}");
    }

    /// Issue 19 item 9: off by default; on, it needs the management API.
    #[test]
    fn roles_this_app_only_is_off_by_default_and_needs_the_management_api() {
        assert!(!validate(&complete()).unwrap().roles_this_app_only);
        let mut raw = complete();
        raw.roles_this_app_only = true;
        assert!(validate(&raw).unwrap().roles_this_app_only);
        raw.roles_source = Some(RolesSource::Token);
        let problems = validate(&raw).unwrap_err().to_string();
        assert!(problems.contains("APPID_ROLES_THIS_APP_ONLY"), "{problems}");
    }

    #[test]
    fn trusted_audiences_are_a_list_or_comma_separated_text_without_our_own_id() {
        use super::super::settings::ListSetting;
        assert!(validate(&complete()).unwrap().trusted_audiences.is_empty(), "none by default");
        let mut raw = complete();
        raw.trusted_audiences =
            Some(ListSetting::Text(" spa-client, mobile-client client spa-client ".into()));
        assert_eq!(validate(&raw).unwrap().trusted_audiences, ["spa-client", "mobile-client"]);
        raw.trusted_audiences = Some(ListSetting::List(vec!["spa-client".into(), "mobile-client".into()]));
        assert_eq!(validate(&raw).unwrap().trusted_audiences, ["spa-client", "mobile-client"]);
        raw.trusted_audiences = Some(ListSetting::Text("spa\u{7f}client".into()));
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_TRUSTED_AUDIENCES"]);
    }

    #[test]
    fn scopes_default_by_provider_must_include_openid_and_come_openid_first() {
        use super::super::settings::ListSetting;
        assert_eq!(validate(&complete()).unwrap().scopes, "openid");
        let mut raw = complete();
        raw.provider = ProviderKind::Oidc;
        raw.oauth_server_url = Some("https://login.example.com/realms/main".into());
        raw.roles_source = Some(RolesSource::Token);
        assert_eq!(validate(&raw).unwrap().scopes, "openid profile email");
        raw.scopes = Some(ListSetting::Text("email,openid  offline_access email".into()));
        assert_eq!(validate(&raw).unwrap().scopes, "openid email offline_access");
        raw.scopes = Some(ListSetting::Text("profile email".into()));
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_SCOPES"]);
        raw.scopes = Some(ListSetting::List(vec!["openid".into(), "a\"b".into()]));
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_SCOPES"]);
    }

    #[test]
    fn the_oauth_server_url_must_name_a_tenant() {
        let mut raw = complete();
        raw.oauth_server_url = Some("https://us-south.appid.cloud.ibm.com/oauth/v4/".into());
        assert_eq!(validate(&raw).unwrap_err().names(), vec!["APPID_OAUTH_SERVER_URL"]);
    }
}
