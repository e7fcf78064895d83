//! R-S2 / F1, issue 18: signed-in users ride out an App ID outage for a bounded window. While
//! the provider cannot be asked, the last introspection answer (if active) and the last known
//! roles are served for `outage_window_secs` after they were read; then the 503 page. The
//! windows are scaled down to seconds (introspection TTL 1 s, window 4 s); the sleeps only
//! move past them, the assertions are about what the user gets.

use std::time::Duration;

use appid_emulator::{EmulatorConfig, Endpoint, Fault};
use rocket::http::Status;
use serde_json::{json, Value};

use crate::common::*;

/// Introspection answers are fresh this long (the smallest TTL there is).
const FRESH: Duration = Duration::from_millis(1100);
/// `outage_window_secs` in these tests.
const WINDOW_SECS: u64 = 4;

/// Settings for these tests, with `overrides` merged in.
fn settings(overrides: Value) -> Value {
    let mut settings =
        json!({ "introspection_ttl_secs": 1, "outage_window_secs": WINDOW_SECS, "metrics": true });
    if let (Some(base), Some(more)) = (settings.as_object_mut(), overrides.as_object()) {
        base.extend(more.clone());
    }
    settings
}

/// ALICE logged in, and her token introspected once (`active: true`) by a protected page.
async fn introspected(overrides: Value) -> TestApp {
    let app = spawn_app_with(EmulatorConfig::default(), settings(overrides)).await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1, "introspected once");
    app
}

/// Introspection answers 503 from now on.
fn introspection_down(app: &TestApp) {
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(503));
}

/// The 503 page with `Retry-After`, no redirect, the session kept.
async fn assert_unavailable(app: &TestApp, path: &str) {
    let response = app.get(path).await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Location").is_none(), "no login loop");
    assert!(response.headers().get_one("Retry-After").is_some());
    assert!(response.into_string().await.unwrap().contains(UNAVAILABLE));
    assert!(app.client.cookies().get("appid_session").is_some(), "the session is kept");
}

/// The protected page, served to ALICE.
async fn assert_served(app: &TestApp) {
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().await.unwrap().contains(ALICE));
}

async fn metrics(app: &TestApp) -> String {
    app.client.get("/metrics").dispatch().await.into_string().await.unwrap()
}

async fn ready(app: &TestApp) -> (Status, Value) {
    let response = app.client.get("/ready").dispatch().await;
    (response.status(), response.into_json().await.unwrap())
}

#[rocket::async_test]
async fn r_s2_provider_down_after_an_introspection_serves_within_the_window_then_503_then_again_when_back() {
    // A breaker that stays closed: this test is about the window, not the breaker.
    let app = introspected(json!({ "breaker_failures": 20 })).await;
    let logins = app.idp.emulator.calls(Endpoint::Authorization);
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    assert_served(&app).await;
    assert_served(&app).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 3, "each stale request asked first");

    tokio::time::sleep(Duration::from_secs(WINDOW_SECS)).await;
    assert_unavailable(&app, "/auth_route").await;

    app.idp.emulator.clear_fault(Endpoint::Introspect);
    assert_served(&app).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), logins, "no new login was needed");
}

#[rocket::async_test]
async fn r_s2_a_token_revoked_just_before_the_outage_is_refused() {
    let app = introspected(json!({})).await;
    let cookies = app.session_cookies();
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::json(200, &json!({ "active": false })));
    tokio::time::sleep(FRESH).await;
    let refused = app.get("/auth_route").await;
    assert_eq!(refused.status(), Status::SeeOther, "revoked: sent to log in");
    drop(refused);

    // The provider goes down; the revoked session's cookie comes back (another tab, a copy).
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    let browser = replay(&app.client, &cookies, "text/html").await;
    assert_eq!(browser.status(), Status::SeeOther, "still refused, not served stale");
    assert!(location(&browser).starts_with(&app.idp.oauth_server_url));
    drop(browser);
    let api = replay(&app.client, &cookies, "application/json").await;
    assert_eq!(api.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn r_s2_a_token_never_introspected_fails_closed_during_an_outage() {
    let app = spawn_app_with(EmulatorConfig::default(), settings(json!({}))).await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    introspection_down(&app);
    assert_unavailable(&app, "/auth_route").await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1);
}

#[rocket::async_test]
async fn r_s2_an_instance_that_never_saw_the_token_fails_closed_during_an_outage() {
    let app = introspected(json!({})).await;
    introspection_down(&app);
    // Another instance of the same deployment (same key): the cookie is valid there, but
    // that instance holds no answer about its token.
    let other = app.bare_browser(settings(json!({}))).await;
    let response = replay(&other, &app.session_cookies(), "text/html").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    drop(response);
    tokio::time::sleep(FRESH).await;
    assert_served(&app).await;
}

