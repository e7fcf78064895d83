//! Refresh tokens on/off and their lifetimes, rotation with and without reuse of the
//! previous token, no rotation, `/revoke`, and the emulated Cloud Directory SSO session with its logout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appid_emulator::{EmulatorConfig, Endpoint, RunningEmulator};
use common::*;
use serde_json::Value;

async fn sign_in(emu: &RunningEmulator) -> Value {
    let code = login_code(emu, &auth_params(emu), "alice@example.com").await;
    let resp =
        token_form(emu, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn refresh(emu: &RunningEmulator, token: &str) -> (u16, Value) {
    let resp = token_form(emu, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn revoke(emu: &RunningEmulator, auth: Option<String>, form: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().post(format!("{}/revoke", emu.oauth_server_url)).form(form);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn refresh_tokens_are_off_by_default_and_can_be_turned_on_and_off_at_runtime() {
    let emu = start().await;
    assert!(sign_in(&emu).await.get("refresh_token").is_none(), "App ID's default: none");
    emu.emulator.set_refresh_tokens(true);
    let tokens = sign_in(&emu).await;
    let rt = tokens["refresh_token"].as_str().expect("now issued").to_owned();
    assert!(emu.emulator.refresh_token_active(&rt));
    let (status, renewed) = refresh(&emu, &rt).await;
    assert_eq!(status, 200);
    assert!(renewed["access_token"].is_string() && renewed["id_token"].is_string());
    emu.emulator.set_refresh_tokens(false);
    let (status, body) = refresh(&emu, renewed["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
}

#[tokio::test]
async fn access_and_id_tokens_get_the_configured_lifetime_in_seconds_also_when_refreshed() {
    let emu = start_with(EmulatorConfig {
        refresh_tokens: true,
        access_token_ttl: 7,
        id_token_ttl: 7,
        ..EmulatorConfig::default()
    })
    .await;
    let tokens = sign_in(&emu).await;
    assert_eq!(tokens["expires_in"], 7);
    emu.emulator.set_access_token_ttl(42);
    let (_, renewed) = refresh(&emu, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(renewed["expires_in"], 42);
    let (_, access) = verify(&emu, renewed["access_token"].as_str().unwrap()).await;
    let (_, id) = verify(&emu, renewed["id_token"].as_str().unwrap()).await;
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), 42);
    assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), 42, "id = access lifetime");
    assert!(id.get("nonce").is_none(), "no nonce in a refreshed id_token");
    assert_eq!(id["sub"], access["sub"]);
}

#[tokio::test]
async fn a_refresh_token_expires_after_its_lifetime() {
    let emu = start_with(EmulatorConfig { refresh_tokens: true, ..EmulatorConfig::default() }).await;
    emu.emulator.set_refresh_token_ttl(60);
    let rt = sign_in(&emu).await["refresh_token"].as_str().unwrap().to_owned();
    emu.emulator.set_clock_offset(61);
    assert!(!emu.emulator.refresh_token_active(&rt));
    let (status, body) = refresh(&emu, &rt).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn rotation_refuses_the_previous_token_by_default_and_the_reuse_knob_keeps_it() {
    let emu = start_with(EmulatorConfig { refresh_tokens: true, ..EmulatorConfig::default() }).await;
    let rt1 = sign_in(&emu).await["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = refresh(&emu, &rt1).await;
    assert_eq!(status, 200);
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "a new refresh token on every use");
    let (status, body) = refresh(&emu, &rt1).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    emu.emulator.set_refresh_token_reuse(true);
    let (status, third) = refresh(&emu, &rt2).await;
    assert_eq!(status, 200);
    assert_ne!(third["refresh_token"].as_str().unwrap(), rt2, "still rotated");
    let (status, _) = refresh(&emu, &rt2).await;
    assert_eq!(status, 200, "the previous one stays valid with reuse on");
    assert!(emu.emulator.refresh_token_active(&rt2));
}

/// Without rotation (a provider setting RFC 6749 §6 allows; App ID rotates) a refresh
/// sends no new refresh token and the presented one keeps working.
#[tokio::test]
async fn without_rotation_a_refresh_sends_no_new_token_and_the_old_one_keeps_working() {
    let emu = start_with(EmulatorConfig {
        refresh_tokens: true,
        refresh_token_rotation: false,
        ..EmulatorConfig::default()
    })
    .await;
    let rt = sign_in(&emu).await["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, renewed) = refresh(&emu, &rt).await;
        assert_eq!(status, 200);
        assert!(renewed.get("refresh_token").is_none(), "{renewed}");
    }
    assert!(emu.emulator.refresh_token_active(&rt));
}

#[tokio::test]
async fn unknown_refresh_tokens_get_invalid_grant() {
    let emu = start_with(EmulatorConfig { refresh_tokens: true, ..EmulatorConfig::default() }).await;
    let (status, body) = refresh(&emu, "not-a-token").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn revoke_needs_client_authentication_answers_200_for_unknown_tokens_and_ends_the_token() {
    let emu = start_with(EmulatorConfig { refresh_tokens: true, ..EmulatorConfig::default() }).await;
    let rt = sign_in(&emu).await["refresh_token"].as_str().unwrap().to_owned();

    assert_eq!(revoke(&emu, None, &[("token", &rt)]).await.status(), 401);
    assert!(emu.emulator.refresh_token_active(&rt), "an unauthenticated revocation does nothing");
    assert_eq!(revoke(&emu, Some(basic(&emu)), &[]).await.status(), 400, "token is required");
    let unknown = revoke(&emu, Some(basic(&emu)), &[("token", "unknown")]).await;
    assert_eq!(unknown.status(), 200, "RFC 7009 §2.2");

    let revoked =
        revoke(&emu, Some(basic(&emu)), &[("token", &rt), ("token_type_hint", "refresh_token")]).await;
    assert_eq!(revoked.status(), 200);
    assert!(!emu.emulator.refresh_token_active(&rt));
    let (status, body) = refresh(&emu, &rt).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(emu.emulator.calls(Endpoint::Revoke), 4);
}

/// Signs in on the login page with SSO on; returns the SSO cookie (`name=value`).
async fn sign_in_with_sso(emu: &RunningEmulator) -> String {
    let mut form = auth_params(emu);
    form.push(("login_hint".into(), "alice@example.com".into()));
    let resp =
        client().post(format!("{}/authorization", emu.oauth_server_url)).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly"));
    set.split(';').next().unwrap().to_owned()
}

async fn authorize_with(emu: &RunningEmulator, cookie: &str) -> reqwest::Response {
    let url = with_params(&format!("{}/authorization", emu.oauth_server_url), &auth_params(emu));
    client().get(url).header("Cookie", cookie).send().await.unwrap()
}

async fn sso_logout(emu: &RunningEmulator, cookie: &str, redirect_uri: &str) -> reqwest::Response {
    let params = [
        ("redirect_uri".to_string(), redirect_uri.to_string()),
        ("client_id".to_string(), emu.emulator.config().client_id.clone()),
    ];
    let url = with_params(&format!("{}/cloud_directory/sso/logout", emu.oauth_server_url), &params);
    client().get(url).header("Cookie", cookie).send().await.unwrap()
}

#[tokio::test]
async fn an_sso_session_signs_the_user_in_again_until_sso_logout_ends_it() {
    let emu = start_with(EmulatorConfig {
        sso: true,
        logout_redirect_uris: vec!["http://127.0.0.1:8000/signed_out".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let cookie = sign_in_with_sso(&emu).await;
    assert_eq!(emu.emulator.sso_sessions(), 1);
    let silent = authorize_with(&emu, &cookie).await;
    assert_eq!(silent.status(), 302, "no login page while the SSO session lasts");
    assert!(silent.headers()["location"].to_str().unwrap().starts_with(&format!("{REDIRECT}?code=")));

    // A return URL that is not registered for logout: refused, the session stays.
    let refused = sso_logout(&emu, &cookie, "http://127.0.0.1:8000/afterauth").await;
    assert_eq!(refused.status(), 400);
    assert_eq!(emu.emulator.sso_sessions(), 1);

    let ended = sso_logout(&emu, &cookie, "http://127.0.0.1:8000/signed_out").await;
    assert_eq!(ended.status(), 302);
    assert_eq!(ended.headers()["location"], "http://127.0.0.1:8000/signed_out");
    assert!(ended.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"), "cookie removed");
    assert_eq!(emu.emulator.sso_sessions(), 0);
    let asks = authorize_with(&emu, &cookie).await;
    assert_eq!(asks.status(), 200, "the login page asks for the user again");
    assert_eq!(emu.emulator.calls(Endpoint::SsoLogout), 2);
}

#[tokio::test]
async fn without_sso_every_authorization_shows_the_login_page() {
    let emu = start().await;
    let mut form = auth_params(&emu);
    form.push(("login_hint".into(), "alice@example.com".into()));
    let resp =
        client().post(format!("{}/authorization", emu.oauth_server_url)).form(&form).send().await.unwrap();
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(authorize_with(&emu, "appid_emulator_sso=forged").await.status(), 200);
}

#[tokio::test]
async fn an_end_session_endpoint_is_listed_only_when_asked_for_and_ends_the_sso_session() {
    let plain = start().await;
    let doc = get_json(format!("{}/.well-known/openid-configuration", plain.oauth_server_url)).await;
    assert!(doc.get("end_session_endpoint").is_none(), "App ID lists none");

    let emu =
        start_with(EmulatorConfig { sso: true, end_session_endpoint: true, ..EmulatorConfig::default() })
            .await;
    let doc = get_json(format!("{}/.well-known/openid-configuration", emu.oauth_server_url)).await;
    let endpoint = doc["end_session_endpoint"].as_str().unwrap().to_owned();
    let cookie = sign_in_with_sso(&emu).await;
    let params = [
        ("post_logout_redirect_uri".to_string(), "http://127.0.0.1:8000/signed_out".to_string()),
        ("client_id".to_string(), emu.emulator.config().client_id.clone()),
    ];
    let ended = client().get(with_params(&endpoint, &params)).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(ended.status(), 302);
    assert_eq!(emu.emulator.sso_sessions(), 0);
    assert_eq!(authorize_with(&emu, &cookie).await.status(), 200);
}
