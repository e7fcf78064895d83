//! `rocket-appid doctor`: the real binary run as a process against a real emulator, for a
//! tenant configured as the app expects and for each mistake an operator makes. Each test
//! checks the exit status, the line that names the problem, and that no secret is printed.

use appid_emulator::{EmulatorConfig, RunningEmulator};

use crate::common::{app_process_against, free_port};

/// The app's port in its redirect URI; doctor starts no server, so nothing binds it.
const PORT: u16 = 8123;
/// The session key `app_process` gives the binary.
const SESSION_KEY: &str = "a passphrase of more than thirty-two characters";

fn redirect_uri() -> String {
    format!("http://127.0.0.1:{PORT}/afterauth")
}

/// An emulator whose tenant registers the app's redirect URI.
fn registered() -> EmulatorConfig {
    EmulatorConfig { redirect_uris: vec![redirect_uri()], ..EmulatorConfig::default() }
}

/// Runs `rocket-appid doctor` configured for `idp`, with `vars` set on top; returns whether
/// it exited 0 and what it printed.
async fn doctor(idp: &RunningEmulator, vars: &[(&str, &str)]) -> (bool, String) {
    let mut command = app_process_against(idp, PORT);
    command.arg("doctor");
    for (name, value) in vars {
        command.env(name, value);
    }
    // Off the runtime's thread: the emulator answers on it while the binary waits.
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The report line of `check` (`  <verdict> <check> <text>`), which must exist.
fn line<'a>(output: &'a str, check: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.get(8..).is_some_and(|rest| rest.starts_with(&format!("{check:<18} "))))
        .unwrap_or_else(|| panic!("no line for {check} in:\n{output}"))
}

fn verdict<'a>(output: &'a str, check: &str) -> &'a str {
    line(output, check).split_whitespace().next().unwrap_or_default()
}

/// Neither the emulator's secrets nor the session key nor `more` appear anywhere.
fn assert_no_secret(output: &str, idp: &RunningEmulator, more: &[&str]) {
    let config = idp.emulator.config();
    for secret in [config.client_secret.as_str(), config.api_key.as_str(), SESSION_KEY].iter().chain(more) {
        assert!(!output.contains(secret), "a secret was printed:\n{output}");
    }
}

#[tokio::test]
async fn doctor_passes_against_a_tenant_configured_as_the_app_expects() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let (ok, output) = doctor(&idp, &[]).await;
    assert!(ok, "{output}");
    for check in [
        "session key",
        "configuration",
        "discovery",
        "clock",
        "signing keys",
        "client secret",
        "IAM API key",
        "management API",
        "redirect URI",
    ] {
        assert_eq!(verdict(&output, check), "ok", "{check}:\n{output}");
    }
    assert!(line(&output, "refresh tokens").contains("off"), "{output}");
    assert!(line(&output, "roles in tokens").contains("no: roles come from the management API"), "{output}");
    assert!(line(&output, "token errors").contains("HTTP 400 invalid_grant"), "{output}");
    assert!(output.contains("doctor: every check passed"), "{output}");
    assert_no_secret(&output, &idp, &[]);
}

#[tokio::test]
async fn doctor_prints_each_setting_with_where_it_came_from_and_secrets_only_as_set() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let (_, output) = doctor(&idp, &[("APPID_ROLES_TTL_SECS", "120")]).await;
    let setting = |key: &str| {
        output
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("appid.{key} ")))
            .unwrap_or_else(|| panic!("no {key} in:\n{output}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(output.contains("Effective configuration (profile \"debug\")"), "{output}");
    assert_eq!(
        setting("client_id"),
        format!(
            "appid.client_id = {} (environment variable APPID_CLIENT_ID)",
            idp.emulator.config().client_id
        )
    );
    assert_eq!(
        setting("client_secret"),
        "appid.client_secret = set (environment variable APPID_CLIENT_SECRET)"
    );
    assert_eq!(
        setting("session_secret_key"),
        "appid.session_secret_key = set (environment variable SESSION_SECRET_KEY)"
    );
    assert_eq!(setting("metrics_token"), "appid.metrics_token = unset (default)");
    // An environment variable wins over Rocket.toml; a profile's own table over [default].
    assert_eq!(
        setting("roles_ttl_secs"),
        "appid.roles_ttl_secs = 120 (environment variable APPID_ROLES_TTL_SECS)"
    );
    assert_eq!(setting("pkce"), "appid.pkce = auto (Rocket.toml [default.appid])");
    assert_eq!(setting("emulator"), "appid.emulator = true (Rocket.toml [debug.appid])");
    assert_eq!(setting("session_store"), "appid.session_store = cookie (default)");
    assert_no_secret(&output, &idp, &[]);
}

