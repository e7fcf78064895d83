//! R-S1/R-S2, B75–B81: what the guard does with each answer `/introspect` can give. A real
//! login against the emulator first; then the emulator's introspection endpoint is made to
//! answer something else (`Emulator::set_fault`).

use std::time::{Duration, Instant};

use appid_emulator::{EmulatorConfig, Endpoint, Fault};
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

use crate::common::*;

/// An app that introspects on every protected request, with ALICE logged in.
async fn logged_in(overrides: Value) -> TestApp {
    let mut settings = json!({ "introspection": "always" });
    if let (Some(base), Some(more)) = (settings.as_object_mut(), overrides.as_object()) {
        base.extend(more.clone());
    }
    let app = spawn_app_with(EmulatorConfig::default(), settings).await;
    let status = app.login_as(ALICE, "/auth_route").await.status();
    assert_eq!(status, Status::SeeOther, "the login completes");
    app
}

/// The sealed session cookie the test browser holds (its raw, encrypted value).
fn session_cookie(app: &TestApp) -> Option<String> {
    app.client.cookies().get("appid_session").map(|c| c.value().to_string())
}

/// 503 page with `Retry-After`, no redirect, the session cookie neither set nor changed.
async fn assert_unavailable_keeping_the_session(
    app: &TestApp,
    before: &Option<String>,
    response: LocalResponse<'_>,
) {
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Location").is_none(), "no login loop");
    assert_eq!(response.headers().get_one("Retry-After"), Some("30"));
    assert!(response.cookies().get("appid_session").is_none(), "no Set-Cookie for the session");
    assert!(response.into_string().await.unwrap().contains(UNAVAILABLE));
    assert!(before.is_some());
    assert_eq!(&session_cookie(app), before, "the session is kept: the user retries later");
}

/// Introspection answers `answer`: the protected page is a 503, the session survives.
async fn assert_introspection_answer_fails_closed(answer: Fault) {
    let app = logged_in(json!({})).await;
    let before = session_cookie(&app);
    let logins = app.idp.emulator.calls(Endpoint::Authorization);
    app.idp.emulator.set_fault(Endpoint::Introspect, answer);
    let response = app.get("/auth_route").await;
    assert_unavailable_keeping_the_session(&app, &before, response).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1, "asked once, not retried");
    assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), logins, "no new login was started");
}

#[rocket::async_test]
async fn b75_inactive_removes_the_session_and_a_browser_is_sent_to_log_in() {
    let app = logged_in(json!({})).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::json(200, &json!({ "active": false })));

    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&format!("{}/authorization?", app.idp.oauth_server_url)));
    drop(response);
    assert!(session_cookie(&app).is_none(), "the session cookie was removed");
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 2);
}

#[rocket::async_test]
async fn b75_inactive_gives_an_api_client_401_without_a_redirect() {
    let app = logged_in(json!({})).await;
    let logins = app.idp.emulator.calls(Endpoint::Authorization);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::json(200, &json!({ "active": false })));
    let response = app.get_with("/auth_route", &[("Accept", "application/json")]).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert!(response.headers().get_one("Location").is_none());
    // The refused session is removed for scripts too, so they stop sending it.
    let removal = response.cookies().get("appid_session").map(|c| c.value().to_string());
    assert_eq!(removal.as_deref(), Some(""), "a removal Set-Cookie for the session");
    assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), logins, "no login started");
}

#[rocket::async_test]
async fn b76_active_as_the_string_true_fails_closed() {
    assert_introspection_answer_fails_closed(Fault::json(200, &json!({ "active": "true" }))).await;
}

#[rocket::async_test]
async fn b76_active_as_the_number_1_fails_closed() {
    assert_introspection_answer_fails_closed(Fault::json(200, &json!({ "active": 1 }))).await;
}

#[rocket::async_test]
async fn b76_an_answer_without_active_fails_closed() {
    assert_introspection_answer_fails_closed(Fault::json(200, &json!({}))).await;
}

