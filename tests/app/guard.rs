//! The `AuthorizedUser` guard on requests after login: expiry, key rotation,
//! introspection, API-style requests.

use std::time::Duration;

use appid_emulator::{EmulatorConfig, Endpoint};
use rocket::http::{Header, Status};
use serde_json::json;

use crate::common::*;

#[rocket::async_test]
async fn b10_an_anonymous_post_gets_401_and_no_login_redirect() {
    let app = spawn_app().await;
    let response = app.client.post("/auth_route").dispatch().await;
    // POST has no route here; the point is that nothing redirects to the provider
    assert!(response.headers().get_one("Location").is_none());
    assert!(app.client.cookies().get_private("appid_login").is_none());
}

#[rocket::async_test]
async fn b11_an_anonymous_json_request_gets_401_json_not_a_redirect() {
    let app = spawn_app().await;
    let response = app.get_with("/auth_route", &[("Accept", "application/json")]).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert!(response.headers().get_one("Location").is_none());
    assert_eq!(response.into_string().await.unwrap(), r#"{"error":"unauthenticated"}"#);

    let xhr = app.get_with("/auth_route", &[("X-Requested-With", "XMLHttpRequest")]).await;
    assert_eq!(xhr.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn an_expired_session_sends_the_browser_to_log_in_again() {
    let app = spawn_app().await;
    app.idp.emulator.set_access_token_ttl(1);
    app.login_as(ALICE, "/auth_route").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
}

#[rocket::async_test]
async fn after_a_key_rotation_tokens_with_the_new_kid_verify_after_one_key_refetch() {
    // Local verification only: the emulator's own introspection refuses tokens of a dropped key.
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "never" })).await;
    app.login_as(ALICE, "/auth_route").await;
    let fetched = app.idp.emulator.calls(Endpoint::PublicKeys);
    app.idp.emulator.rotate_signing_key();

    // The key set is cached (one hour), so the current session stays valid...
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    // ...and a token naming the new key makes the app fetch the keys once more.
    app.logout().await;
    let callback = app.login_as(CAROL, "/auth_route").await;
    assert_eq!(callback.status(), Status::SeeOther, "{:?}", callback.into_string().await);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 1);
}

#[rocket::async_test]
async fn with_introspection_always_a_revoked_token_ends_the_session() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "always" })).await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1);

    app.idp.emulator.revoke_access_token(&session_access_token(&app));
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn with_introspection_always_an_unreachable_provider_gives_503_not_a_loop() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "always" })).await;
    app.login_as(ALICE, "/auth_route").await;
    app.idp.shutdown.clone().notify();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert_eq!(response.headers().get_one("Retry-After"), Some("30"));
    assert!(response.into_string().await.unwrap().contains("Identity service unavailable"));
}

#[rocket::async_test]
async fn a_garbage_session_cookie_counts_as_no_session() {
    let app = spawn_app().await;
    let response = app
        .client
        .get("/auth_route")
        .cookie(rocket::http::Cookie::new(
            "appid_session",
            "bm90IGEgcmVhbCBzZXNzaW9uIGNvb2tpZSB2YWx1ZSBhdCBhbGwgYXQgYWxs",
        ))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn the_session_cookie_is_private_httponly_lax_and_lives_as_long_as_the_token() {
    let app = spawn_app().await;
    let callback = app.login_as(ALICE, "/auth_route").await;
    let set_cookie: Vec<&str> = callback.headers().get("Set-Cookie").collect();
    let session = set_cookie.iter().find(|c| c.starts_with("appid_session=")).expect("a session cookie");
    assert!(session.contains("HttpOnly"));
    assert!(session.contains("SameSite=Lax"));
    assert!(session.contains("Path=/"));
    assert!(session.contains("Max-Age=3") && !session.contains("Max-Age=604800"), "{session}");
    assert!(!session.contains("alice"), "the value is encrypted");
    assert!(
        set_cookie.iter().any(|c| c.starts_with("appid_login=") && c.contains("Max-Age=0")),
        "login state consumed"
    );
}

#[rocket::async_test]
async fn readiness_reports_ready_once_keys_are_loaded_and_stays_ready_when_the_provider_goes_down() {
    let app = spawn_app().await;
    // The warm-up after liftoff loads discovery and keys in the background.
    let mut status = Status::ServiceUnavailable;
    for _ in 0..50 {
        status = app.client.get("/ready").dispatch().await.status();
        if status == Status::Ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, Status::Ok);
    app.idp.shutdown.clone().notify();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.client.get("/ready").dispatch().await.status(), Status::Ok, "served from cache");
}

