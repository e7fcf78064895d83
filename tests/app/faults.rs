//! Fault scenarios F1–F18 of security.md §4 that concern the provider: down at start,
//! slow, partial outage, key rotation, clock skew, revoked IAM key, rate limiting, shutdown
//! during a code exchange, TLS failure. (F17 and F18 live in guard.rs, next to the role and
//! introspection caching tests they extend.)

use std::time::{Duration, Instant};

use appid_emulator::{EmulatorConfig, Endpoint, Fault, RunningEmulator};
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::json;
use url::Url;

use crate::common::*;

/// GET `path` with this raw (sealed) session cookie instead of the jar's.
async fn visit_as<'c>(client: &'c Client, path: &str, session: &str) -> LocalResponse<'c> {
    client
        .get(path.to_string())
        .header(Header::new("Accept", "text/html"))
        .cookie(Cookie::new("appid_session", session.to_string()))
        .dispatch()
        .await
}

/// The raw (sealed) session cookie the test browser holds.
fn session_cookie(client: &Client) -> Option<String> {
    client.cookies().get("appid_session").map(|c| c.value().to_string())
}

/// 503 page with `Retry-After`, no redirect, no session cookie set.
async fn assert_unavailable(response: LocalResponse<'_>) {
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Location").is_none(), "no redirect (no loop)");
    assert!(response.headers().get_one("Retry-After").is_some());
    assert!(response.cookies().get("appid_session").is_none(), "no session cookie set");
    assert!(response.into_string().await.unwrap().contains(UNAVAILABLE));
}

/// A second browser on another instance of the same app (same provider, same session
/// key, so its cookies are valid on the first): logs `email` in there and returns the raw
/// session cookie, once that instance is ready.
async fn session_from_second_instance(app: &TestApp, email: &str) -> String {
    let client = app.other_browser(json!({ "introspection": "never" })).await;
    for _ in 0..100 {
        if client.get("/ready").dispatch().await.status() == Status::Ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = visit(&client, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let authorization = Url::parse(&location(&response)).unwrap();
    drop(response);
    let callback = sign_in(&authorization, email).await;
    assert_eq!(client.get(callback).dispatch().await.status(), Status::SeeOther);
    session_cookie(&client).unwrap()
}

/// Logs `email` in on `app` and returns the callback's status.
async fn login_status(app: &TestApp, email: &str) -> Status {
    app.login_as(email, "/auth_route").await.status()
}

#[rocket::async_test]
async fn f1_the_app_starts_while_the_provider_is_down_and_recovers_when_it_comes_up() {
    let port = free_port();
    let config = EmulatorConfig { port, ..EmulatorConfig::default() };
    let base = format!("http://127.0.0.1:{port}");
    let figment = figment_with(emulator_settings(&config, &base), json!({ "breaker_open_secs": 1 }));
    // The process starts: ignite and liftoff never wait for the provider.
    let client = Client::tracked(rocket_appid::build(figment)).await.expect("the app starts");

    let started = Instant::now();
    assert_eq!(visit(&client, "/noauth_route").await.status(), Status::Ok, "public pages work");
    assert!(started.elapsed() < Duration::from_secs(1));
    for _ in 0..6 {
        let response = visit(&client, "/auth_route").await;
        assert_unavailable(response).await;
        assert!(client.cookies().get_private("appid_login").is_none(), "no login was started");
    }
    let ready = client.get("/ready").dispatch().await;
    assert_eq!(ready.status(), Status::ServiceUnavailable);
    assert!(ready.into_string().await.unwrap().contains("discovery_not_loaded"));

    // The provider comes up; no restart of the app.
    let idp: RunningEmulator = appid_emulator::spawn(config).await.expect("emulator on the same port");
    let deadline = Instant::now() + Duration::from_secs(15);
    let authorization = loop {
        let response = visit(&client, "/auth_route").await;
        if response.status() == Status::SeeOther {
            break Url::parse(&location(&response)).unwrap();
        }
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(Instant::now() < deadline, "the app did not recover");
        drop(response);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let callback = sign_in(&authorization, ALICE).await;
    assert_eq!(client.get(callback).dispatch().await.status(), Status::SeeOther);
    assert_eq!(visit(&client, "/auth_route").await.status(), Status::Ok);
    assert_eq!(client.get("/ready").dispatch().await.status(), Status::Ok);
    idp.shutdown.clone().notify();
}

#[rocket::async_test]
async fn f2_a_slow_provider_costs_the_timeout_then_the_breaker_answers_at_once() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "introspection": "always", "request_timeout_secs": 1, "breaker_open_secs": 30 }),
    )
    .await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::delay(Duration::from_secs(20)));

    // Five slow requests at once, while public pages keep being served.
    let slow = async {
        let requests = (0..5).map(|_| async {
            let started = Instant::now();
            let response = app.get("/auth_route").await;
            let elapsed = started.elapsed();
            assert_unavailable(response).await;
            elapsed
        });
        rocket::futures::future::join_all(requests).await
    };
    let public = async {
        let mut worst = Duration::ZERO;
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..10 {
            let started = Instant::now();
            assert_eq!(app.get("/noauth_route").await.status(), Status::Ok);
            worst = worst.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worst
    };
    let (slow, public_worst) = tokio::join!(slow, public);
    for elapsed in slow {
        assert!(elapsed >= Duration::from_millis(900), "the call was given its timeout: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "503 within timeout + 1 s (+ slack): {elapsed:?}");
    }
    assert!(public_worst < Duration::from_millis(500), "public route slowed down: {public_worst:?}");
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 5);

    // The breaker is open: answers come at once, and the provider is left alone.
    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let response = app.get("/auth_route").await;
        let elapsed = started.elapsed();
        assert_unavailable(response).await;
        assert!(elapsed < Duration::from_millis(500), "far below the 1 s timeout: {elapsed:?}");
        fastest = fastest.min(elapsed);
    }
    assert!(fastest < Duration::from_millis(50), "the breaker answers in under 50 ms: {fastest:?}");
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 5, "no call while open");
    app.idp.emulator.clear_fault(Endpoint::Introspect);
}

