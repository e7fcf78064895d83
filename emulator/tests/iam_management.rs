//! The IAM API-key token endpoint and the management role lookups it protects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appid_emulator::EmulatorConfig;
use common::*;
use serde_json::Value;

async fn iam(emu: &appid_emulator::RunningEmulator, grant: &str, key: &str) -> reqwest::Response {
    client().post(&emu.iam_token_url).form(&[("grant_type", grant), ("apikey", key)]).send().await.unwrap()
}

const GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";

#[tokio::test]
async fn the_iam_endpoint_issues_a_token_for_the_right_key_and_bxnim0415e_otherwise() {
    let emu = start().await;
    let key = emu.emulator.config().api_key.clone();
    let ok = iam(&emu, GRANT, &key).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["refresh_token"], "not_supported");
    assert_eq!(body["expires_in"], 3600);
    assert!((body["expiration"].as_i64().unwrap() - now() - 3600).abs() < 5);

    let bad = iam(&emu, GRANT, "wrong").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["errorCode"], "BXNIM0415E");
    assert_eq!(iam(&emu, "password", &key).await.status(), 400);
}

#[tokio::test]
async fn management_roles_need_a_live_iam_token() {
    let emu = start().await;
    let carol = emu.emulator.user_by_email("carol@example.com").unwrap();
    let url = format!("{}/users/{}/roles", emu.management_url, carol.sub);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    assert_eq!(client().get(&url).bearer_auth("made-up").send().await.unwrap().status(), 401);

    let key = emu.emulator.config().api_key.clone();
    let token: Value = iam(&emu, GRANT, &key).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let roles: Value = client().get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        roles["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["user", "admin"]);
    assert_eq!(roles["roles"][0]["id"], appid_emulator::role_id("user").as_str());

    emu.emulator.set_user_roles(&carol.sub, vec![]);
    let roles: Value = client().get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(roles["roles"].as_array().unwrap().len(), 0);

    let unknown = format!("{}/users/not-a-user/roles", emu.management_url);
    assert_eq!(client().get(&unknown).bearer_auth(&token).send().await.unwrap().status(), 404);
    let tenant = format!("{}/management/v4/other/users/{}/roles", emu.base_url, carol.sub);
    assert_eq!(client().get(&tenant).bearer_auth(&token).send().await.unwrap().status(), 404);

    emu.emulator.set_clock_offset(4000);
    assert_eq!(client().get(&url).bearer_auth(&token).send().await.unwrap().status(), 401);
    assert_eq!(emu.emulator.calls(appid_emulator::Endpoint::ManagementRoles), 7);
    assert_eq!(emu.emulator.calls(appid_emulator::Endpoint::IamToken), 1);
}

async fn iam_token(emu: &appid_emulator::RunningEmulator) -> String {
    let key = emu.emulator.config().api_key.clone();
    let token: Value = iam(emu, GRANT, &key).await.json().await.unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_tenant_configuration_reads_answer_in_app_ids_shapes() {
    let config = EmulatorConfig {
        redirect_uris: vec!["http://127.0.0.1:8000/afterauth".into()],
        refresh_tokens: true,
        roles_claim: true,
        ..EmulatorConfig::default()
    };
    let emu = start_with(config).await;
    let token = iam_token(&emu).await;
    let get = |path: &str| client().get(format!("{}{path}", emu.management_url)).bearer_auth(&token).send();
    let uris: Value = get("/config/redirect_uris").await.unwrap().json().await.unwrap();
    assert_eq!(uris["redirectUris"], serde_json::json!(["http://127.0.0.1:8000/afterauth"]));
    let tokens: Value = get("/config/tokens").await.unwrap().json().await.unwrap();
    assert_eq!(tokens["refresh"]["enabled"], true);
    assert_eq!(tokens["access"]["expires_in"], 3600);
    assert_eq!(tokens["accessTokenClaims"], serde_json::json!([{"source": "roles"}]));
    emu.emulator.set_refresh_tokens(false);
    let tokens: Value = get("/config/tokens").await.unwrap().json().await.unwrap();
    assert_eq!(tokens["refresh"]["enabled"], false);
    // Like every management call: a live IAM token, and App ID's plain 404 for another tenant.
    let anonymous = client().get(format!("{}/config/tokens", emu.management_url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let other = format!("{}/management/v4/other/config/redirect_uris", emu.base_url);
    assert_eq!(client().get(&other).bearer_auth(&token).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn an_api_key_without_the_reader_role_gets_403_from_every_management_call() {
    let emu = start_with(EmulatorConfig { api_key_reader: false, ..EmulatorConfig::default() }).await;
    let token = iam_token(&emu).await;
    let carol = emu.emulator.user_by_email("carol@example.com").unwrap();
    for path in ["/roles".to_string(), format!("/users/{}/roles", carol.sub), "/config/tokens".into()] {
        let answer = client().get(format!("{}{path}", emu.management_url)).bearer_auth(&token).send().await;
        assert_eq!(answer.unwrap().status(), 403, "{path}");
    }
}

/// `GET /roles` names the application each role's access is for; a role for another
/// application grants this client's tokens none of its scopes.
#[tokio::test]
async fn the_tenants_roles_name_the_application_of_their_access() {
    let mut config = appid_emulator::EmulatorConfig::default();
    config.roles.push(appid_emulator::RoleDef::new("reports", &["report"]).for_application("other-app"));
    let emu = start_with(config).await;
    let key = emu.emulator.config().api_key.clone();
    let token: Value = iam(&emu, GRANT, &key).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/roles", emu.management_url);
    let roles: Value = client().get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let access = |name: &str| {
        let role = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap();
        role["access"][0]["application_id"].as_str().unwrap().to_owned()
    };
    assert_eq!(access("user"), emu.emulator.config().client_id);
    assert_eq!(access("reports"), "other-app");
}
