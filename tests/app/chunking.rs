//! The cookie size budget (issue 5, security.md §1.5, R-C4): a session larger than one
//! cookie is split across numbered cookies (`appid_session`, `appid_session.1`, …), each
//! `Set-Cookie` line under 4,096 bytes, joined and verified on every request; beyond the
//! ceiling (`session_max_chunks`) the user gets the "session too large" page and no cookie.

use appid_emulator::{EmulatorConfig, Endpoint, RoleDef, TestUser};
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};
use url::Url;

use crate::common::*;

/// A user whose tokens carry 90 role names of 66 characters (App ID custom claims copied
/// from roles): an access token of about 9 KB, which takes three cookies.
pub const BIG: &str = "big@example.com";

pub fn big_claims_provider() -> EmulatorConfig {
    let mut config = EmulatorConfig { roles_claim: true, ..EmulatorConfig::default() };
    let names: Vec<String> =
        (0..90).map(|i| format!("{i:02}-a-custom-role-with-a-rather-long-name-{}", "x".repeat(24))).collect();
    config.roles.extend(names.iter().map(|n| RoleDef::new(n, &["read"])));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    config.users.push(TestUser::new("big-claims-user", "Big Claims", BIG, &refs));
    config
}

/// The `Set-Cookie` lines of `response` for the session's cookies (all chunks).
fn session_lines(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .filter(|l| l.starts_with("appid_session"))
        .map(str::to_string)
        .collect()
}

/// The name of each session cookie set (not removed) by `response`.
fn chunks_set(response: &LocalResponse<'_>) -> Vec<String> {
    let mut names: Vec<String> = response
        .cookies()
        .iter()
        .filter(|c| c.name().starts_with("appid_session") && !c.value().is_empty())
        .map(|c| c.name().to_string())
        .collect();
    names.sort();
    names
}

/// The names of session cookies `response` removes.
fn chunks_removed(response: &LocalResponse<'_>) -> Vec<String> {
    let mut names: Vec<String> = response
        .cookies()
        .iter()
        .filter(|c| c.name().starts_with("appid_session") && c.value().is_empty())
        .map(|c| c.name().to_string())
        .collect();
    names.sort();
    names
}

/// The session of a tracked browser, joined from its chunks and opened with the app's keys.
fn joined_session(client: &Client) -> Value {
    session_of(client).expect("a session")
}

/// A protected page in `client`'s browser: 200 and the user's e-mail, or the status.
async fn protected(client: &Client) -> (Status, String) {
    let response = visit(client, "/auth_route").await;
    let status = response.status();
    (status, response.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn a_9_kb_access_token_survives_a_full_login_and_a_protected_request_through_chunked_cookies() {
    let app = spawn_app_with(big_claims_provider(), json!({})).await;
    let response = app.login_as(BIG, "/auth_route?x=1").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route?x=1");
    let lines = session_lines(&response);
    for line in &lines {
        assert!(line.len() < 4096, "a {} byte Set-Cookie line", line.len());
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
            assert!(line.contains(attribute), "{attribute} on every chunk");
        }
    }
    assert_eq!(chunks_set(&response), ["appid_session", "appid_session.1", "appid_session.2"]);
    let longest = lines.iter().map(String::len).max().unwrap();
    drop(response);

    let session = joined_session(&app.client);
    let token = session["access_token"].as_str().unwrap();
    assert!((8500..10000).contains(&token.len()), "a 9 KB access token: {} bytes", token.len());
    eprintln!("access token {} bytes → 3 cookies, longest Set-Cookie line {longest} bytes", token.len());

    let (status, body) = protected(&app.client).await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains(BIG), "the page shows the big-claims user");
    // The session works on and on (it is read from all three cookies every time).
    assert_eq!(protected(&app.client).await.0, Status::Ok);
}

#[rocket::async_test]
async fn over_https_every_chunk_is_a_secure_host_cookie_under_4096_bytes() {
    const HTTPS: &str = "https://127.0.0.1:8000/afterauth";
    let mut provider = big_claims_provider();
    provider.redirect_uris.push(HTTPS.into());
    let app = spawn_app_with(provider, json!({ "redirect_uri": HTTPS })).await;
    let response = app.login_as(BIG, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let lines: Vec<String> = response
        .headers()
        .get("Set-Cookie")
        .filter(|l| l.starts_with("__Host-appid_session"))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert!(line.len() < 4096, "a {} byte Set-Cookie line", line.len());
        assert!(line.contains("; Secure") && !line.contains("Domain"), "{line}");
    }
    eprintln!("Set-Cookie lines over https: {:?} bytes", lines.iter().map(String::len).collect::<Vec<_>>());
    let mut names: Vec<&str> = lines.iter().map(|l| l.split('=').next().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["__Host-appid_session", "__Host-appid_session.1", "__Host-appid_session.2"]);
}

#[rocket::async_test]
async fn the_same_token_over_the_configured_ceiling_gives_the_session_too_large_page_and_no_cookie() {
    let app = spawn_app_with(big_claims_provider(), json!({ "session_max_chunks": 2 })).await;
    let response = app.login_as(BIG, "/auth_route").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Location").is_none());
    assert_eq!(session_lines(&response), Vec::<String>::new(), "no session cookie, not even a chunk");
    assert!(response.headers().get("Set-Cookie").all(|l| l.len() < 4096));
    assert!(response.into_string().await.unwrap().contains("Session too large"));
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 1, "the login itself went through");
    assert!(app.client.cookies().get("appid_session").is_none());
}