#[rocket::async_test]
async fn f2_the_breaker_lets_one_trial_through_and_closes_when_the_provider_recovers() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "introspection": "always", "breaker_failures": 2, "breaker_open_secs": 1 }),
    )
    .await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(503));
    for _ in 0..4 {
        assert_unavailable(app.get("/auth_route").await).await;
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 2, "open after 2 failures");
    app.idp.emulator.clear_fault(Endpoint::Introspect);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "the trial succeeds: closed");
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 4);
}

#[rocket::async_test]
async fn f3_token_works_but_introspection_fails_login_completes_and_the_page_is_503_without_a_loop() {
    let app = spawn_app().await;
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(500));
    let callback = app.login_as(ALICE, "/auth_route").await;
    assert_eq!(callback.status(), Status::SeeOther, "the login completes");
    assert_eq!(location(&callback), "/auth_route");
    drop(callback);
    let session = session_cookie(&app.client);
    assert!(session.is_some());
    let logins = app.idp.emulator.calls(Endpoint::Authorization);
    for _ in 0..3 {
        assert_unavailable(app.get("/auth_route").await).await;
    }
    assert_eq!(session_cookie(&app.client), session, "the session is kept for when it recovers");
    assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), logins, "no redirect loop to the login");
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 1);
    app.idp.emulator.clear_fault(Endpoint::Introspect);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "and works once it is back");
}

#[rocket::async_test]
async fn f4_during_a_key_overlap_old_and_new_tokens_verify_after_one_refetch() {
    // Local verification only: the emulator's own introspection knows only its current key.
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "never" })).await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    let alice = session_cookie(&app.client).unwrap();

    app.idp.emulator.rotate_signing_key_with_overlap();
    let carol = session_from_second_instance(&app, CAROL).await;
    let fetched = app.idp.emulator.calls(Endpoint::PublicKeys);
    assert_eq!(visit_as(&app.client, "/auth_route", &carol).await.status(), Status::Ok, "new kid");
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 1, "one refetch for the new kid");

    for _ in 0..3 {
        assert_eq!(visit_as(&app.client, "/auth_route", &alice).await.status(), Status::Ok, "old key");
        assert_eq!(visit_as(&app.client, "/auth_route", &carol).await.status(), Status::Ok, "new key");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 1, "no further fetches");
}

