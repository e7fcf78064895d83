//! Configuration of the standalone emulator from `EMULATOR_*` variables, and its banner.

use std::net::IpAddr;

use crate::config::EmulatorConfig;
use crate::error::EmulatorError;
use crate::state::Emulator;

/// Port of the standalone emulator when `EMULATOR_PORT` is unset.
pub const DEFAULT_STANDALONE_PORT: u16 = 9000;

/// Builds a config from variables read through `var` (injectable for tests).
pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<EmulatorConfig, EmulatorError> {
    let mut cfg = EmulatorConfig { port: DEFAULT_STANDALONE_PORT, ..EmulatorConfig::default() };
    let get = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(v) = get("EMULATOR_PORT") {
        cfg.port =
            v.parse().map_err(|_| EmulatorError::Config("EMULATOR_PORT must be a port number".into()))?;
    }
    if let Some(v) = get("EMULATOR_ADDRESS") {
        cfg.address = v
            .parse::<IpAddr>()
            .map_err(|_| EmulatorError::Config("EMULATOR_ADDRESS must be an IP address".into()))?;
    }
    if let Some(v) = get("EMULATOR_CLIENT_ID") {
        cfg.client_id = v;
    }
    if let Some(v) = get("EMULATOR_CLIENT_SECRET") {
        cfg.client_secret = v;
    }
    if let Some(v) = get("EMULATOR_API_KEY") {
        cfg.api_key = v;
    }
    if let Some(v) = get("EMULATOR_API_KEY_READER") {
        cfg.api_key_reader = parse_bool("EMULATOR_API_KEY_READER", &v)?;
    }
    if let Some(v) = get("EMULATOR_REDIRECT_URIS") {
        cfg.redirect_uris =
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    }
    if let Some(v) = get("EMULATOR_REFRESH_TOKENS") {
        cfg.refresh_tokens = parse_bool("EMULATOR_REFRESH_TOKENS", &v)?;
    }
    for (name, slot) in [
        ("EMULATOR_ACCESS_TOKEN_TTL", &mut cfg.access_token_ttl),
        ("EMULATOR_REFRESH_TOKEN_TTL", &mut cfg.refresh_token_ttl),
    ] {
        if let Some(v) = get(name) {
            *slot = v
                .parse()
                .map_err(|_| EmulatorError::Config(format!("{name} must be a number of seconds")))?;
        }
    }
    // App ID's id tokens always live as long as its access tokens.
    cfg.id_token_ttl = cfg.access_token_ttl;
    if let Some(v) = get("EMULATOR_REFRESH_TOKEN_REUSE") {
        cfg.refresh_token_reuse = parse_bool("EMULATOR_REFRESH_TOKEN_REUSE", &v)?;
    }
    if let Some(v) = get("EMULATOR_REFRESH_TOKEN_ROTATION") {
        cfg.refresh_token_rotation = parse_bool("EMULATOR_REFRESH_TOKEN_ROTATION", &v)?;
    }
    if let Some(v) = get("EMULATOR_SSO") {
        cfg.sso = parse_bool("EMULATOR_SSO", &v)?;
    }
    if let Some(v) = get("EMULATOR_LOGOUT_REDIRECT_URIS") {
        cfg.logout_redirect_uris =
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    }
    if let Some(v) = get("EMULATOR_PKCE_ADVERTISED") {
        cfg.pkce_advertised = parse_bool("EMULATOR_PKCE_ADVERTISED", &v)?;
    }
    if let Some(v) = get("EMULATOR_ROLES_CLAIM") {
        cfg.roles_claim = parse_bool("EMULATOR_ROLES_CLAIM", &v)?;
    }
    if let Some(v) = get("EMULATOR_INVALID_GRANT_STATUS") {
        cfg.invalid_grant_status = match v.as_str() {
            "400" => 400,
            "401" => 401,
            _ => {
                return Err(EmulatorError::Config("EMULATOR_INVALID_GRANT_STATUS must be 400 or 401".into()))
            }
        };
    }
    if let Some(v) = get("EMULATOR_ID_TOKEN_PROFILE") {
        cfg.id_token_profile = parse_bool("EMULATOR_ID_TOKEN_PROFILE", &v)?;
    }
    Ok(cfg)
}

fn parse_bool(name: &str, v: &str) -> Result<bool, EmulatorError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(EmulatorError::Config(format!("{name} must be true or false"))),
    }
}

