//! Abuse limits on signing in: per-client buckets on starting a login and on the callback,
//! so junk cannot spend the provider's rate limit, and the real users of other addresses
//! are not affected.

use appid_emulator::Endpoint;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::json;
use std::net::SocketAddr;

use crate::common::*;

const FLOODER: &str = "192.0.2.66:40000";
const REAL_USER: &str = "198.51.100.7:50000";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

async fn visit<'c>(app: &'c TestApp, path: &str, from: &str) -> LocalResponse<'c> {
    app.client
        .get(path.to_string())
        .header(Header::new("Accept", "text/html"))
        .remote(addr(from))
        .dispatch()
        .await
}

/// A real user at `from` signs in and sees the protected page.
async fn signs_in_from(app: &TestApp, from: &str) {
    let response = visit(app, "/auth_route", from).await;
    assert_eq!(response.status(), Status::SeeOther, "a login starts");
    let authorization = url::Url::parse(&location(&response)).unwrap();
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    assert_eq!(visit(app, &callback, from).await.status(), Status::SeeOther, "the callback signs in");
    assert_eq!(visit(app, "/auth_route", from).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn a_thousand_junk_callbacks_from_one_address_get_429_cost_no_token_calls_and_others_sign_in() {
    let app = spawn_app().await;
    // The flooder holds a real transaction, so its junk codes would each reach the
    // token endpoint if nothing stopped them.
    let started = visit(&app, "/auth_route", FLOODER).await;
    let authorization = url::Url::parse(&location(&started)).unwrap();
    let state: String =
        authorization.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).unwrap();
    let (mut limited, mut retry_after_ok) = (0, true);
    for i in 0..1000 {
        let response = visit(&app, &format!("/afterauth?code=junk{i}&state={state}"), FLOODER).await;
        if response.status() == Status::TooManyRequests {
            limited += 1;
            retry_after_ok &=
                response.headers().get_one("Retry-After").is_some_and(|s| s.parse::<u64>().is_ok());
        }
        if i == 500 {
            signs_in_from(&app, REAL_USER).await;
        }
    }
    assert!(limited >= 1000 - 20, "all but the burst are refused: {limited}");
    assert!(retry_after_ok, "every 429 says when to come back");
    assert!(app.idp.emulator.calls(Endpoint::Token) <= 1 + 20, "at most the budget reached the provider");
}

#[rocket::async_test]
async fn starting_logins_is_limited_per_client_with_a_429_page_and_json_for_scripts() {
    let app =
        spawn_app_with(appid_emulator::EmulatorConfig::default(), json!({ "sign_in_per_minute": 3 })).await;
    for _ in 0..3 {
        assert_eq!(visit(&app, "/auth_route", FLOODER).await.status(), Status::SeeOther);
    }
    let page = visit(&app, "/auth_route", FLOODER).await;
    assert_eq!(page.status(), Status::TooManyRequests);
    assert!(page.headers().get_one("Retry-After").is_some());
    assert!(page.into_string().await.unwrap().contains("Too many sign-in attempts"));
    // Scripts never start logins, so they are not limited by this: they get their 401.
    let script = app
        .client
        .get("/auth_route")
        .header(Header::new("Accept", "application/json"))
        .remote(addr(FLOODER))
        .dispatch()
        .await;
    assert_eq!(script.status(), Status::Unauthorized);
    signs_in_from(&app, REAL_USER).await;
}

#[rocket::async_test]
async fn behind_a_trusted_proxy_the_client_is_the_forwarded_address_not_the_proxy() {
    let app = spawn_app_with(
        appid_emulator::EmulatorConfig::default(),
        json!({ "sign_in_per_minute": 2, "trusted_proxies": 1 }),
    )
    .await;
    let from_proxy = |client: &'static str| {
        app.client
            .get("/auth_route")
            .header(Header::new("Accept", "text/html"))
            // A forged entry first, then the one our proxy appended.
            .header(Header::new("X-Forwarded-For", format!("203.0.113.9, {client}")))
            .remote(addr("10.0.0.2:443"))
    };
    for _ in 0..2 {
        assert_eq!(from_proxy("192.0.2.1").dispatch().await.status(), Status::SeeOther);
    }
    assert_eq!(from_proxy("192.0.2.1").dispatch().await.status(), Status::TooManyRequests);
    // Another client behind the same proxy has its own bucket.
    assert_eq!(from_proxy("192.0.2.2").dispatch().await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn the_token_endpoint_budget_caps_code_exchanges_per_second_with_a_429_and_no_call() {
    let app =
        spawn_app_with(appid_emulator::EmulatorConfig::default(), json!({ "token_calls_per_sec": 2 })).await;
    // Four logins (tabs of one browser) reach their callbacks at the same moment.
    let mut callbacks = Vec::new();
    for _ in 0..4 {
        let authorization = app.begin_login("/auth_route").await;
        callbacks.push(app.sign_in_at_provider(&authorization, ALICE).await);
    }
    let before = app.idp.emulator.calls(Endpoint::Token);
    let answers =
        rocket::futures::future::join_all(callbacks.iter().map(|c| app.client.get(c.clone()).dispatch()))
            .await;
    let statuses: Vec<Status> = answers.iter().map(|a| a.status()).collect();
    let refused = answers.iter().filter(|a| a.status() == Status::TooManyRequests).count();
    assert_eq!(refused, 2, "two exchanges this second, the others told to come back: {statuses:?}");
    assert!(answers
        .iter()
        .filter(|a| a.status() == Status::TooManyRequests)
        .all(|a| a.headers().get_one("Retry-After") == Some("1")));
    assert_eq!(app.idp.emulator.calls(Endpoint::Token) - before, 2, "no call beyond the budget");
}
