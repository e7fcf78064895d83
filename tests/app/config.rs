//! Configuration problems: the process refuses to start and names every problem at once,
//! without printing any value.

use std::process::Command;

use rocket::figment::providers::Serialized;
use rocket::local::asynchronous::Client;
use serde_json::json;

/// Runs the real binary with a clean environment plus `vars`; returns (success, output).
fn run_app(vars: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rocket-appid"));
    command.env_clear().env("ROCKET_PROFILE", "release").env("ROCKET_PORT", "0").env("NO_COLOR", "1");
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("the binary runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn with_nothing_configured_the_app_exits_and_names_every_missing_setting() {
    let (ok, output) = run_app(&[]);
    assert!(!ok, "must exit non-zero");
    for name in [
        "SESSION_SECRET_KEY",
        "APPID_CLIENT_ID",
        "APPID_CLIENT_SECRET",
        "APPID_OAUTH_SERVER_URL",
        "APPID_REDIRECT_URI",
        "IBM_CLOUD_APIKEY",
    ] {
        assert!(output.contains(name), "{name} should be named in:\n{output}");
    }
}

#[test]
fn invalid_settings_are_named_without_repeating_their_values() {
    let (ok, output) = run_app(&[
        ("APPID_CLIENT_ID", "client"),
        ("APPID_CLIENT_SECRET", "CANARY-client-secret"),
        ("APPID_OAUTH_SERVER_URL", "http://appid.example.com/oauth/v4/CANARY-tenant"),
        ("APPID_REDIRECT_URI", "https://app.example.com/CANARY-path"),
        ("SESSION_SECRET_KEY", "CANARY-short"),
        ("IBM_CLOUD_APIKEY", "CANARY-api-key"),
    ]);
    assert!(!ok);
    for name in ["APPID_OAUTH_SERVER_URL", "APPID_REDIRECT_URI", "SESSION_SECRET_KEY"] {
        assert!(output.contains(name), "{name} should be named in:\n{output}");
    }
    assert!(!output.contains("CANARY"), "a value leaked into:\n{output}");
}

#[rocket::async_test]
async fn a_figment_without_appid_settings_does_not_ignite() {
    let figment = rocket::Config::figment().merge(Serialized::global("appid", json!({ "emulator": false })));
    let error = Client::tracked(rocket_appid::build(figment)).await.expect_err("ignition fails");
    // `kind()` also marks the error as handled (Rocket panics on unhandled launch errors).
    assert!(matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)));
}

#[test]
fn appid_emulator_true_starts_the_emulator_even_in_the_release_profile_and_says_so() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rocket-appid"))
        .env_clear()
        .env("ROCKET_PROFILE", "release")
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("PORT", "0")
        .env("NO_COLOR", "1")
        .env("APPID_EMULATOR", "true")
        .env("SESSION_SECRET_KEY", "a passphrase of more than thirty-two characters")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(line) if line.contains("DEVELOPMENT identity provider") => break,
            Ok(line) => seen.push(line),
            Err(_) if child.try_wait().unwrap().is_some() => break,
            Err(_) => {}
        }
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "the app should be serving; its output:\n{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.contains("APPID_EMULATOR is on in the `release` profile")), "{seen:?}");
}