#[rocket::async_test]
async fn f4_a_token_of_a_removed_key_is_refused_once_the_rotation_is_seen() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "never" })).await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    let alice = session_cookie(&app.client).unwrap();
    app.idp.emulator.rotate_signing_key();
    // The new kid makes the app refetch the keys; the old key is gone from them.
    let carol = session_from_second_instance(&app, CAROL).await;
    assert_eq!(visit_as(&app.client, "/auth_route", &carol).await.status(), Status::Ok);

    let response = visit_as(&app.client, "/auth_route", &alice).await;
    assert_eq!(response.status(), Status::SeeOther, "log in again");
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
    let removal = response.cookies().get("appid_session").map(|c| c.value().to_string());
    assert_eq!(removal.as_deref(), Some(""), "the refused session cookie is removed");
    drop(response);
    assert_eq!(visit_as(&app.client, "/auth_route", &carol).await.status(), Status::Ok);
}

/// Logs ALICE in while the provider's clock is `offset` seconds off ours.
async fn login_with_clock_offset(offset: i64, token_ttl: u64) -> (TestApp, Status) {
    let config =
        EmulatorConfig { id_token_ttl: token_ttl, access_token_ttl: token_ttl, ..Default::default() };
    let app = spawn_app_with(config, json!({})).await;
    app.idp.emulator.set_clock_offset(offset);
    // Claims are whole seconds: a second that ticks between the emulator issuing the token
    // and the app checking it shortens the skew the app sees by one (61 s ahead would look
    // like 60). Starting the login just after a tick keeps both within the same second.
    start_of_next_second().await;
    let status = login_status(&app, ALICE).await;
    (app, status)
}

/// Sleeps until just after the wall clock's next whole second.
async fn start_of_next_second() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let to_next = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
    tokio::time::sleep(to_next + Duration::from_millis(5)).await;
}

#[rocket::async_test]
async fn f5_a_provider_clock_59_seconds_off_either_way_is_accepted() {
    for offset in [59, -59] {
        let (app, status) = login_with_clock_offset(offset, 3600).await;
        assert_eq!(status, Status::SeeOther, "offset {offset}");
        assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "offset {offset}");
    }
}

#[rocket::async_test]
async fn f5_a_provider_clock_61_seconds_or_10_minutes_ahead_is_refused() {
    for offset in [61, 600] {
        let (app, status) = login_with_clock_offset(offset, 3600).await;
        assert_eq!(status, Status::BadRequest, "offset {offset}: tokens issued in the future");
        assert!(session_of(&app.client).is_none(), "offset {offset}");
        assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0, "no token was used");
    }
}

#[rocket::async_test]
async fn f5_a_provider_clock_10_minutes_behind_makes_short_lived_tokens_expired_and_refused() {
    // 10 minutes behind with 5-minute tokens: they arrive expired by > 60 s of leeway. (A
    // clock 61 s behind with 1-hour tokens only ages them by a minute: accepted, correctly.)
    let (app, status) = login_with_clock_offset(-600, 300).await;
    assert_eq!(status, Status::BadRequest);
    assert!(session_of(&app.client).is_none());
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0);
}

/// IAM refuses the API key with `status`: logins end on the 503 page, and IAM is asked once,
/// not on every request (so the refusal is logged once, not per request).
async fn assert_revoked_iam_key_is_503_and_not_asked_per_request(status: u16) {
    let app = spawn_app().await;
    let body = json!({ "errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found." });
    app.idp.emulator.set_fault(Endpoint::IamToken, Fault::json(status, &body));
    for _ in 0..3 {
        let callback = app.login_as(ALICE, "/auth_route").await;
        assert_unavailable(callback).await;
        assert!(session_of(&app.client).is_none());
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::IamToken), 1, "IAM asked once per hold period");
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0);
}

#[rocket::async_test]
async fn f10_iam_refusing_the_api_key_with_400_gives_503_without_a_call_per_request() {
    assert_revoked_iam_key_is_503_and_not_asked_per_request(400).await;
}

#[rocket::async_test]
async fn f10_iam_refusing_the_api_key_with_401_gives_503_without_a_call_per_request() {
    assert_revoked_iam_key_is_503_and_not_asked_per_request(401).await;
}

