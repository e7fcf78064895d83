//! Discovery, the authorization page and the authorization-code grant (with PKCE).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Issue 19 item 4: App ID's discovery for web apps lists no
/// `code_challenge_methods_supported`; the emulator's default mirrors it.
#[tokio::test]
async fn discovery_has_app_id_shape_and_lists_no_pkce_method_by_default() {
    let emu = start().await;
    let doc: Value = get_json(format!("{}/.well-known/openid-configuration", emu.oauth_server_url)).await;
    assert_eq!(doc["issuer"], emu.oauth_server_url.as_str());
    assert_eq!(doc["token_endpoint"], format!("{}/token", emu.oauth_server_url));
    assert_eq!(doc["jwks_uri"], format!("{}/publickeys", emu.oauth_server_url));
    assert_eq!(doc["management_endpoint"], emu.management_url.as_str());
    assert!(doc.get("code_challenge_methods_supported").is_none(), "as App ID's");
    assert_eq!(doc["id_token_signing_alg_values_supported"][0], "RS256");
    assert!(doc.get("introspection_endpoint").is_none());
    assert!(doc.get("end_session_endpoint").is_none());
    assert!(emu.oauth_server_url.starts_with("http://127.0.0.1:"));
    assert_eq!(emu.emulator.calls(appid_emulator::Endpoint::Discovery), 1);
}

/// PKCE tests ask for it: then discovery lists S256 (and only S256).
#[tokio::test]
async fn discovery_advertises_s256_when_configured() {
    let emu = start_with(appid_emulator::EmulatorConfig {
        pkce_advertised: true,
        ..appid_emulator::EmulatorConfig::default()
    })
    .await;
    let doc: Value = get_json(format!("{}/.well-known/openid-configuration", emu.oauth_server_url)).await;
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
}

#[tokio::test]
async fn an_unknown_tenant_is_404_everywhere() {
    let emu = start().await;
    for path in ["/oauth/v4/nope/.well-known/openid-configuration", "/oauth/v4/nope/publickeys"] {
        let r = client().get(format!("{}{path}", emu.base_url)).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
}

#[tokio::test]
async fn the_code_flow_issues_tokens_that_verify_with_app_id_claims() {
    let emu = start().await;
    let location = login_location(&emu, &auth_params(&emu), "alice@example.com").await;
    assert!(location.starts_with(REDIRECT));
    assert!(location.contains("state=st4te"));
    let code =
        url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let resp = token_form(
        &emu,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("refresh_token").is_none());

    let (header, access) = verify(&emu, body["access_token"].as_str().unwrap()).await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["ver"], 4);
    assert!(header["kid"].as_str().unwrap().starts_with("appId-"));
    let alice = emu.emulator.user_by_email("alice@example.com").unwrap();
    assert_eq!(access["iss"], emu.oauth_server_url.as_str());
    assert_eq!(access["aud"][0], emu.emulator.config().client_id.as_str());
    assert_eq!(access["sub"], alice.sub.as_str());
    assert_eq!(access["tenant"], emu.emulator.config().tenant_id.as_str());
    assert_eq!(access["amr"][0], "cloud_directory");
    let scope = access["scope"].as_str().unwrap();
    assert!(scope.starts_with("openid appid_default"));
    assert!(scope.split(' ').any(|s| s == "read"));
    assert!(!scope.split(' ').any(|s| s == "write"));
    assert_eq!(body["scope"], scope);
    assert!(access.get("roles").is_none());
    assert!((access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap()) == 3600);

    let (_, id) = verify(&emu, body["id_token"].as_str().unwrap()).await;
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(id["given_name"], "Alice");
    assert_eq!(id["family_name"], "Example");
    assert_eq!(id["identities"][0]["provider"], "cloud_directory");
}

#[tokio::test]
async fn a_code_can_be_redeemed_only_once() {
    let emu = start().await;
    let code = login_code(&emu, &auth_params(&emu), "bob@example.com").await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    assert_eq!(token_form(&emu, &form).await.status(), 200);
    let again = token_form(&emu, &form).await;
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_redirect_uri_different_from_the_authorization_request_is_invalid_grant() {
    let emu = start().await;
    let code = login_code(&emu, &auth_params(&emu), "bob@example.com").await;
    let resp = token_form(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8000/other"),
        ],
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

fn pkce_params(emu: &appid_emulator::RunningEmulator, verifier: &str) -> Vec<(String, String)> {
    let mut params = auth_params(emu);
    params.push(("code_challenge".into(), URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))));
    params.push(("code_challenge_method".into(), "S256".into()));
    params
}

