//! The checks against the live provider: discovery, keys, clock, client credentials, the
//! IAM API key, and the tenant's configuration as App ID's management API shows it.

use serde_json::Value;

use super::report::Report;
use crate::appid::{AppId, ProviderError};
use crate::secret::RefreshToken;

/// Where App ID's console shows an application's credentials.
const CREDENTIALS_FIX: &str =
    "copy clientId and secret from App ID's console: Applications, your application, \
     View credentials (APPID_CLIENT_ID, APPID_CLIENT_SECRET)";
/// What an API key needs on the App ID instance.
const READER_FIX: &str =
    "in IBM Cloud's console (Manage, Access (IAM)) give the user or service ID that owns \
     IBM_CLOUD_APIKEY the Reader service role on this App ID instance";

/// Runs every provider check in order; a check whose prerequisite failed is skipped.
pub(super) async fn check(appid: &AppId, report: &mut Report) {
    let discovered = discovery(appid, report).await;
    clock(appid, report).await;
    if discovered {
        keys(appid, report).await;
        client_credentials(appid, report).await;
        revocation(appid, report).await;
    } else {
        for name in ["signing keys", "client secret", "revocation"] {
            report.skip(name, "needs discovery");
        }
    }
    let config = appid.config();
    if !config.is_app_id() {
        report.skip("management API", "APPID_PROVIDER=oidc: App ID's management API does not apply");
        return;
    }
    if config.api_key.is_none() {
        report.skip(
            "management API",
            "IBM_CLOUD_APIKEY is not set: set it (Reader role) to check the redirect URI and token configuration",
        );
        return;
    }
    let missing = match (api_key(appid, report).await, discovered) {
        (true, true) => None,
        (false, _) => Some("needs an IAM token"),
        (true, false) => Some("needs discovery (its management_endpoint)"),
    };
    if let Some(why) = missing {
        report.skip("management API", why);
        return;
    }
    if roles_readable(appid, report).await {
        redirect_uri(appid, report).await;
        token_configuration(appid, report).await;
        unknown_user(appid, report).await;
    } else {
        for name in ["redirect URI", "roles in tokens"] {
            report.skip(name, "needs the management API");
        }
    }
}

async fn discovery(appid: &AppId, report: &mut Report) -> bool {
    let configured = appid.config().issuer();
    let url = format!("{configured}/.well-known/openid-configuration");
    match appid.discovery_document().await {
        Ok(doc) if doc.issuer != configured => {
            report.fail(
                "discovery",
                format!("the issuer is {}, not APPID_OAUTH_SERVER_URL {configured}", doc.issuer),
                "set APPID_OAUTH_SERVER_URL to the oAuthServerUrl of the application's credentials, exactly",
            );
            false
        }
        Ok(_) => match appid.metadata().await {
            Ok(_) => {
                report.ok("discovery", format!("{url} answers; its issuer is APPID_OAUTH_SERVER_URL"));
                true
            }
            Err(error) => {
                report.fail(
                    "discovery",
                    format!("the document is refused: {error}"),
                    "every endpoint must be on the issuer's own origin; check APPID_MANAGEMENT_URL",
                );
                false
            }
        },
        Err(ProviderError::Status { status: 404, .. }) => {
            report.fail(
                "discovery",
                format!("{url} answered 404"),
                "the region or tenant id in APPID_OAUTH_SERVER_URL is wrong: copy oAuthServerUrl \
                 from the application's credentials in App ID's console",
            );
            false
        }
        Err(error) => {
            report.fail(
                "discovery",
                format!("{url}: {error}"),
                "check the host in APPID_OAUTH_SERVER_URL, and that this machine reaches it (DNS, proxy, firewall)",
            );
            false
        }
    }
}

async fn clock(appid: &AppId, report: &mut Report) {
    let leeway = appid.config().clock_leeway_secs as i64;
    match appid.provider_time().await {
        Ok(Some(theirs)) => {
            let skew = crate::clock::now() - theirs;
            let text = format!("this machine is {skew:+} s from the provider's Date (leeway {leeway} s)");
            if skew.abs() <= leeway {
                report.ok("clock", text);
            } else {
                report.fail(
                    "clock",
                    text,
                    "synchronise this machine's clock (NTP): tokens would be refused as not yet valid or expired",
                );
            }
        }
        Ok(None) => report.warn("clock", "the provider sent no Date header to compare with"),
        Err(error) => report.skip("clock", format!("no answer to compare with ({error})")),
    }
}

