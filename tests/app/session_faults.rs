//! Fault scenarios around the session (security.md §4: F6–F9, F12, F13): key rotation
//! and mismatched keys, a missing key, a session too large for the cookies, and a browser
//! that drops the cookie. None of them may loop or give a 500 page the user cannot act on.
//! (F16, two tabs logging in at once, is in tabs.rs; the previous key in key_rotation.rs.)

use appid_emulator::{EmulatorConfig, Endpoint, RoleDef, TestUser};
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::json;
use url::Url;

use crate::common::*;

/// The title of the login-loop guard's page.
const NOT_KEPT: &str = "Sign-in cookie not kept";

/// The same app against the same provider, with another session key (a restarted instance
/// after a key rotation, or a second instance configured differently). It keeps no cookies:
/// each request carries exactly the ones a test gives it.
async fn instance_with_key(app: &TestApp, key: &str) -> Client {
    app.bare_browser(json!({ "session_secret_key": key })).await
}

const ROTATED_KEY: &str = "the rotated session key, also long enough to be stretched";

/// Cookies set by `response`, as `name=value` for the next request of a cookie-less client.
fn set_cookies(response: &LocalResponse<'_>) -> Vec<Cookie<'static>> {
    response.cookies().iter().filter(|c| !c.value().is_empty()).map(|c| c.clone().into_owned()).collect()
}

#[rocket::async_test]
async fn f6_after_a_restart_with_a_rotated_key_sessions_are_absent_and_inflight_logins_restart() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    let session = app.client.cookies().get("appid_session").unwrap().clone().into_owned();
    // A login in flight when the instance restarts (started in a cookie-less browser).
    let before = instance_with_key(&app, "a test passphrase that is long enough to be stretched").await;
    let response = visit(&before, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let transaction = response.cookies().get("appid_login").unwrap().clone().into_owned();
    let authorization = Url::parse(&location(&response)).unwrap();
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;

    let restarted = instance_with_key(&app, ROTATED_KEY).await;
    let undecryptable = undecryptable_cookies(&restarted);
    let tokens = app.idp.emulator.calls(Endpoint::Token);

    // The old session counts as absent: a transparent new login (API: 401), never a 500.
    let response = replay(&restarted, std::slice::from_ref(&session), "text/html").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
    assert!(response.cookies().get("appid_session").is_none_or(|c| c.value().is_empty()));
    assert!(undecryptable_cookies(&restarted) > undecryptable, "counted");
    let response = replay(&restarted, std::slice::from_ref(&session), "application/json").await;
    assert_eq!(response.status(), Status::Unauthorized);

    // The in-flight callback: 400 with a way to start again, no code exchange.
    let response = restarted.get(callback).cookie(transaction).cookie(session).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.cookies().get("appid_session").is_none_or(|c| c.value().is_empty()));
    let body = response.into_string().await.unwrap();
    assert!(body.contains(REFUSED) && body.contains("Start again"), "{body}");
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), tokens, "no code exchange");
}

#[test]
fn f7_without_a_session_key_the_release_build_refuses_to_start_and_names_the_variable() {
    // Everything else is configured, so the key is the only problem named.
    let (ok, output) = run_binary(&[
        ("ROCKET_PROFILE", "release"),
        ("APPID_CLIENT_ID", "client"),
        ("APPID_CLIENT_SECRET", "secret-value-1"),
        ("APPID_OAUTH_SERVER_URL", "https://us-south.appid.cloud.ibm.com/oauth/v4/tenant-1"),
        ("APPID_REDIRECT_URI", "https://app.example.com/afterauth"),
        ("IBM_CLOUD_APIKEY", "api-key-value-1"),
    ]);
    assert!(!ok, "must exit non-zero:\n{output}");
    assert!(output.contains("SESSION_SECRET_KEY"), "names the variable:\n{output}");
    assert!(!output.contains("secret-value-1") && !output.contains("api-key-value-1"), "{output}");
}

#[rocket::async_test]
async fn f8_two_instances_with_different_keys_never_loop_and_the_mismatch_is_counted() {
    let app = spawn_app().await;
    let response = app.login_as(ALICE, "/auth_route").await;
    let marker = response.cookies().get("appid_signed_in").expect("the login marker").clone().into_owned();
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "instance A serves the session");
    let session = app.client.cookies().get("appid_session").unwrap().clone().into_owned();
    let instance_b = instance_with_key(&app, ROTATED_KEY).await;
    let undecryptable = undecryptable_cookies(&instance_b);

    // Right after the login (the marker is still there), B would only send the browser
    // round again: it says what is wrong instead.
    let response = replay(&instance_b, &[session.clone(), marker], "text/html").await;
    assert_eq!(response.status(), Status::InternalServerError);
    assert!(response.headers().get_one("Location").is_none(), "no redirect loop");
    assert!(response.into_string().await.unwrap().contains(NOT_KEPT));
    assert!(undecryptable_cookies(&instance_b) > undecryptable, "the flapping shows");

    // Later (no marker): the session is simply absent at B, a new login, never a 500.
    let response = replay(&instance_b, &[session], "text/html").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
    assert!(response.cookies().get("appid_session").is_none_or(|c| c.value().is_empty()));
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "A still serves it");
}