#[tokio::test]
async fn doctor_names_a_wrong_region_or_tenant() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let elsewhere = format!("{}/oauth/v4/0000aaaa-0000-4000-8000-000000000000", idp.base_url);
    let (ok, output) = doctor(&idp, &[("APPID_OAUTH_SERVER_URL", &elsewhere)]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "discovery"), "FAIL", "{output}");
    assert!(line(&output, "discovery").contains("answered 404"), "{output}");
    assert!(output.contains("the region or tenant id in APPID_OAUTH_SERVER_URL is wrong"), "{output}");
    assert_no_secret(&output, &idp, &[]);
}

#[tokio::test]
async fn doctor_names_an_issuer_that_is_not_the_configured_url() {
    // The provider publishes itself as localhost; the app is configured with 127.0.0.1.
    let port = free_port();
    let config =
        EmulatorConfig { port, public_base_url: Some(format!("http://localhost:{port}")), ..registered() };
    let idp = appid_emulator::spawn(config).await.unwrap();
    let configured = format!("http://127.0.0.1:{port}/oauth/v4/{}", idp.emulator.config().tenant_id);
    let (ok, output) = doctor(&idp, &[("APPID_OAUTH_SERVER_URL", &configured)]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "discovery"), "FAIL", "{output}");
    assert!(
        line(&output, "discovery")
            .contains(&format!("the issuer is {}, not APPID_OAUTH_SERVER_URL", idp.oauth_server_url)),
        "{output}"
    );
    assert_no_secret(&output, &idp, &[]);
}

#[tokio::test]
async fn doctor_names_an_unregistered_redirect_uri() {
    let config =
        EmulatorConfig { redirect_uris: vec!["https://app.example.com/afterauth".into()], ..registered() };
    let idp = appid_emulator::spawn(config).await.unwrap();
    let (ok, output) = doctor(&idp, &[]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "redirect URI"), "FAIL", "{output}");
    assert!(
        line(&output, "redirect URI")
            .contains(&format!("APPID_REDIRECT_URI {} is not registered", redirect_uri())),
        "{output}"
    );
    assert!(output.contains("Add web redirect URLs"), "{output}");
    assert_no_secret(&output, &idp, &[]);
}

#[tokio::test]
async fn doctor_names_an_api_key_without_the_reader_role() {
    let idp = appid_emulator::spawn(EmulatorConfig { api_key_reader: false, ..registered() }).await.unwrap();
    let (ok, output) = doctor(&idp, &[]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "IAM API key"), "ok", "{output}");
    assert_eq!(verdict(&output, "management API"), "FAIL", "{output}");
    assert!(
        line(&output, "management API").contains("403, the API key's identity lacks the Reader role"),
        "{output}"
    );
    assert!(output.contains("the Reader service role on this App ID instance"), "{output}");
    assert_no_secret(&output, &idp, &[]);
}

#[tokio::test]
async fn doctor_names_an_api_key_that_iam_refuses() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let wrong = "an-api-key-iam-has-never-seen";
    let (ok, output) = doctor(&idp, &[("IBM_CLOUD_APIKEY", wrong)]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "IAM API key"), "FAIL", "{output}");
    assert!(line(&output, "IAM API key").contains("IAM refused IBM_CLOUD_APIKEY (HTTP 400)"), "{output}");
    assert_no_secret(&output, &idp, &[wrong]);
}