/// Starts a login in another cookie-less browser and returns its transaction cookie and
/// provider URL (a logged-in browser cannot start one itself).
async fn transaction_elsewhere(app: &TestApp) -> (Cookie<'static>, Url) {
    let bare = app.bare_browser(json!({})).await;
    let response = visit(&bare, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let cookie = response.cookies().get("appid_login").unwrap().clone().into_owned();
    (cookie, Url::parse(&location(&response)).unwrap())
}

#[rocket::async_test]
async fn a_smaller_session_after_a_bigger_one_removes_the_stale_chunks() {
    let app = spawn_app_with(big_claims_provider(), json!({})).await;
    app.login_as(BIG, "/auth_route").await;
    assert!(app.client.cookies().get("appid_session.2").is_some());

    // Alice logs in in the same browser: one cookie, and the two extra chunks go.
    let (transaction, authorization) = transaction_elsewhere(&app).await;
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let response = app.client.get(callback).cookie(transaction).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(chunks_set(&response), ["appid_session"]);
    assert_eq!(chunks_removed(&response), ["appid_session.1", "appid_session.2"]);
    drop(response);
    assert!(app.client.cookies().get("appid_session.1").is_none());
    assert!(app.client.cookies().get("appid_session.2").is_none());
    let (status, body) = protected(&app.client).await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains(ALICE) && !body.contains(BIG));
}

#[rocket::async_test]
async fn a_session_that_no_longer_opens_has_every_chunk_removed() {
    let app = spawn_app_with(big_claims_provider(), json!({})).await;
    app.login_as(BIG, "/auth_route").await;
    // Another instance with another key (F8, or after a key change without a previous key):
    // the refused session is removed, all three cookies of it (logout uses the same removal).
    let other = app
        .bare_browser(json!({ "session_secret_key": "another key for another instance, long enough" }))
        .await;
    let mut request = other.get("/auth_route").header(Header::new("Accept", "text/html"));
    for cookie in app.client.cookies().iter().filter(|c| c.name().starts_with("appid_session")) {
        request = request.cookie(cookie.clone());
    }
    let response = request.dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "no session: a login starts, no 500");
    assert_eq!(chunks_removed(&response), ["appid_session", "appid_session.1", "appid_session.2"]);
}

#[rocket::async_test]
async fn a_chunk_taken_from_another_session_is_refused_without_a_500() {
    let app = spawn_app_with(big_claims_provider(), json!({})).await;
    app.login_as(BIG, "/auth_route").await;
    let mine: Vec<Cookie<'static>> =
        app.client.cookies().iter().filter(|c| c.name().starts_with("appid_session")).cloned().collect();
    assert_eq!(mine.len(), 3);
    // The same user logs in again in another browser: a session of the same size and shape.
    let other = app.other_browser(json!({})).await;
    let start = visit(&other, "/auth_route").await;
    let authorization = Url::parse(&location(&start)).unwrap();
    drop(start);
    let callback = app.sign_in_at_provider(&authorization, BIG).await;
    assert_eq!(other.get(callback).dispatch().await.status(), Status::SeeOther);
    let theirs: Vec<Cookie<'static>> =
        other.cookies().iter().filter(|c| c.name().starts_with("appid_session")).cloned().collect();
    assert_eq!(theirs.len(), 3);

    let bare = app.bare_browser(json!({})).await;
    let visit = |cookies: Vec<Cookie<'static>>| {
        let bare = &bare;
        async move {
            let mut request = bare.get("/auth_route").header(Header::new("Accept", "application/json"));
            for cookie in cookies {
                request = request.cookie(cookie);
            }
            request.dispatch().await.status()
        }
    };
    // Each set on its own works (so what follows is about the mixing).
    assert_eq!(visit(mine.clone()).await, Status::Ok);
    assert_eq!(visit(theirs.clone()).await, Status::Ok);
    let pick = |set: &[Cookie<'static>], name: &str| set.iter().find(|c| c.name() == name).unwrap().clone();
    let calls = app.idp.emulator.calls(Endpoint::Token);
    for mixed in [
        // Their middle chunk in my session, and my first chunk with their others.
        vec![pick(&mine, "appid_session"), pick(&theirs, "appid_session.1"), pick(&mine, "appid_session.2")],
        vec![
            pick(&mine, "appid_session"),
            pick(&theirs, "appid_session.1"),
            pick(&theirs, "appid_session.2"),
        ],
        // A chunk missing, and a chunk moved to another index.
        vec![pick(&mine, "appid_session"), pick(&mine, "appid_session.2")],
        vec![
            pick(&mine, "appid_session"),
            Cookie::new("appid_session.1", pick(&mine, "appid_session.2").value().to_string()),
            pick(&mine, "appid_session.2"),
        ],
    ] {
        assert_eq!(visit(mixed).await, Status::Unauthorized, "no session (and never a 500)");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), calls);
}