async fn keys(appid: &AppId, report: &mut Report) {
    match appid.refresh_keys().await {
        Ok(0) => report.fail(
            "signing keys",
            "the key set holds no usable RSA signing key (RS256, 2048 bits or more)",
            "APPID_OAUTH_SERVER_URL must be App ID's; a generic provider must publish RSA keys",
        ),
        Ok(count) => report.ok("signing keys", format!("{count} usable RS256 key(s) fetched")),
        Err(error) => report.fail(
            "signing keys",
            format!("the key set could not be read: {error}"),
            "check that jwks_uri of the discovery document answers from this machine",
        ),
    }
}

/// The client credentials, by a code exchange that must fail: a made-up code is refused
/// with `invalid_grant` once the client is authenticated, with `invalid_client` before.
async fn client_credentials(appid: &AppId, report: &mut Report) {
    match appid.exchange_code("doctor-made-up-code", None).await {
        Err(error) if error.is_invalid_grant() => {
            report.ok("client secret", "the token endpoint authenticated APPID_CLIENT_ID with its secret");
            if let ProviderError::Status { status, .. } = error {
                report.info(
                    "token errors",
                    format!(
                        "a refused code is answered HTTP {status} invalid_grant (UNCONFIRMED for App ID \
                         in our notes; the app reads 400 and 401 alike)"
                    ),
                );
            }
        }
        Err(ProviderError::Status { status: 400 | 401, error: Some(code), .. })
            if code == "invalid_client" =>
        {
            report.fail(
                "client secret",
                "the token endpoint refused the client (invalid_client)",
                CREDENTIALS_FIX,
            )
        }
        Err(ProviderError::Status { status: 401, error: None, .. }) => {
            report.fail("client secret", "the token endpoint refused the client (401)", CREDENTIALS_FIX)
        }
        Err(error) => {
            report.warn("client secret", format!("cannot tell, the token endpoint answered: {error}"))
        }
        Ok(_) => report.warn("client secret", "the token endpoint accepted a made-up code"),
    }
}

/// What `/revoke` answers for a token it does not know (logout revokes refresh tokens).
async fn revocation(appid: &AppId, report: &mut Report) {
    match appid.metadata().await.map(|m| m.revocation_endpoint.is_some()) {
        Ok(true) => {}
        _ => return report.skip("revocation", "the provider has no revocation endpoint"),
    }
    let unknown = RefreshToken::new("doctor-made-up-refresh-token".to_string());
    match appid.revoke_refresh_token(&unknown).await {
        Ok(()) => report.info(
            "revocation",
            "an unknown token is answered 2xx, as RFC 7009 says (UNCONFIRMED for App ID in our notes)",
        ),
        Err(error) => report.info(
            "revocation",
            format!("an unknown token is answered {error}; logout logs such answers and completes anyway"),
        ),
    }
}

async fn api_key(appid: &AppId, report: &mut Report) -> bool {
    match appid.check_api_key().await {
        Ok(()) => {
            report.ok("IAM API key", "IAM issued a token for IBM_CLOUD_APIKEY");
            true
        }
        Err(ProviderError::Status { status, .. }) if (400..500).contains(&status) => {
            report.fail(
                "IAM API key",
                format!("IAM refused IBM_CLOUD_APIKEY (HTTP {status})"),
                "create an API key (IBM Cloud console: Manage, Access (IAM), API keys) and set IBM_CLOUD_APIKEY to it",
            );
            false
        }
        Err(error) => {
            report.fail(
                "IAM API key",
                format!("IAM: {error}"),
                "check IBM_CLOUD_IAM_URL and that this machine reaches it",
            );
            false
        }
    }
}

/// A refused management call, with the fix for its status.
fn management_failed(report: &mut Report, check: &str, what: &str, error: &ProviderError) {
    match error {
        ProviderError::Status { status: 403, .. } => report.fail(
            check,
            format!("{what}: 403, the API key's identity lacks the Reader role"),
            READER_FIX,
        ),
        ProviderError::Status { status: 404, .. } => report.fail(
            check,
            format!("{what}: a plain 404 (not App ID's answer), the region, tenant or path is wrong"),
            "check APPID_MANAGEMENT_URL, or APPID_OAUTH_SERVER_URL it is derived from",
        ),
        ProviderError::Status { status: 401, .. } => report.fail(
            check,
            format!("{what}: 401 with a fresh IAM token"),
            "the API key must belong to the account of this App ID instance",
        ),
        other => {
            report.fail(check, format!("{what}: {other}"), "check that the management API answers from here")
        }
    }
}

async fn roles_readable(appid: &AppId, report: &mut Report) -> bool {
    match appid.management_json("management_roles", &["roles"]).await {
        Ok(body) => {
            let count = body.get("roles").and_then(Value::as_array).map_or(0, Vec::len);
            report.ok(
                "management API",
                format!("the roles list is readable ({count} role(s)): Reader role present"),
            );
            true
        }
        Err(error) => {
            management_failed(report, "management API", "reading the roles list", &error);
            false
        }
    }
}