#[tokio::test]
async fn doctor_names_a_client_secret_the_token_endpoint_refuses() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let wrong = "a-client-secret-app-id-never-issued";
    let (ok, output) = doctor(&idp, &[("APPID_CLIENT_SECRET", wrong)]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "client secret"), "FAIL", "{output}");
    assert!(line(&output, "client secret").contains("refused the client (invalid_client)"), "{output}");
    assert!(output.contains("APPID_CLIENT_ID, APPID_CLIENT_SECRET"), "{output}");
    assert_no_secret(&output, &idp, &[wrong]);
}

#[tokio::test]
async fn doctor_names_a_weak_session_key() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    for weak in ["short-key-s3cret", "abababababababababababababababababab"] {
        let (ok, output) = doctor(&idp, &[("SESSION_SECRET_KEY", weak)]).await;
        assert!(!ok, "{output}");
        assert_eq!(verdict(&output, "session key"), "FAIL", "{output}");
        assert!(
            line(&output, "session key").starts_with("  FAIL  session key        SESSION_SECRET_KEY "),
            "{output}"
        );
        assert!(output.contains("openssl rand -base64 64"), "{output}");
        assert_no_secret(&output, &idp, &[weak]);
    }
}

#[tokio::test]
async fn doctor_fails_when_roles_are_read_from_tokens_that_carry_none() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let (ok, output) = doctor(&idp, &[("APPID_ROLES_SOURCE", "token")]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "roles in tokens"), "FAIL", "{output}");
    let mapped = appid_emulator::spawn(EmulatorConfig { roles_claim: true, ..registered() }).await.unwrap();
    let (ok, output) = doctor(&mapped, &[("APPID_ROLES_SOURCE", "token")]).await;
    assert!(ok, "{output}");
    assert_eq!(verdict(&output, "roles in tokens"), "ok", "{output}");
    // With roles from tokens the app needs no API key; the one set still checks the tenant.
    assert_eq!(verdict(&output, "redirect URI"), "ok", "{output}");
}

#[tokio::test]
async fn doctor_names_a_clock_outside_the_leeway_of_the_providers_date() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    idp.emulator.set_clock_offset(-600);
    let (ok, output) = doctor(&idp, &[]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "clock"), "FAIL", "{output}");
    let clock = line(&output, "clock");
    assert!(clock.contains("this machine is +60") && clock.contains("(leeway 60 s)"), "{output}");
    assert!(output.contains("synchronise this machine's clock (NTP)"), "{output}");
}

#[tokio::test]
async fn doctor_names_a_session_store_that_does_not_answer_without_printing_its_url() {
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let url = format!("redis://app:store-password-123@127.0.0.1:{}/0", free_port());
    let (ok, output) = doctor(&idp, &[("APPID_STORE_URL", url.as_str())]).await;
    assert!(!ok, "{output}");
    assert_eq!(verdict(&output, "session store"), "FAIL", "{output}");
    assert!(line(&output, "session store").contains("does not answer"), "{output}");
    assert_no_secret(&output, &idp, &["store-password-123"]);

    let (_, output) = doctor(&idp, &[]).await;
    assert_eq!(verdict(&output, "session store"), "info", "in-process: {output}");
}

#[tokio::test]
async fn doctor_finds_a_redis_that_answers() {
    let Ok(url) = std::env::var("RAPPID_TEST_REDIS_URL") else {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("RAPPID_TEST_REDIS_URL is required under CI=true (.ci/run starts a Redis)");
        }
        println!("SKIPPED: RAPPID_TEST_REDIS_URL is not set");
        return;
    };
    let idp = appid_emulator::spawn(registered()).await.unwrap();
    let (ok, output) =
        doctor(&idp, &[("APPID_STORE_URL", url.as_str()), ("APPID_SESSION_STORE", "server")]).await;
    assert!(ok, "{output}");
    assert_eq!(verdict(&output, "session store"), "ok", "{output}");
    assert!(line(&output, "session store").contains("sessions and deny-list"), "{output}");
}