#[rocket::async_test]
async fn f11_a_429_with_retry_after_is_honoured_then_calls_resume() {
    let app = spawn_app().await;
    app.idp.emulator.set_fault(Endpoint::ManagementRoles, Fault::status(429).with_header("Retry-After", "2"));
    assert_unavailable(app.login_as(ALICE, "/auth_route").await).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 1);
    // Within Retry-After nothing is asked: another login gets the 503 page at once.
    app.idp.emulator.clear_fault(Endpoint::ManagementRoles);
    assert_unavailable(app.login_as(ALICE, "/auth_route").await).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 1, "Retry-After honoured");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther, "calls resume after it");
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 2);
}

#[rocket::async_test]
async fn r_o8_a_token_endpoint_503_is_never_retried_and_the_user_gets_503() {
    let app = spawn_app().await;
    app.idp.emulator.set_fault(Endpoint::Token, Fault::status(503).times(1));
    assert_unavailable(app.login_as(ALICE, "/auth_route").await).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 1, "a code is single-use: never retried");
    assert!(session_of(&app.client).is_none());
}

#[rocket::async_test]
async fn r_o8_a_keys_endpoint_failing_once_is_retried_once() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({})).await;
    // Wait for the background warm-up, then make the next keys fetch fail once.
    for _ in 0..100 {
        if app.client.get("/ready").dispatch().await.status() == Status::Ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fetched = app.idp.emulator.calls(Endpoint::PublicKeys);
    app.idp.emulator.rotate_signing_key();
    app.idp.emulator.set_fault(Endpoint::PublicKeys, Fault::status(503).times(1));
    // The new kid forces a refetch; its first attempt fails, the retry succeeds.
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 2, "one failure, one retry");
}