/// The text printed at startup: the variables an App ID app needs, and the test users.
pub(crate) fn banner(emu: &Emulator) -> String {
    let cfg = emu.config();
    let mut out = String::from(
        "# App ID emulator - development identity provider - not for production\n\
         # Point the app at it with:\n",
    );
    out.push_str(&format!(
        "APPID_OAUTH_SERVER_URL={}\nAPPID_CLIENT_ID={}\nAPPID_CLIENT_SECRET={}\n\
         IBM_CLOUD_APIKEY={}\nIBM_CLOUD_IAM_URL={}/identity/token\n# Test users:\n",
        emu.oauth_server_url(),
        cfg.client_id,
        cfg.client_secret,
        cfg.api_key,
        emu.base_url()
    ));
    for u in emu.users() {
        out.push_str(&format!("#   {} <{}> roles: [{}]\n", u.name, u.email, u.roles.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn token_lifetimes_reuse_and_sso_come_from_variables() {
        let cfg = from_env(|n| match n {
            "EMULATOR_ACCESS_TOKEN_TTL" => Some("120".into()),
            "EMULATOR_REFRESH_TOKEN_TTL" => Some("600".into()),
            "EMULATOR_REFRESH_TOKEN_REUSE" => Some("yes".into()),
            "EMULATOR_REFRESH_TOKEN_ROTATION" => Some("off".into()),
            "EMULATOR_SSO" => Some("on".into()),
            "EMULATOR_LOGOUT_REDIRECT_URIS" => Some("http://a/out".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((cfg.access_token_ttl, cfg.id_token_ttl, cfg.refresh_token_ttl), (120, 120, 600));
        assert!(cfg.refresh_token_reuse && cfg.sso && !cfg.refresh_token_rotation);
        assert_eq!(cfg.logout_redirect_uris, vec!["http://a/out"]);
        assert!(from_env(|n| (n == "EMULATOR_ACCESS_TOKEN_TTL").then(|| "soon".into())).is_err());
    }

    #[test]
    fn variables_override_the_defaults() {
        let cfg = from_env(|n| match n {
            "EMULATOR_PORT" => Some("9100".into()),
            "EMULATOR_REDIRECT_URIS" => Some("http://a/cb, http://b/cb".into()),
            "EMULATOR_REFRESH_TOKENS" => Some("true".into()),
            "EMULATOR_CLIENT_ID" => Some("cid".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.port, 9100);
        assert_eq!(cfg.redirect_uris, vec!["http://a/cb", "http://b/cb"]);
        assert!(cfg.refresh_tokens);
        assert_eq!(cfg.client_id, "cid");
    }

    #[test]
    fn the_invalid_grant_status_and_id_token_profile_come_from_variables() {
        let defaults = from_env(|_| None).unwrap();
        assert_eq!((defaults.invalid_grant_status, defaults.id_token_profile), (400, true));
        let cfg = from_env(|n| match n {
            "EMULATOR_INVALID_GRANT_STATUS" => Some("401".into()),
            "EMULATOR_ID_TOKEN_PROFILE" => Some("false".into()),
            "EMULATOR_API_KEY_READER" => Some("false".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((cfg.invalid_grant_status, cfg.id_token_profile), (401, false));
        assert!(defaults.api_key_reader && !cfg.api_key_reader);
        assert!(from_env(|n| (n == "EMULATOR_INVALID_GRANT_STATUS").then(|| "403".into())).is_err());
    }

    /// Issue 19 item 4: like App ID, the emulator lists no PKCE method unless asked to.
    #[test]
    fn pkce_is_not_advertised_unless_a_variable_asks_for_it() {
        assert!(!from_env(|_| None).unwrap().pkce_advertised);
        let cfg = from_env(|n| (n == "EMULATOR_PKCE_ADVERTISED").then(|| "true".into())).unwrap();
        assert!(cfg.pkce_advertised);
        assert!(from_env(|n| (n == "EMULATOR_PKCE_ADVERTISED").then(|| "S256".into())).is_err());
    }

    #[test]
    fn unset_variables_give_port_9000_and_bad_values_are_errors() {
        assert_eq!(from_env(|_| None).unwrap().port, 9000);
        assert!(from_env(|n| (n == "EMULATOR_ROLES_CLAIM").then(|| "maybe".into())).is_err());
    }

    #[test]
    fn the_banner_prints_app_id_variables_and_the_warning() {
        let emu = Emulator::new(EmulatorConfig::default()).unwrap();
        emu.set_base_url("http://127.0.0.1:9000".into());
        let text = banner(&emu);
        assert!(text.contains("not for production"));
        assert!(text.contains(&format!(
            "APPID_OAUTH_SERVER_URL=http://127.0.0.1:9000/oauth/v4/{}",
            emu.config().tenant_id
        )));
        assert!(text.contains(&format!("APPID_CLIENT_SECRET={}", emu.config().client_secret)));
        assert!(text.contains("IBM_CLOUD_IAM_URL=http://127.0.0.1:9000/identity/token"));
        assert!(text.contains("alice@example.com"));
    }
}