#[rocket::async_test]
async fn b77_an_html_answer_fails_closed_and_keeps_the_session() {
    assert_introspection_answer_fails_closed(Fault::body(200, "text/html", "<html>login</html>")).await;
}

#[rocket::async_test]
async fn b77_invalid_json_fails_closed_and_keeps_the_session() {
    assert_introspection_answer_fails_closed(Fault::body(200, "application/json", "{\"active\":tr")).await;
}

#[rocket::async_test]
async fn b77_an_empty_200_fails_closed_and_keeps_the_session() {
    assert_introspection_answer_fails_closed(Fault::body(200, "application/json", "")).await;
}

/// Introspection answers `status` every time: each protected request is a 503 until the
/// breaker (3 failures here) opens; then requests are 503 without asking the provider.
async fn assert_status_is_unavailable_and_counted_by_the_breaker(status: u16) {
    let app = logged_in(json!({ "breaker_failures": 3 })).await;
    let before = session_cookie(&app);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(status));
    for _ in 0..3 {
        let response = app.get("/auth_route").await;
        assert_unavailable_keeping_the_session(&app, &before, response).await;
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 3);
    let response = app.get("/auth_route").await;
    assert_unavailable_keeping_the_session(&app, &before, response).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 3, "the open breaker answered");
}

#[rocket::async_test]
async fn b78_introspection_500_is_503_with_retry_after_and_opens_the_breaker() {
    assert_status_is_unavailable_and_counted_by_the_breaker(500).await;
}

#[rocket::async_test]
async fn b78_introspection_502_is_503_with_retry_after_and_opens_the_breaker() {
    assert_status_is_unavailable_and_counted_by_the_breaker(502).await;
}

#[rocket::async_test]
async fn b78_introspection_429_is_503_with_retry_after_and_opens_the_breaker() {
    assert_status_is_unavailable_and_counted_by_the_breaker(429).await;
}

#[rocket::async_test]
async fn b78_introspection_429_with_retry_after_stops_calls_at_once() {
    let app = logged_in(json!({})).await;
    let before = session_cookie(&app);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(429).with_header("Retry-After", "60"));
    for _ in 0..3 {
        let response = app.get("/auth_route").await;
        assert_unavailable_keeping_the_session(&app, &before, response).await;
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1, "the provider asked us to wait");
}

#[rocket::async_test]
async fn b79_introspection_that_hangs_gives_503_within_the_timeout() {
    // The default request timeout (5 s) applies; R-O1 allows one more second.
    let app = logged_in(json!({})).await;
    let before = session_cookie(&app);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::delay(Duration::from_secs(30)));
    let started = Instant::now();
    let response = app.get("/auth_route").await;
    let elapsed = started.elapsed();
    assert_unavailable_keeping_the_session(&app, &before, response).await;
    assert!(elapsed >= Duration::from_secs(4), "the call was given its time: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "503 within the timeout: {elapsed:?}");
    app.idp.emulator.clear_fault(Endpoint::Introspect);
}

#[rocket::async_test]
async fn b81_active_true_for_an_expired_token_is_denied() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "introspection": "always", "clock_leeway_secs": 0 }),
    )
    .await;
    app.idp.emulator.set_access_token_ttl(1);
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    // Introspection would say yes; the token's own expiry decides.
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::json(200, &json!({ "active": true })));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let introspected = app.idp.emulator.calls(Endpoint::Introspect);

    let api = app.get_with("/auth_route", &[("Accept", "application/json")]).await;
    assert_eq!(api.status(), Status::Unauthorized);
    drop(api);
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
    drop(response);
    assert!(session_cookie(&app).is_none(), "the expired session was removed");
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), introspected, "not even asked");
}

#[rocket::async_test]
async fn r_s2_a_cached_answer_is_reused_and_a_failed_one_is_not_cached() {
    let app = spawn_app().await; // policy `cached`, 60 s
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(503).times(1));
    let before = session_cookie(&app);
    let response = app.get("/auth_route").await;
    assert_unavailable_keeping_the_session(&app, &before, response).await;
    // The failure was not remembered: the next request asks again and gets in.
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 2, "one failure, one cached success");
}