/// A self-signed certificate for 127.0.0.1 (DER, base64; generated once with `openssl req
/// -x509 -days 36500`), trusted by nobody: what a man in the middle would present.
const SELF_SIGNED_CERT: &str = "MIIDJzCCAg+gAwIBAgIUEpgeADVgE7c5vpntiHlEC5oVGhUwDQYJKoZIhvcNAQELBQAwFDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyODIwMzIwMVoYDzIxMjYxMTA0MjAzMjAxWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCfp+isNOjlTPFokrV+iWt6siNQnSVL1mfYTAd78fx2dA1R83Uwr6M4yZe804W8DbKXO0qtwd0IK0/wWzZqgnvpR5hYP9kX4wwH8dlbGMQWNXkmwkJZdZvYGKreSMdmbu2EVzKcya5/DcVIOQMqLsgiL726l17/Us/erIY3wmBt588Wc4I6JkFdmlO6pXOGux/X3DFPMdE2YfkFkIwiXDwFLoEm8RYxg44rzaxaBzxfSwbmW8zX4tH0wn6y0vBQlq/g7MntqyeuDZA1nvjDKfd8qkCgI2oe/WQbL8a9xT5yssOUSAnXPbc7j8dio2XlSsTBIw8DYkhct0YmWYqA7LUlAgMBAAGjbzBtMB0GA1UdDgQWBBSF62fDMPs2/x50UyziECNohpuRzTAfBgNVHSMEGDAWgBSF62fDMPs2/x50UyziECNohpuRzTAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9zdDANBgkqhkiG9w0BAQsFAAOCAQEAj0FNKXcgqxNl70iagv3cNx4Qx01E/iFhbQ5ulSsLGn6Yw+OcdJFhirLwLWo6SuKOH45zdxWYkLbfGMjbiggNvAX2oi5LZj/wQ81J+4IoAVLOmdaedFeLyF5D6tp3dw5/g4aEJ7eQ7ufnjoVyZM/rxizQLP/aFwzKABc6+czGuHIQRETRgBdTf/Mq6uLwQEezO9PR+NwFgLCrYtKnnjP+ZPYgqMrsNuBpghf56tlnlrpdCohqZFlSjhZKBJ47jkH8Szf8mRp/yShN5/KAxkcH6zR6HzkZfIS4WwaM/nSeoHPlKhgLESR1LqWRGOFFE6/yr12L5NGzFc+zLMGZYLMuew==";
/// Its private key (PKCS#8 DER, base64). A throwaway test key, protecting nothing.
const SELF_SIGNED_KEY: &str = "MIIEugIBADANBgkqhkiG9w0BAQEFAASCBKQwggSgAgEAAoIBAQCfp+isNOjlTPFokrV+iWt6siNQnSVL1mfYTAd78fx2dA1R83Uwr6M4yZe804W8DbKXO0qtwd0IK0/wWzZqgnvpR5hYP9kX4wwH8dlbGMQWNXkmwkJZdZvYGKreSMdmbu2EVzKcya5/DcVIOQMqLsgiL726l17/Us/erIY3wmBt588Wc4I6JkFdmlO6pXOGux/X3DFPMdE2YfkFkIwiXDwFLoEm8RYxg44rzaxaBzxfSwbmW8zX4tH0wn6y0vBQlq/g7MntqyeuDZA1nvjDKfd8qkCgI2oe/WQbL8a9xT5yssOUSAnXPbc7j8dio2XlSsTBIw8DYkhct0YmWYqA7LUlAgMBAAECgf8aV+Fc+o1gLAFdaovTwjfFo2+iEbQta7M7hstDkJJoO4UAnR0AMqWH0OsEcUq3dbEQVgjITYU5QOLOm1q5S0m1CYg6zpoIUjop+PuKNx7hW9TySSTY6dYUPwc08hkkHk964MJ943P1n1TM05HvvffDFJjMp3k5bvCbQ9LOrFulLuFXu/5X09bNHzgnnNJvoBEoS+vv8Odhut4+VvMov+as4eXX8ViTbFCFLUvbH8TrkLM4jdb9ReqYQRvYUB8qUR46m8RrLkG6bq40SBr4QqYFonvCL6CMG6mN0ncXVX1Ndv0Wcoqubyx4JG9jqTBaxP3l7o5lC2wHb1Z+ey0ckCMCgYEAzzSWL/oDBJnKguesMmiHXb7G4Ljczp+OxslI5Lg/d5r2QyeHMkf/FnlJTqUWv7WluKQgiezk6kRPr2dhFN/74aZ4w/+6SNulasUVDNEZnFoViPaSa/sWOymNRTMkEx065uunAiWzXVEBq9f7h8MptSuhGM3uKLTcSBDDucfMMf8CgYEAxUDKj57vhF+2jQr8UDLypTmPKwgRvIImMSlmd9XhXkpPtERkXViRI/q7zEeozE2b719UmCzcW6O95M1vJBKzzJqcACdFGmhTCeaceLs2BbL9ZXuI0b3OUikr345Q4ldtyrhkbSfdm3uNAN0DT7rnaD2k6uoYpMPFPZa89lHiENsCgYABSwm46O2F5NPPt1RqyB44Jo2lL2IpY/OHKBBtZPz4aR4qUx/T34EnCcC8XeljbuXG3jdZxQG0uJJqvNFtSOyQfvJ3/quR8tT4cpxsBQ4M3L8PqMJHLDz6R4sbKHOMLv2EHWpgaA3TgkLpaKKoOT6UY95QglB/LonFZV1jVmzezwKBgFP2GEK57En0U8gFfRDGHvKlZYNzk9khrRAQB0XLDHsONo8M7YuuP1mJSJbTic4s2ssxUNjVf5aiRBo4N66rJ01YIj8OeCOddHsqZkAdsAkM/z9LLhnZKRFf5QTrlxJBFMLNajHsXi/oj0RmzxoI/KcqViCINKUtj69/kj9m60sxAoGAEnBJIl0AfaDvt717gGqSWPrnEdLv0B/2EUZEl4XGEciZSA9XP/YKHMY5Jk/HLte7hUiI5Fib3w8YyoSj5Z/AdYOBfrFoeAlEWk1UiQocmDbSXDDBSzPdtZKKBk229NGz+veibCN5QCNCEZssfzNdNIbbwa1rVJmq//SExXH7PvE=";

/// What the fake https provider saw: TLS handshakes started, plain-text HTTP requests.
#[derive(Default)]
struct Seen {
    tls: std::sync::atomic::AtomicUsize,
    plain: std::sync::atomic::AtomicUsize,
}