#[rocket::async_test]
async fn f1_roles_are_served_stale_within_the_window_and_503_beyond_it() {
    // Roles alone: no introspection, so only the management API is down.
    let app = spawn_app_with(
        EmulatorConfig::default(),
        settings(json!({ "introspection": "never", "roles_ttl_secs": 1 })),
    )
    .await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    assert_served(&app).await;
    let read = app.idp.emulator.calls(Endpoint::ManagementRoles);
    app.idp.emulator.set_fault(Endpoint::ManagementRoles, Fault::status(503));
    tokio::time::sleep(FRESH).await;
    assert_served(&app).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), read + 1, "asked, then served stale");
    let admin = app.get("/admin_route").await;
    assert_eq!(admin.status(), Status::Forbidden, "the last known roles, no more");
    drop(admin);
    assert!(metrics(&app).await.contains("rocket_appid_served_stale_total{cache=\"roles\"} "));

    tokio::time::sleep(Duration::from_secs(WINDOW_SECS)).await;
    assert_unavailable(&app, "/auth_route").await;
    app.idp.emulator.clear_fault(Endpoint::ManagementRoles);
    assert_served(&app).await;
}

#[rocket::async_test]
async fn f1_a_user_with_no_roles_known_gets_503_while_the_management_api_is_down() {
    let app = spawn_app_with(EmulatorConfig::default(), settings(json!({ "introspection": "never" }))).await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    app.idp.emulator.set_fault(Endpoint::ManagementRoles, Fault::status(503));
    // An instance that never read ALICE's roles.
    let other = app.bare_browser(settings(json!({ "introspection": "never" }))).await;
    let response = replay(&other, &app.session_cookies(), "text/html").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.into_string().await.unwrap().contains(UNAVAILABLE));
    assert_served(&app).await;
}

#[rocket::async_test]
async fn r_s2_an_open_breaker_counts_as_the_provider_cannot_be_asked() {
    let app = introspected(json!({ "breaker_failures": 2, "breaker_open_secs": 60 })).await;
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    assert_served(&app).await;
    assert_served(&app).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 3, "two failures: the breaker opens");
    assert_eq!(ready(&app).await.1["degraded"], json!(["introspect"]));
    // The provider would answer now, but the open breaker does not ask it: served stale.
    app.idp.emulator.clear_fault(Endpoint::Introspect);
    assert_served(&app).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 3, "not asked while the breaker is open");
    assert!(metrics(&app).await.contains("rocket_appid_served_stale_total{cache=\"introspection\"} 3"));
}

#[rocket::async_test]
async fn f1_a_flood_during_the_outage_makes_no_provider_calls_beyond_the_breakers() {
    let app = introspected(json!({ "breaker_failures": 3, "breaker_open_secs": 60 })).await;
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    for _ in 0..5 {
        let wave = (0..40).map(|_| async { app.get("/auth_route").await.status() });
        let statuses = rocket::futures::future::join_all(wave).await;
        assert!(statuses.iter().all(|s| *s == Status::Ok), "{statuses:?}");
    }
    let calls = app.idp.emulator.calls(Endpoint::Introspect) - 1;
    assert!((1..=3).contains(&calls), "200 requests, {calls} calls: at most the breaker's threshold");
    let metrics = metrics(&app).await;
    assert!(metrics.contains("rocket_appid_served_stale_total{cache=\"introspection\"} 200"), "{metrics}");
}

#[rocket::async_test]
async fn r_s2_with_introspection_always_the_last_answer_also_rides_out_an_outage() {
    let app = introspected(json!({ "introspection": "always" })).await;
    introspection_down(&app);
    assert_served(&app).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 2, "asked, then served stale");
    tokio::time::sleep(Duration::from_secs(WINDOW_SECS)).await;
    assert_unavailable(&app, "/auth_route").await;
}

#[rocket::async_test]
async fn r_s2_ready_stays_200_while_serving_stale_and_says_so() {
    let app = introspected(json!({})).await;
    assert_eq!(ready(&app).await, (Status::Ok, json!({ "status": "ready" })));
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    assert_served(&app).await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["serving_stale"], json!(["introspection"]));
}

#[tokio::test]
async fn r_s2_stale_serves_are_counted_and_logged_once_per_token_per_minute() {
    let (logs, _guard) = capture_logs();
    let app = introspected(json!({})).await;
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    for _ in 0..3 {
        assert_served(&app).await;
    }
    let metrics = metrics(&app).await;
    assert!(metrics.contains("rocket_appid_served_stale_total{cache=\"introspection\"} 3"), "{metrics}");
    let logged = logs.text();
    assert_eq!(logged.matches("served_stale").count(), 1, "logged once:\n{logged}");
    let token = app.session_json()["access_token"].as_str().unwrap().to_string();
    assert!(!logged.contains(&token), "no token in the log");
}

#[rocket::async_test]
async fn r_s2_an_outage_window_of_0_fails_closed_at_once() {
    let app = introspected(json!({ "outage_window_secs": 0 })).await;
    introspection_down(&app);
    tokio::time::sleep(FRESH).await;
    assert_unavailable(&app, "/auth_route").await;
    assert!(!metrics(&app).await.contains("rocket_appid_served_stale_total{"));
    assert_eq!(ready(&app).await, (Status::Ok, json!({ "status": "ready" })));
}