async fn redirect_uri(appid: &AppId, report: &mut Report) {
    let configured = appid.config().redirect_uri.as_str().to_string();
    let body = match appid.management_json("management_config", &["config", "redirect_uris"]).await {
        Ok(body) => body,
        Err(error) => return management_failed(report, "redirect URI", "reading the redirect URIs", &error),
    };
    let registered: Vec<&str> = body
        .get("redirectUris")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if registered.contains(&configured.as_str()) {
        report.ok("redirect URI", format!("{configured} is registered"));
    } else if let Some(pattern) = registered.iter().find(|p| p.contains('*') && glob_matches(p, &configured))
    {
        report.warn(
            "redirect URI",
            format!(
                "{configured} is allowed by the wildcard {pattern} (App ID advises exact URLs in production)"
            ),
        );
    } else {
        report.fail(
            "redirect URI",
            format!("APPID_REDIRECT_URI {configured} is not registered ({} URL(s) are)", registered.len()),
            format!(
                "App ID's console: Manage Authentication, Authentication Settings, Add web redirect URLs: {configured}"
            ),
        );
    }
}

/// `*` matches any run of characters, as in App ID's redirect URL patterns.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else { return false };
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

async fn token_configuration(appid: &AppId, report: &mut Report) {
    let config = appid.config();
    let body = match appid.management_json("management_config", &["config", "tokens"]).await {
        Ok(body) => body,
        Err(error) => {
            return management_failed(report, "token config", "reading the token configuration", &error)
        }
    };
    let access_secs = body.pointer("/access/expires_in").and_then(Value::as_u64).unwrap_or(3600);
    if body.pointer("/refresh/enabled").and_then(Value::as_bool).unwrap_or(false) {
        report.info("refresh tokens", "on: sessions are renewed silently until APPID_SESSION_MAX_AGE_SECS");
    } else {
        report.info(
            "refresh tokens",
            format!("off: a session ends when its access token expires ({access_secs} s), then users sign in again"),
        );
    }
    let mapped = ["/accessTokenClaims", "/idTokenClaims"]
        .iter()
        .filter_map(|path| body.pointer(path).and_then(Value::as_array))
        .flatten()
        .filter(|claim| claim.get("source").and_then(Value::as_str) == Some("roles"))
        .map(|claim| claim.get("destinationClaim").and_then(Value::as_str).unwrap_or("roles").to_string())
        .next();
    match (mapped, config.roles_source.uses_token()) {
        (Some(claim), true) if claim == config.roles_claim => {
            report.ok("roles in tokens", format!("yes, in claim `{claim}`, where APPID_ROLES_CLAIM reads them"))
        }
        (Some(claim), true) => report.fail(
            "roles in tokens",
            format!("the tenant puts roles in claim `{claim}`, APPID_ROLES_CLAIM reads `{}`", config.roles_claim),
            format!("set APPID_ROLES_CLAIM={claim}"),
        ),
        (None, true) => report.fail(
            "roles in tokens",
            "APPID_ROLES_SOURCE reads roles from tokens, and the tenant's tokens carry none",
            "add {\"source\": \"roles\"} to accessTokenClaims and idTokenClaims (management PUT /config/tokens), \
             or set APPID_ROLES_SOURCE=management_api",
        ),
        (Some(claim), false) => report.info(
            "roles in tokens",
            format!("yes, in claim `{claim}`: APPID_ROLES_SOURCE=token would save a management call per user"),
        ),
        (None, false) => report.info("roles in tokens", "no: roles come from the management API"),
    }
}

/// How the management API answers for a user it does not know: the app reads App ID's
/// JSON 404 as no roles, and any other 404 as a configuration error.
async fn unknown_user(appid: &AppId, report: &mut Report) {
    let sub = format!("00000000-0000-4000-8000-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    match appid.user_roles(&sub).await {
        Ok(_) => report.info(
            "roles, no user",
            "an unknown user reads as no roles (the body for a user without roles stays UNCONFIRMED in our notes)",
        ),
        Err(error) => report.warn("roles, no user", format!("an unknown user's roles: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn a_wildcard_matches_any_run_of_characters() {
        assert!(glob_matches("https://app.example.com/*", "https://app.example.com/afterauth"));
        assert!(glob_matches("https://*.example.com/afterauth", "https://app.example.com/afterauth"));
        assert!(!glob_matches("https://app.example.com/*", "https://evil.example.net/afterauth"));
        assert!(!glob_matches("https://*.example.com/x", "https://app.example.com/afterauth"));
    }
}