/// An https server on 127.0.0.1 with the self-signed certificate; returns its port.
async fn https_with_self_signed_certificate(seen: std::sync::Arc<Seen>) -> u16 {
    use base64::Engine;
    use std::sync::atomic::Ordering;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = CertificateDer::from(b64.decode(SELF_SIGNED_CERT).unwrap());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(b64.decode(SELF_SIGNED_KEY).unwrap()));
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                // 0x16: a TLS handshake record.
                Ok(1) if first[0] == 0x16 => seen.tls.fetch_add(1, Ordering::SeqCst),
                Ok(_) => seen.plain.fetch_add(1, Ordering::SeqCst),
                Err(_) => continue,
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The client refuses our certificate, so this handshake fails; if it ever
                // succeeded, the test below would notice a working login.
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn f15_a_provider_with_an_untrusted_certificate_gives_503_and_is_never_called_over_http() {
    let (logs, _guard) = capture_logs();
    let seen = std::sync::Arc::new(Seen::default());
    let port = https_with_self_signed_certificate(seen.clone()).await;
    let base = format!("https://127.0.0.1:{port}");
    let config = EmulatorConfig::default();
    let figment = figment_with(emulator_settings(&config, &base), json!({}));
    let client = Client::tracked(rocket_appid::build(figment)).await.expect("the app starts");
    for _ in 0..3 {
        let response = visit(&client, "/auth_route").await;
        assert_unavailable(response).await;
        assert!(client.cookies().get_private("appid_login").is_none(), "no login was started");
    }
    assert_eq!(visit(&client, "/noauth_route").await.status(), Status::Ok);
    let seen_tls = seen.tls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(seen_tls >= 1, "the app tried https");
    assert_eq!(seen.plain.load(std::sync::atomic::Ordering::SeqCst), 0, "never downgraded to http");
    let logged = logs.text();
    assert!(logged.contains("backend_tls_failure"), "the TLS failure is logged:\n{logged}");
    assert!(!logged.contains(&config.client_secret), "no secret in the log");
}

#[tokio::test]
async fn f10_a_revoked_iam_key_is_logged_once_as_mgmt_auth_failed_without_the_key() {
    let (logs, _guard) = capture_logs();
    let idp = appid_emulator::spawn(EmulatorConfig::default()).await.unwrap();
    idp.emulator.set_fault(Endpoint::IamToken, Fault::status(400));
    let client = Client::tracked(rocket_appid::build(app_figment(&idp, json!({})))).await.unwrap();
    for _ in 0..3 {
        let response = visit(&client, "/auth_route").await;
        let authorization = Url::parse(&location(&response)).unwrap();
        drop(response);
        let callback = sign_in(&authorization, ALICE).await;
        assert_unavailable(client.get(callback).dispatch().await).await;
    }
    let logged = logs.text();
    assert_eq!(logged.matches("mgmt_auth_failed").count(), 1, "logged once, not per request:\n{logged}");
    assert!(!logged.contains(&idp.emulator.config().api_key), "the API key is never logged");
    assert_eq!(idp.emulator.calls(Endpoint::IamToken), 1);
}

#[rocket::async_test]
async fn f14_sigterm_during_a_code_exchange_lets_it_finish_and_the_process_exits_cleanly() {
    use std::process::{Command, Stdio};
    let idp = appid_emulator::spawn(EmulatorConfig::default()).await.unwrap();
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let mut child =
        app_process_against(&idp, port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // No idle keep-alive connections: Rocket's graceful shutdown waits for open ones.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !browser
        .get(format!("{app}/health"))
        .header("Connection", "close")
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the app did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Start a login; keep the login cookie like a browser would.
    let start = browser
        .get(format!("{app}/auth_route"))
        .header("Accept", "text/html")
        .header("Connection", "close")
        .send()
        .await
        .unwrap();
    assert_eq!(start.status().as_u16(), 303);
    let cookies: Vec<String> = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect();
    let authorization = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let _ = start.bytes().await; // ends that connection
    let callback = sign_in(&authorization, ALICE).await;

    // The token endpoint takes 2 s; SIGTERM arrives in the middle of the exchange.
    idp.emulator.set_fault(Endpoint::Token, Fault::delay(Duration::from_secs(2)));
    let exchange = tokio::spawn({
        let browser = browser.clone();
        let url = format!("{app}{callback}");
        let cookie = cookies.join("; ");
        async move { browser.get(url).header("Cookie", cookie).header("Connection", "close").send().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());

    let response = exchange.await.unwrap().expect("the in-flight exchange is answered");
    assert_eq!(response.status().as_u16(), 303, "the login completes within the grace period");
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("appid_session=")),
        "with a session"
    );
    assert_eq!(idp.emulator.calls(Endpoint::Token), 1, "the code was exchanged once, never retried");
    // Reading the body ends the connection (Rocket's shutdown waits for open connections).
    let _ = response.bytes().await;
    drop(browser);
    assert_exits_cleanly_within(
        &mut child,
        Duration::from_secs(15),
        "the process did not exit after SIGTERM",
    )
    .await;
}

/// Waits for `child` to exit, at most `limit` (then fails with `why`), and checks it exited 0.
async fn assert_exits_cleanly_within(child: &mut std::process::Child, limit: Duration, why: &str) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a clean exit: {status:?}");
}

