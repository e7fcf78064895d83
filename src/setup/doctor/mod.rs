//! `rocket-appid doctor`: reads the app's configuration exactly as the app does, starts no
//! server, and checks it against the live provider, one line per check with the fix for
//! each failure. Secrets are shown as set or unset, never printed.

mod provider;
mod report;
mod sources;
mod store;
mod tenant;

use std::process::ExitCode;

use rocket::figment::Figment;

use super::session_key;
use crate::appid::AppId;
use crate::config::{validate, ProviderKind, RawSettings, RolesSource};
use crate::metrics::Metrics;
use report::Report;

/// Runs every check and prints the report; success only when no check failed.
pub async fn run() -> ExitCode {
    let figment = crate::config::figment();
    println!("rocket-appid doctor: this configuration against the live provider (no server is started)\n");
    let mut report = Report::default();
    let raw: RawSettings = match figment.extract_inner("appid") {
        Ok(raw) => raw,
        Err(error) if error.missing() => RawSettings::default(),
        Err(error) => {
            // figment's message may quote the value, which may be a secret: the name only.
            let field = error.path.iter().map(String::as_str).find(|p| *p != "appid").unwrap_or("appid");
            report.fail(
                "configuration",
                format!("APPID_{} has a value of the wrong type", field.to_ascii_uppercase()),
                "see the configuration table in README.md",
            );
            return report.finish();
        }
    };
    sources::print(&figment, &raw);
    println!("Checks:");
    session_keys(&figment, &raw, &mut report);
    let config = match validate(&raw) {
        Ok(config) => config,
        Err(problems) => {
            for problem in &problems.0 {
                report.fail(
                    "configuration",
                    format!("{} {}", problem.name, problem.what),
                    "set it as an environment variable or under [<profile>.appid] in Rocket.toml",
                );
            }
            return report.finish();
        }
    };
    report.ok("configuration", "every setting is valid");
    let mut config = config;
    if config.api_key.is_none() && config.provider == ProviderKind::Appid {
        // Roles come from tokens, so the app needs no API key; one that is set anyway lets
        // doctor read the tenant's configuration (redirect URIs, token claims).
        let with_key = RawSettings { roles_source: Some(RolesSource::ManagementApi), ..raw.clone() };
        if let Ok(checked) = validate(&with_key) {
            (config.api_key, config.iam_url) = (checked.api_key, checked.iam_url);
        }
    }
    store::check(&figment, &config, &mut report).await;
    match AppId::new(config, Metrics::new()) {
        Ok(appid) => provider::check(&appid, &mut report).await,
        Err(_) => report.fail(
            "HTTP client",
            "the HTTP client could not be built (TLS setup failed)",
            "check this machine's TLS libraries and CA certificates",
        ),
    }
    report.finish()
}

/// `SESSION_SECRET_KEY` (or Rocket's `secret_key`) and the previous key of a rotation.
fn session_keys(figment: &Figment, raw: &RawSettings, report: &mut Report) {
    let configured = raw.session_secret_key.as_deref().filter(|v| !v.trim().is_empty());
    let rocket_key = figment.extract_inner::<String>("secret_key").ok().filter(|v| !v.trim().is_empty());
    let (name, verdict) = match (configured, rocket_key.as_deref()) {
        (Some(value), _) => ("SESSION_SECRET_KEY", session_key::assess(value, false)),
        (None, Some(value)) => ("ROCKET_SECRET_KEY", session_key::assess(value, true)),
        (None, None) => ("SESSION_SECRET_KEY", Err("is not set: sessions would not survive a restart")),
    };
    match verdict {
        Ok(fingerprint) => report.ok(
            "session key",
            format!("{name} is strong enough (fingerprint {fingerprint}; every instance must show the same)"),
        ),
        Err(why) => report.fail(
            "session key",
            format!("{name} {why}"),
            "generate one with `openssl rand -base64 64` and keep it in a secret, never in Rocket.toml",
        ),
    }
    if let Some(previous) = raw.previous_session_secret_key.as_deref().filter(|v| !v.trim().is_empty()) {
        match session_key::assess(previous, false) {
            Ok(fingerprint) => report.ok(
                "previous key",
                format!("SESSION_SECRET_KEY_PREVIOUS is usable (fingerprint {fingerprint}); remove it after the rotation"),
            ),
            Err(why) => report.fail(
                "previous key",
                format!("SESSION_SECRET_KEY_PREVIOUS {why}"),
                "set it to the exact previous SESSION_SECRET_KEY, or unset it",
            ),
        }
    }
}