// F9 (missing or invalid configuration: one message naming every variable, exit non-zero)
// is covered by config::with_nothing_configured_the_app_exits_and_names_every_missing_setting
// and config::invalid_settings_are_named_without_repeating_their_values.

#[rocket::async_test]
async fn f12_an_access_token_too_large_for_the_cookie_ceiling_gives_the_session_too_large_page() {
    // Custom claims grow App ID's tokens: here 100 role names of 150 characters copied into
    // the tokens (the most the app takes from the management API), an access token of about
    // 20 KB: more than the default ceiling of 4 cookies holds (a 9 KB one fits: chunking.rs).
    let mut config = EmulatorConfig { roles_claim: true, ..EmulatorConfig::default() };
    let names: Vec<String> = (0..100).map(|i| format!("{i:03}-{}", "r".repeat(146))).collect();
    config.roles.extend(names.iter().map(|n| RoleDef::new(n, &["read"])));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    config.users.push(TestUser::new("big-claims-user", "Big Claims", "big@example.com", &refs));
    let app = spawn_app_with(config, json!({})).await;

    let response = app.login_as("big@example.com", "/auth_route").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Location").is_none());
    for set_cookie in response.headers().get("Set-Cookie") {
        assert!(set_cookie.len() <= 4096, "a {} byte cookie", set_cookie.len());
        assert!(!set_cookie.starts_with("appid_session"), "no session cookie at all, no chunk either");
        assert!(!set_cookie.starts_with("appid_signed_in="), "no login marker either");
    }
    let body = response.into_string().await.unwrap();
    assert!(body.contains("Session too large") && body.contains("administrator"), "{body}");
    assert!(app.client.cookies().get("appid_session").is_none());
    // The login itself went through (the page is about the size, not something else).
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 1);
}

#[rocket::async_test]
async fn f13_a_browser_that_drops_the_session_cookie_gets_an_explanation_not_a_loop() {
    let app = spawn_app().await;
    let browser = app.bare_browser(json!({})).await;
    // Start the login and sign in at the provider.
    let response = visit(&browser, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let transaction = set_cookies(&response);
    let authorization = Url::parse(&location(&response)).unwrap();
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let mut request = browser.get(callback);
    for cookie in transaction {
        request = request.cookie(cookie);
    }
    let response = request.dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "the login itself succeeds");
    assert_eq!(location(&response), "/auth_route");
    let kept: Vec<Cookie<'static>> =
        set_cookies(&response).into_iter().filter(|c| c.name() != "appid_session").collect();
    assert!(kept.iter().any(|c| c.name() == "appid_signed_in"), "the marker was set");

    // The browser follows the redirect without the session cookie it dropped.
    let logins = app.idp.emulator.calls(Endpoint::Authorization);
    let mut request = browser.get("/auth_route").header(Header::new("Accept", "text/html"));
    for cookie in kept {
        request = request.cookie(cookie);
    }
    let response = request.dispatch().await;
    assert_eq!(response.status(), Status::InternalServerError, "an explanation, not another 303");
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.cookies().get("appid_login").is_none(), "no new login transaction");
    assert!(
        response.cookies().get("appid_signed_in").is_some_and(|c| c.value().is_empty()),
        "marker removed"
    );
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let body = response.into_string().await.unwrap();
    assert!(body.contains(NOT_KEPT) && body.contains("did not keep the sign-in cookie"), "{body}");
    assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), logins);

    // Without the marker (it is removed, or expired) a visit starts a login as usual.
    let response = visit(&browser, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn f13_a_browser_that_keeps_the_cookie_never_sees_the_explanation() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    assert!(app.client.cookies().get("appid_signed_in").is_some());
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok);
    // The marker has done its job and is removed.
    assert!(response.cookies().get("appid_signed_in").is_some_and(|c| c.value().is_empty()));
    assert!(app.client.cookies().get("appid_signed_in").is_none());
}

// F16 (two tabs logging in at once) is in tabs.rs: both logins complete.