#[rocket::async_test]
async fn sigterm_during_a_request_exits_once_it_is_answered_not_after_the_whole_grace() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let idp = appid_emulator::spawn(EmulatorConfig::default()).await.unwrap();
    // Every discovery answer takes 2 s: a login started now is in flight that long.
    idp.emulator.set_fault(Endpoint::Discovery, Fault::delay(Duration::from_secs(2)));
    let port = free_port();
    let mut child =
        app_process_against(&idp, port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut connection = loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        assert!(Instant::now() < deadline, "the app did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    connection
        .write_all(b"GET /auth_route HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());

    let mut answer = Vec::new();
    let _ = connection.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 303"), "the request in flight is answered: {answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "and its connection closed");
    // Rocket.toml's grace is 25 s: Rocket alone waits all of it once a request was in
    // flight at SIGTERM, however soon it was answered.
    assert_exits_cleanly_within(
        &mut child,
        Duration::from_secs(10),
        "the process waited out the grace period",
    )
    .await;
}

#[rocket::async_test]
async fn r_o6_calls_beyond_the_concurrency_limit_fail_fast_instead_of_piling_up() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "introspection": "always", "max_concurrent_calls": 2, "breaker_failures": 100 }),
    )
    .await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::delay(Duration::from_secs(3)));
    let requests = (0..6).map(|_| async {
        let started = Instant::now();
        let status = app.get("/auth_route").await.status();
        (status, started.elapsed())
    });
    let results = rocket::futures::future::join_all(requests).await;
    let ok = results.iter().filter(|(status, _)| *status == Status::Ok).count();
    let refused: Vec<Duration> = results
        .iter()
        .filter(|(status, _)| *status == Status::ServiceUnavailable)
        .map(|(_, elapsed)| *elapsed)
        .collect();
    assert_eq!(ok, 2, "two calls had a slot and got their (slow) answer: {results:?}");
    assert_eq!(refused.len(), 4, "{results:?}");
    for elapsed in refused {
        assert!(elapsed < Duration::from_millis(2500), "refused after the 1 s slot wait: {elapsed:?}");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 2, "never more than the limit in flight");
    app.idp.emulator.clear_fault(Endpoint::Introspect);
}

/// B73: after a rotation, the keys endpoint answers `answer` when a token names the new key.
/// The failed refresh keeps the key set the app had: sessions of the old key still work;
/// the token of the unknown key is refused (a new login), never accepted unverified.
async fn assert_bad_key_set_keeps_the_previous_keys(answer: Fault) {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "never" })).await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    let alice = session_cookie(&app.client).unwrap();
    app.idp.emulator.rotate_signing_key();
    let carol = session_from_second_instance(&app, CAROL).await;
    app.idp.emulator.set_fault(Endpoint::PublicKeys, answer);
    let fetched = app.idp.emulator.calls(Endpoint::PublicKeys);

    let response = visit_as(&app.client, "/auth_route", &carol).await;
    assert_eq!(response.status(), Status::SeeOther, "the unknown key's token is refused");
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
    drop(response);
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 1, "one refetch, no retry");
    assert_eq!(visit_as(&app.client, "/auth_route", &alice).await.status(), Status::Ok, "old keys kept");
    assert_eq!(app.idp.emulator.calls(Endpoint::PublicKeys), fetched + 1);
}

