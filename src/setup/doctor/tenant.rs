//! The tenant's configuration as App ID's management API shows it to the API key: the
//! Reader role, the registered redirect URIs, the token configuration, and the answer for a
//! user it does not know.

use serde_json::Value;

use super::report::Report;
use crate::appid::{AppId, ProviderError};

/// What an API key needs on the App ID instance.
const READER_FIX: &str =
    "in IBM Cloud's console (Manage, Access (IAM)) give the user or service ID that owns \
     IBM_CLOUD_APIKEY the Reader service role on this App ID instance";

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

pub(super) async fn roles_readable(appid: &AppId, report: &mut Report) -> bool {
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

pub(super) async fn redirect_uri(appid: &AppId, report: &mut Report) {
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

pub(super) async fn token_configuration(appid: &AppId, report: &mut Report) {
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
pub(super) async fn unknown_user(appid: &AppId, report: &mut Report) {
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