#[rocket::async_test]
async fn readiness_turns_ready_by_itself_when_the_provider_fails_at_first_and_then_answers() {
    let idp = appid_emulator::spawn(EmulatorConfig::default()).await.unwrap();
    // Discovery fails for the first attempts (the first fetch and its one retry); the
    // background task tries again with backoff, without any request asking for it.
    idp.emulator.set_fault(Endpoint::Discovery, appid_emulator::Fault::status(503).times(2));
    let client =
        rocket::local::asynchronous::Client::tracked(rocket_appid::build(app_figment(&idp, json!({}))))
            .await
            .unwrap();
    let ready = client.get("/ready").dispatch().await;
    assert_eq!(ready.status(), Status::ServiceUnavailable);
    assert!(ready.into_string().await.unwrap().contains("not_loaded"));
    let mut status = Status::ServiceUnavailable;
    for _ in 0..80 {
        status = client.get("/ready").dispatch().await.status();
        if status == Status::Ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, Status::Ok, "ready within the first backoff steps");
    assert_eq!(idp.emulator.calls(Endpoint::Discovery), 3, "failed twice, then loaded");
}

#[rocket::async_test]
async fn readiness_is_503_with_a_reason_while_the_provider_was_never_reached() {
    let app = spawn_app().await;
    app.idp.shutdown.clone().notify();
    // A fresh app whose provider is already gone.
    let figment = app_figment(&app.idp, json!({}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = rocket::local::asynchronous::Client::tracked(rocket_appid::build(figment)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = client.get("/ready").dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.into_string().await.unwrap().contains("discovery_not_loaded"));
}

#[rocket::async_test]
async fn with_introspection_never_steady_state_requests_make_no_provider_calls() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "never" })).await;
    app.login_as(ALICE, "/auth_route").await;
    let before = app.idp.emulator.total_calls();
    for _ in 0..50 {
        assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    }
    assert_eq!(app.idp.emulator.total_calls(), before, "tokens are verified locally with cached keys");
}

#[rocket::async_test]
async fn with_introspection_cached_a_token_is_introspected_once_per_ttl() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let before = app.idp.emulator.total_calls();
    for _ in 0..50 {
        assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1);
    assert_eq!(app.idp.emulator.total_calls(), before + 1, "and nothing else");
}

#[rocket::async_test]
async fn f18_with_introspection_cached_a_revoked_token_is_refused_once_the_ttl_has_passed() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection_ttl_secs": 1 })).await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    app.idp.emulator.revoke_access_token(&session_access_token(&app));

    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "the cached answer stands within the TTL");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther, "refused after the TTL");
    assert!(location(&response).starts_with(&app.idp.oauth_server_url), "to the login");
    drop(response);
    assert!(session_of(&app.client).is_none(), "the session cookie is removed");
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 2, "once per TTL");
}

#[rocket::async_test]
async fn concurrent_requests_of_one_session_share_one_introspection() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let requests = (0..20).map(|_| app.get("/auth_route"));
    for response in rocket::futures::future::join_all(requests).await {
        assert_eq!(response.status(), Status::Ok);
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 1);
}

#[rocket::async_test]
async fn f17_a_removed_role_stops_working_once_the_roles_ttl_has_passed() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "roles_ttl_secs": 1 })).await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    let alice = app.idp.emulator.user_by_email(ALICE).unwrap();
    app.idp.emulator.set_user_roles(&alice.sub, vec![]);

    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "roles are cached within the TTL");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Forbidden);
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 2, "one at login, one after the TTL");
}

#[rocket::async_test]
async fn with_cached_keys_sessions_keep_working_while_the_provider_is_down() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    app.idp.shutdown.clone().notify();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    }
}

/// The access token inside the test browser's session cookie.
fn session_access_token(app: &TestApp) -> String {
    app.session_json()["access_token"].as_str().unwrap().to_string()
}

#[rocket::async_test]
async fn b74_a_storm_of_1000_tokens_with_unknown_key_ids_causes_at_most_one_key_fetch() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "never" })).await;
    // A real login first, so the app has its keys.
    app.login_as(ALICE, "/auth_route").await;
    let fetched = app.idp.emulator.calls(Endpoint::PublicKeys);

    let attacker = appid_emulator::jwt::SigningKey::generate("x").unwrap();
    let config = app.idp.emulator.config();
    let now = app.idp.emulator.now();
    for i in 0..1000 {
        let token = attacker.sign(
            &json!({ "alg": "RS256", "typ": "JWT", "kid": format!("made-up-{i}"), "ver": 4 }),
            &json!({ "iss": app.idp.oauth_server_url, "aud": [config.client_id], "sub": "someone",
                     "tenant": config.tenant_id, "exp": now + 600, "iat": now }),
        );
        let th = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            rocket_appid::appid::token_key(&token),
        );
        let session = json!({ "v": 3, "sid": format!("s{i}"), "sub": "someone", "name": null, "email": null,
                              "access_token": token, "th": th, "expires_at": now + 600, "created_at": now });
        let response = app
            .client
            .get("/auth_route")
            .private_cookie(rocket::http::Cookie::new("appid_session", session.to_string()))
            .header(Header::new("Accept", "text/html"))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::SeeOther, "a forged session is no session");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 1, "one fetch per cooldown");
}
