//! Introspection, userinfo, refresh rotation, revocation, logout and the test knobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appid_emulator::{EmulatorConfig, Endpoint};
use common::*;
use serde_json::Value;

async fn sign_in(emu: &appid_emulator::RunningEmulator, email: &str) -> Value {
    let code = login_code(emu, &auth_params(emu), email).await;
    let resp =
        token_form(emu, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn introspect(emu: &appid_emulator::RunningEmulator, token: &str) -> bool {
    let body: Value = client()
        .post(format!("{}/introspect", emu.oauth_server_url))
        .header("Authorization", basic(emu))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["active"].as_bool().unwrap()
}

#[tokio::test]
async fn introspection_reports_live_tokens_active_and_revoked_or_foreign_ones_inactive() {
    let emu = start().await;
    let tokens = sign_in(&emu, "alice@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(introspect(&emu, access).await);
    assert!(!introspect(&emu, "garbage").await);
    let forged = appid_emulator::jwt::SigningKey::generate("other")
        .unwrap()
        .sign_claims(&serde_json::json!({"iss": emu.oauth_server_url, "exp": now() + 60}));
    assert!(!introspect(&emu, &forged).await);
    emu.emulator.revoke_access_token(access);
    assert!(!introspect(&emu, access).await);
    let unauthenticated = client()
        .post(format!("{}/introspect", emu.oauth_server_url))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(emu.emulator.calls(Endpoint::Introspect), 5);
}

#[tokio::test]
async fn userinfo_answers_for_a_valid_access_token_and_401_otherwise() {
    let emu = start().await;
    let tokens = sign_in(&emu, "carol@example.com").await;
    let url = format!("{}/userinfo", emu.oauth_server_url);
    let info: Value = client()
        .get(&url)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "carol@example.com");
    assert_eq!(info["sub"], emu.emulator.user_by_email("carol@example.com").unwrap().sub.as_str());
    for bad in [Some("nope"), tokens["id_token"].as_str(), None] {
        let mut req = client().get(&url);
        if let Some(t) = bad {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_when_enabled_and_revoked_ones_fail() {
    let emu = start_with(EmulatorConfig { refresh_tokens: true, ..EmulatorConfig::default() }).await;
    let first = sign_in(&emu, "alice@example.com").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let resp = token_form(&emu, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(resp.status(), 200);
    let second: Value = resp.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert!(second["id_token"].is_string());
    let reused = token_form(&emu, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let revoke = client()
        .post(format!("{}/revoke", emu.oauth_server_url))
        .header("Authorization", basic(&emu))
        .form(&[("token", rt2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert!(revoke.text().await.unwrap().is_empty());
    let after = token_form(&emu, &[("grant_type", "refresh_token"), ("refresh_token", &rt2)]).await;
    assert_eq!(after.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn the_refresh_grant_is_refused_when_refresh_tokens_are_disabled() {
    let emu = start().await;
    let resp = token_form(&emu, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    let odd = token_form(&emu, &[("grant_type", "password")]).await;
    assert_eq!(odd.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn a_negative_clock_offset_produces_already_expired_tokens() {
    let emu = start().await;
    emu.emulator.set_clock_offset(-7200);
    let tokens = sign_in(&emu, "alice@example.com").await;
    let (_, claims) = verify(&emu, tokens["access_token"].as_str().unwrap()).await;
    assert!(claims["exp"].as_i64().unwrap() < now());
    emu.emulator.set_clock_offset(0);
    assert!(!introspect(&emu, tokens["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn a_shorter_access_token_ttl_applies_to_new_tokens() {
    let emu = start().await;
    emu.emulator.set_access_token_ttl(60);
    let tokens = sign_in(&emu, "alice@example.com").await;
    assert_eq!(tokens["expires_in"], 60);
    let (_, c) = verify(&emu, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
}

#[tokio::test]
async fn rotating_the_signing_key_changes_the_kid_and_drops_the_old_key() {
    let emu = start().await;
    let before = sign_in(&emu, "alice@example.com").await;
    let old_kid = emu.emulator.signing_key().kid().to_owned();
    emu.emulator.rotate_signing_key();
    let jwks: Value = get_json(format!("{}/publickeys", emu.oauth_server_url)).await;
    let kids: Vec<&str> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 1);
    assert_ne!(kids[0], old_kid);
    assert!(!introspect(&emu, before["access_token"].as_str().unwrap()).await);
    let after = sign_in(&emu, "alice@example.com").await;
    let (header, _) = verify(&emu, after["access_token"].as_str().unwrap()).await;
    assert_eq!(header["kid"], kids[0]);
}

#[tokio::test]
async fn the_roles_claim_and_role_scopes_follow_the_users_roles() {
    let emu = start_with(EmulatorConfig { roles_claim: true, ..EmulatorConfig::default() }).await;
    let tokens = sign_in(&emu, "carol@example.com").await;
    let (_, access) = verify(&emu, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(access["roles"], serde_json::json!(["user", "admin"]));
    let scope = access["scope"].as_str().unwrap();
    assert_eq!(scope.matches(" read").count(), 1, "scopes are deduplicated: {scope}");
    assert!(scope.ends_with("read write manage"));
    let (_, id) = verify(&emu, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["roles"], serde_json::json!(["user", "admin"]));

    let bob = emu.emulator.user_by_email("bob@example.com").unwrap();
    emu.emulator.set_user_roles(&bob.sub, vec!["admin".into()]);
    let tokens = sign_in(&emu, "bob@example.com").await;
    let (_, access) = verify(&emu, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(access["roles"], serde_json::json!(["admin"]));
}

#[tokio::test]
async fn client_credentials_yield_an_access_token_only() {
    let emu = start().await;
    let resp = token_form(&emu, &[("grant_type", "client_credentials")]).await;
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("id_token").is_none());
    let (_, claims) = verify(&emu, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], emu.emulator.config().client_id.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["appid_client_credentials"]), "as App ID's");
}

#[tokio::test]
async fn sso_logout_redirects_only_to_allowed_uris() {
    let emu = start().await;
    let client_id = emu.emulator.config().client_id.clone();
    let url = format!("{}/cloud_directory/sso/logout", emu.oauth_server_url);
    let ok = client()
        .get(with_params(
            &url,
            &[
                ("redirect_uri".into(), "http://localhost:8000/".into()),
                ("client_id".into(), client_id.clone()),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 302);
    assert_eq!(ok.headers()["location"], "http://localhost:8000/");
    let bad = client()
        .get(with_params(
            &url,
            &[("redirect_uri".into(), "https://evil.example/".into()), ("client_id".into(), client_id)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(emu.emulator.calls(Endpoint::SsoLogout), 2);
}

#[tokio::test]
async fn an_explicit_redirect_allow_list_is_matched_exactly() {
    let emu = start_with(EmulatorConfig {
        redirect_uris: vec!["https://app.example/afterauth?x=1".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let mut params = auth_params(&emu);
    params.retain(|(k, _)| k != "redirect_uri");
    params.push(("redirect_uri".into(), "https://app.example/afterauth?x=1".into()));
    let loc = login_location(&emu, &params, "alice@example.com").await;
    assert!(loc.starts_with("https://app.example/afterauth?x=1&code="));
    let url = format!("{}/authorization", emu.oauth_server_url);
    let resp = client().get(with_params(&url, &auth_params(&emu))).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn two_emulators_can_run_side_by_side_and_shut_down() {
    let a = start().await;
    let b = start().await;
    assert_ne!(a.base_url, b.base_url);
    assert_ne!(a.emulator.signing_key().kid(), b.emulator.signing_key().kid());
    a.shutdown.clone().notify();
    let home = client().get(&b.base_url).send().await.unwrap();
    assert!(home.text().await.unwrap().contains("alice@example.com"));
    assert_eq!(b.emulator.total_calls(), 0);
}

#[tokio::test]
async fn userinfo_accepts_the_access_and_id_token_form_of_app_ids_sdks() {
    let emu = start().await;
    let carol = sign_in(&emu, "carol@example.com").await;
    let bob = sign_in(&emu, "bob@example.com").await;
    let url = format!("{}/userinfo", emu.oauth_server_url);
    let (access, id) = (carol["access_token"].as_str().unwrap(), carol["id_token"].as_str().unwrap());
    let status = |value: String| {
        let url = url.clone();
        async move { client().get(&url).header("Authorization", value).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("Bearer {access} {id}")).await, 200);
    // Another user's id_token, an access token in the id_token's place, and a third part: refused.
    assert_eq!(status(format!("Bearer {access} {}", bob["id_token"].as_str().unwrap())).await, 401);
    assert_eq!(status(format!("Bearer {access} {access}")).await, 401);
    assert_eq!(status(format!("Bearer {access} {id} {id}")).await, 401);
}

#[tokio::test]
async fn invalid_grant_can_be_answered_with_401_and_profile_claims_left_to_userinfo() {
    let emu = start_with(EmulatorConfig {
        invalid_grant_status: 401,
        id_token_profile: false,
        ..EmulatorConfig::default()
    })
    .await;
    let tokens = sign_in(&emu, "alice@example.com").await;
    let (_, id) = verify(&emu, tokens["id_token"].as_str().unwrap()).await;
    assert!(id.get("name").is_none() && id.get("email").is_none(), "{id}");
    let info: Value = client()
        .get(format!("{}/userinfo", emu.oauth_server_url))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["name"].as_str(), info["email"].as_str()),
        (Some("Alice Example"), Some("alice@example.com"))
    );
    let resp = token_form(
        &emu,
        &[("grant_type", "authorization_code"), ("code", "no-such-code"), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
}