#[rocket::async_test]
async fn b73_an_html_key_set_keeps_the_previous_keys() {
    assert_bad_key_set_keeps_the_previous_keys(Fault::body(200, "text/html", "<html>")).await;
}

#[rocket::async_test]
async fn b73_a_malformed_json_key_set_keeps_the_previous_keys() {
    assert_bad_key_set_keeps_the_previous_keys(Fault::body(200, "application/json", "{\"keys\": [")).await;
}

#[rocket::async_test]
async fn b73_a_5_mb_key_set_is_refused_and_the_previous_keys_are_kept() {
    let huge = format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(5 * 1024 * 1024));
    assert_bad_key_set_keeps_the_previous_keys(Fault::body(200, "application/json", &huge)).await;
}

#[rocket::async_test]
async fn b71_keys_failing_at_first_use_give_503_and_a_later_login_succeeds_without_restart() {
    let idp = appid_emulator::spawn(EmulatorConfig::default()).await.unwrap();
    idp.emulator.set_fault(Endpoint::PublicKeys, Fault::status(500));
    // A higher breaker threshold: background retries on a slow machine must not open it
    // before the test's second login (the breaker has its own tests).
    let figment = app_figment(&idp, json!({ "introspection": "never", "breaker_failures": 20 }));
    let client = Client::tracked(rocket_appid::build(figment)).await.unwrap();
    let response = visit(&client, "/auth_route").await;
    let authorization = Url::parse(&location(&response)).unwrap();
    drop(response);
    let callback = sign_in(&authorization, ALICE).await;
    assert_unavailable(client.get(callback).dispatch().await).await;
    assert!(session_of(&client).is_none());

    idp.emulator.clear_fault(Endpoint::PublicKeys);
    let response = visit(&client, "/auth_route").await;
    let authorization = Url::parse(&location(&response)).unwrap();
    drop(response);
    let callback = sign_in(&authorization, ALICE).await;
    assert_eq!(client.get(callback).dispatch().await.status(), Status::SeeOther);
    assert_eq!(visit(&client, "/auth_route").await.status(), Status::Ok);
}

#[tokio::test]
async fn f5_a_provider_clock_ahead_by_more_than_the_leeway_is_logged_as_clock_skew_suspected() {
    let (logs, _guard) = capture_logs();
    let app = spawn_app().await;
    app.idp.emulator.set_clock_offset(61);
    start_of_next_second().await; // see login_with_clock_offset
    assert_eq!(login_status(&app, ALICE).await, Status::BadRequest);
    assert!(session_of(&app.client).is_none());
    let logged = logs.text();
    assert!(logged.contains("clock_skew_suspected"), "the reason is logged:\n{logged}");
}

/// R-O6 / F1: an open breaker shows in `/ready` (still 200: cached keys keep serving
/// sessions, so the probe must not restart a healthy process) and in the metrics.
#[rocket::async_test]
async fn r_o6_an_open_breaker_is_reported_by_ready_and_the_metrics() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "metrics": true })).await;
    assert_eq!(login_status(&app, ALICE).await, Status::SeeOther);
    let ready = app.client.get("/ready").dispatch().await;
    assert_eq!(ready.into_json::<serde_json::Value>().await.unwrap(), json!({ "status": "ready" }));

    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(500));
    for _ in 0..7 {
        assert_unavailable(app.get("/auth_route").await).await;
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 5, "the breaker opened after 5 failures");
    let ready = app.client.get("/ready").dispatch().await;
    assert_eq!(ready.status(), Status::Ok);
    let body: serde_json::Value = ready.into_json().await.unwrap();
    assert_eq!(body, json!({ "status": "ready", "degraded": ["introspect"] }));
    let metrics = app.client.get("/metrics").dispatch().await.into_string().await.unwrap();
    assert!(metrics.contains("rocket_appid_breaker_openings_total{endpoint=\"introspect\"} "), "{metrics}");
    assert!(
        metrics.contains(
            "rocket_appid_provider_calls_refused_total{endpoint=\"introspect\",reason=\"circuit_open\"} "
        ),
        "{metrics}"
    );
}