#[tokio::test]
async fn pkce_succeeds_with_the_right_verifier_and_fails_with_a_wrong_one() {
    let emu = start().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = login_code(&emu, &pkce_params(&emu, verifier), "carol@example.com").await;
    let ok = token_form(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(ok.status(), 200);

    let code = login_code(&emu, &pkce_params(&emu, verifier), "carol@example.com").await;
    let wrong = token_form(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "wrongwrongwrongwrongwrongwrongwrongwrongwrong"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_verifier_for_a_code_without_challenge_is_invalid_grant() {
    let emu = start().await;
    let code = login_code(&emu, &auth_params(&emu), "alice@example.com").await;
    let resp = token_form(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        ],
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_plain_code_challenge_method_is_refused_with_an_error_redirect() {
    let emu = start().await;
    let mut params = auth_params(&emu);
    params.push(("code_challenge".into(), "x".repeat(43)));
    params.push(("code_challenge_method".into(), "plain".into()));
    let resp = client()
        .get(with_params(&format!("{}/authorization", emu.oauth_server_url), &params))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = resp.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with(REDIRECT) && loc.contains("error=invalid_request") && loc.contains("state=st4te")
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_rejected_with_401_invalid_client() {
    let emu = start().await;
    let resp = client()
        .post(format!("{}/token", emu.oauth_server_url))
        .basic_auth(&emu.emulator.config().client_id, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");
    let none = client()
        .post(format!("{}/token", emu.oauth_server_url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn the_token_endpoint_accepts_form_multipart_and_json_bodies() {
    let emu = start().await;
    let url = format!("{}/token", emu.oauth_server_url);

    let code = login_code(&emu, &auth_params(&emu), "alice@example.com").await;
    let form = token_form(
        &emu,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(form.status(), 200);

    let code = login_code(&emu, &auth_params(&emu), "alice@example.com").await;
    let boundary = "XyZzyBoundary42";
    let mut body = String::new();
    for (k, v) in [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)]
    {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let multipart = client()
        .post(&url)
        .header("Authorization", basic(&emu))
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), 200);

    let code = login_code(&emu, &auth_params(&emu), "alice@example.com").await;
    let json = client()
        .post(&url)
        .header("Authorization", basic(&emu))
        .json(
            &serde_json::json!({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200);
    assert!(json.json::<Value>().await.unwrap()["id_token"].is_string());
}

#[tokio::test]
async fn bad_clients_and_redirect_uris_get_a_400_page_not_a_redirect() {
    let emu = start().await;
    let url = format!("{}/authorization", emu.oauth_server_url);
    for (key, value) in [("client_id", "someone-else"), ("redirect_uri", "https://evil.example/cb")] {
        let mut params = auth_params(&emu);
        params.retain(|(k, _)| k != key);
        params.push((key.into(), value.into()));
        let resp = client().get(with_params(&url, &params)).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
    }
    let mut params = auth_params(&emu);
    params.retain(|(k, _)| k != "response_type");
    params.push(("response_type".into(), "token".into()));
    let resp = client().get(with_params(&url, &params)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let loc = resp.headers()["location"].to_str().unwrap();
    assert!(loc.contains("error=unsupported_response_type") && loc.contains("state=st4te"));
}

#[tokio::test]
async fn the_login_page_lists_users_escapes_input_and_carries_the_parameters() {
    let emu = start().await;
    let mut params = auth_params(&emu);
    params.retain(|(k, _)| k != "state");
    params.push(("state".into(), "<script>\"x".into()));
    let page = client()
        .get(with_params(&format!("{}/authorization", emu.oauth_server_url), &params))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Development identity provider"));
    assert!(page.contains("not for production"));
    assert!(page.contains("carol@example.com") && page.contains("admin"));
    assert!(page.contains("value=\"&lt;script&gt;&quot;x\""));
    assert!(!page.contains("<script>"));
    assert!(page.contains("name=\"login_hint\" value=\"alice@example.com\""));
    assert!(page.contains("name=\"nonce\" value=\"n0nce\""));
}

#[tokio::test]
async fn an_unknown_email_signs_in_a_new_user_without_roles_and_a_stable_sub() {
    let emu = start().await;
    let mut params = auth_params(&emu);
    params.retain(|(k, _)| k != "state");
    let location = login_location(&emu, &params, "dave@example.org").await;
    assert!(!location.contains("state="));
    let dave = emu.emulator.user_by_email("dave@example.org").unwrap();
    assert!(dave.roles.is_empty());
    assert_eq!(dave.sub, appid_emulator::TestUser::from_email("dave@example.org").sub);
}
