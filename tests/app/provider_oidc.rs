//! `provider = "oidc"` against the emulator: discovery only, nothing App ID-specific
//! called or required, roles from the token claim. (The interoperability run against an
//! independent OpenID provider is `tests/interop`.)

use appid_emulator::{EmulatorConfig, Endpoint};
use rocket::http::Status;
use serde_json::{json, Value};

use crate::common::*;

/// A generic OpenID client: no API key, no IAM URL, roles from the `roles` claim.
fn generic(extra: Value) -> Value {
    let mut settings = json!({ "provider": "oidc", "ibm_cloud_apikey": null, "iam_url": null });
    if let (Some(settings), Value::Object(extra)) = (settings.as_object_mut(), extra) {
        settings.extend(extra);
    }
    settings
}

fn with_claim(introspection_listed: bool) -> EmulatorConfig {
    EmulatorConfig { roles_claim: true, introspection_listed, ..EmulatorConfig::default() }
}

#[rocket::async_test]
async fn a_generic_provider_signs_users_in_with_roles_from_the_token_claim() {
    let app = spawn_app_with(with_claim(false), generic(json!({ "introspection": "always" }))).await;
    app.login_as(CAROL, "/auth_route").await;
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().await.unwrap();
    assert!(body.contains("carol@example.com") && body.contains(">admin<"));
    // Bob has no role in his token: signed in, but refused.
    app.logout().await;
    app.login_as(BOB, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Forbidden);

    let emulator = &app.idp.emulator;
    assert_eq!(emulator.calls(Endpoint::ManagementRoles) + emulator.calls(Endpoint::IamToken), 0);
    // Discovery lists no introspection endpoint: policy `always` becomes `never` (logged
    // once), rather than guessing App ID's path at another provider.
    assert_eq!(emulator.calls(Endpoint::Introspect), 0);
}

#[rocket::async_test]
async fn a_generic_provider_is_introspected_when_discovery_lists_the_endpoint() {
    let app = spawn_app_with(with_claim(true), generic(json!({ "introspection": "always" }))).await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    let asked = app.idp.emulator.calls(Endpoint::Introspect);
    assert!(asked >= 1, "the listed endpoint is used");
    // A token revoked at the provider stops working at once with policy `always`.
    let token = app.session_json()["access_token"].as_str().unwrap().to_string();
    app.idp.emulator.revoke_access_token(&token);
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther, "a revoked token means logging in again");
}

#[rocket::async_test]
async fn a_generic_provider_with_the_management_api_is_refused_at_launch() {
    let idp = appid_emulator::spawn(with_claim(false)).await.unwrap();
    for source in ["management_api", "both"] {
        let figment = app_figment(&idp, generic(json!({ "roles_source": source })));
        match rocket::local::asynchronous::Client::tracked(rocket_appid::build(figment)).await {
            Ok(_) => panic!("roles_source = {source} with provider = oidc must not launch"),
            Err(error) => assert!(matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_))),
        }
    }
}

#[rocket::async_test]
async fn app_id_rules_still_apply_to_app_id() {
    // The same emulator, as App ID: a generic issuer URL (no /oauth/v4/{tenant}) is refused.
    let idp = appid_emulator::spawn(with_claim(false)).await.unwrap();
    let figment = app_figment(&idp, json!({ "oauth_server_url": idp.emulator.base_url() }));
    match rocket::local::asynchronous::Client::tracked(rocket_appid::build(figment)).await {
        Ok(_) => panic!("an issuer URL without a tenant is not App ID's oAuthServerUrl"),
        Err(error) => assert!(matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_))),
    }
}

#[rocket::async_test]
async fn an_unknown_provider_or_roles_source_is_refused_at_launch() {
    let idp = appid_emulator::spawn(with_claim(false)).await.unwrap();
    for overrides in [json!({ "provider": "keycloak" }), json!({ "roles_source": "userinfo" })] {
        let figment = app_figment(&idp, overrides.clone());
        match rocket::local::asynchronous::Client::tracked(rocket_appid::build(figment)).await {
            Ok(_) => panic!("{overrides} must not launch"),
            Err(error) => assert!(matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_))),
        }
    }
}

/// The `scope` the authorization request of `app`'s next login asks for.
async fn requested_scope(app: &TestApp) -> String {
    let authorization = app.begin_login("/auth_route").await;
    authorization.query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned()).unwrap()
}

/// Issue 19 item 7: a standard provider releases profile claims only for the `profile`
/// and `email` scopes, so a generic provider is asked for them by default; App ID keeps
/// the Flask pattern's `openid`; both take `APPID_SCOPES`.
#[rocket::async_test]
async fn a_generic_provider_is_asked_for_openid_profile_and_email_and_scopes_are_configurable() {
    let app = spawn_app_with(with_claim(false), generic(json!({}))).await;
    assert_eq!(requested_scope(&app).await, "openid profile email");
    let app = spawn_app_with(with_claim(false), generic(json!({ "scopes": "openid email" }))).await;
    assert_eq!(requested_scope(&app).await, "openid email");
    let app = spawn_app_with(with_claim(false), json!({})).await;
    assert_eq!(requested_scope(&app).await, "openid", "App ID's default is unchanged");
    let app = spawn_app_with(with_claim(false), json!({ "scopes": "openid appid_readuserattr" })).await;
    assert_eq!(requested_scope(&app).await, "openid appid_readuserattr");
}

/// Issue 19 item 7: a provider whose id_token carries no name or e-mail has them read from
/// its userinfo endpoint, once, at login.
#[rocket::async_test]
async fn a_generic_provider_without_profile_claims_in_the_id_token_fills_them_from_userinfo_once() {
    let config = EmulatorConfig { id_token_profile: false, ..with_claim(false) };
    let app = spawn_app_with(config, generic(json!({}))).await;
    app.login_as(CAROL, "/auth_route").await;
    for _ in 0..2 {
        let response = app.get("/auth_route").await;
        assert_eq!(response.status(), Status::Ok);
        let body = response.into_string().await.unwrap();
        assert!(body.contains("Carol Example") && body.contains("carol@example.com"), "{body}");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::UserInfo), 1, "asked once, at login");
}

/// Issue 19 item 7: a userinfo answer about another subject is not used (OIDC Core §5.3.2);
/// the sign-in itself goes ahead without a name or e-mail.
#[rocket::async_test]
async fn a_userinfo_answer_for_another_subject_is_not_used() {
    let config = EmulatorConfig { id_token_profile: false, ..with_claim(false) };
    let app = spawn_app_with(config, generic(json!({}))).await;
    let other = json!({ "sub": "someone-else", "name": "Mallory Example", "email": "mallory@example.com" });
    app.idp.emulator.set_fault(Endpoint::UserInfo, appid_emulator::Fault::json(200, &other));
    app.login_as(CAROL, "/auth_route").await;
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().await.unwrap();
    assert!(!body.contains("Mallory") && !body.contains("mallory@"), "{body}");
    assert_eq!(app.idp.emulator.calls(Endpoint::UserInfo), 1);
}
