//! Where roles come from (`appid.roles_source`): App ID's management API (the default),
//! the roles claim of the verified tokens (no API key needed), or both.

use std::time::Duration;

use appid_emulator::{EmulatorConfig, Endpoint};
use rocket::http::Status;
use serde_json::json;

use crate::common::*;

fn with_roles_claim(on: bool) -> EmulatorConfig {
    EmulatorConfig { roles_claim: on, ..EmulatorConfig::default() }
}

/// The management API and IAM calls the emulator has answered.
fn management_calls(app: &TestApp) -> u64 {
    app.idp.emulator.calls(Endpoint::ManagementRoles) + app.idp.emulator.calls(Endpoint::IamToken)
}

async fn page(app: &TestApp, path: &str) -> (Status, String) {
    let response = app.get(path).await;
    (response.status(), response.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn by_default_roles_come_from_the_management_api_even_when_tokens_carry_a_roles_claim() {
    let app = spawn_app_with(with_roles_claim(true), json!({ "roles_ttl_secs": 1 })).await;
    app.login_as(ALICE, "/auth_route").await;
    assert!(app.idp.emulator.calls(Endpoint::ManagementRoles) >= 1);
    // Taken away in App ID: the token still says "user", the management API no longer does.
    let alice = app.idp.emulator.user_by_email(ALICE).unwrap();
    app.idp.emulator.set_user_roles(&alice.sub, vec![]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn token_source_reads_the_roles_claim_without_an_api_key_or_management_calls() {
    let app = spawn_app_with(
        with_roles_claim(true),
        json!({ "roles_source": "token", "ibm_cloud_apikey": null, "iam_url": null }),
    )
    .await;
    app.login_as(CAROL, "/auth_route").await;
    let (status, body) = page(&app, "/auth_route").await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains(">admin<") && body.contains(">user<"), "both of Carol's roles are shown");

    // A user whose token has no role is refused, as with the management API.
    app.logout().await;
    app.login_as(BOB, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Forbidden);
    assert_eq!(management_calls(&app), 0, "token mode never calls IAM or the management API");
}

#[rocket::async_test]
async fn token_source_roles_change_at_the_next_login_not_before() {
    let app =
        spawn_app_with(with_roles_claim(true), json!({ "roles_source": "token", "roles_ttl_secs": 1 })).await;
    app.login_as(ALICE, "/auth_route").await;
    let alice = app.idp.emulator.user_by_email(ALICE).unwrap();
    app.idp.emulator.set_user_roles(&alice.sub, vec!["admin".into()]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The session's token still carries the roles of its login.
    let (_, body) = page(&app, "/auth_route").await;
    assert!(body.contains(">user<") && !body.contains(">admin<"));
    // A new login brings tokens with the new roles.
    app.logout().await;
    app.login_as(ALICE, "/auth_route").await;
    let (_, body) = page(&app, "/auth_route").await;
    assert!(body.contains(">admin<") && !body.contains(">user<"));
    assert_eq!(management_calls(&app), 0);
}

#[rocket::async_test]
async fn token_source_without_the_claim_in_the_tokens_grants_no_role() {
    // App ID's default token configuration has no roles claim: everyone gets 403 until it is
    // turned on (README: "Roles in tokens").
    let app = spawn_app_with(with_roles_claim(false), json!({ "roles_source": "token" })).await;
    app.login_as(CAROL, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Forbidden);
    assert_eq!(management_calls(&app), 0);
}

#[rocket::async_test]
async fn both_sources_grant_the_union() {
    let app =
        spawn_app_with(with_roles_claim(true), json!({ "roles_source": "both", "roles_ttl_secs": 1 })).await;
    app.login_as(ALICE, "/auth_route").await;
    // App ID now says "admin", Alice's token still says "user": she has both.
    let alice = app.idp.emulator.user_by_email(ALICE).unwrap();
    app.idp.emulator.set_user_roles(&alice.sub, vec!["admin".into()]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = page(&app, "/auth_route").await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains(">admin<") && body.contains(">user<"), "the union of both sources");
    assert!(app.idp.emulator.calls(Endpoint::ManagementRoles) >= 2);
}

#[rocket::async_test]
async fn both_sources_without_the_claim_behave_like_the_management_api() {
    let app = spawn_app_with(with_roles_claim(false), json!({ "roles_source": "both" })).await;
    app.login_as(ALICE, "/auth_route").await;
    let (status, body) = page(&app, "/auth_route").await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains(">user<"));
}

#[rocket::async_test]
async fn the_api_key_is_required_only_when_the_management_api_is_used() {
    let idp = appid_emulator::spawn(EmulatorConfig::default()).await.unwrap();
    let ignites = |overrides| async {
        match rocket::local::asynchronous::Client::tracked(rocket_appid::build(app_figment(&idp, overrides)))
            .await
        {
            Ok(_) => true,
            // `kind()` marks the error as handled (Rocket panics on unhandled launch errors).
            Err(error) => {
                let _ = error.kind();
                false
            }
        }
    };
    let no_key = json!({ "ibm_cloud_apikey": null });
    assert!(!ignites(no_key.clone()).await, "the default source needs IBM_CLOUD_APIKEY");
    assert!(!ignites(json!({ "ibm_cloud_apikey": null, "roles_source": "both" })).await);
    assert!(ignites(json!({ "ibm_cloud_apikey": null, "roles_source": "token" })).await);
}

/// Issue 19 item 2, against the emulator: a management URL with the wrong tenant gets the
/// plain-text 404 App ID answers there. Read as "no role", every user would get a 403 and
/// nobody would learn why; it is a configuration error: the 503 page, and `/ready` says why.
#[rocket::async_test]
async fn a_wrong_management_url_is_a_configuration_error_not_no_role() {
    let base = EmulatorConfig::default();
    let idp = appid_emulator::spawn(base).await.unwrap();
    let wrong = format!("{}/management/v4/another-tenant", idp.emulator.base_url());
    let client = rocket::local::asynchronous::Client::tracked(rocket_appid::build(app_figment(
        &idp,
        json!({ "management_url": wrong }),
    )))
    .await
    .unwrap();
    let start = visit(&client, "/auth_route").await;
    let authorization = url::Url::parse(&location(&start)).unwrap();
    drop(start);
    let callback = sign_in(&authorization, ALICE).await;
    let response = client.get(callback).dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable, "not a session without roles");
    assert!(response.into_string().await.unwrap().contains(UNAVAILABLE));
    assert!(idp.emulator.calls(Endpoint::ManagementRoles) >= 1);
    let ready = client.get("/ready").dispatch().await;
    let body: serde_json::Value = serde_json::from_str(&ready.into_string().await.unwrap()).unwrap();
    assert_eq!(body["configuration_error"], "mgmt_not_found", "{body}");
}
