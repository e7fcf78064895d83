//! Server-side sessions (`session_store = "server"`): the cookie holds only a ticket (the
//! session id and a secret), the session lives in the session store sealed with that
//! secret. Here with the in-process store (one instance); `instances.rs` runs them over
//! Redis with two instances.

use appid_emulator::{EmulatorConfig, Endpoint, RoleDef, TestUser};
use rocket::http::Status;
use serde_json::json;

use crate::common::*;

/// A user whose tokens carry 99 role names of 200 characters (App ID custom claims copied
/// from roles): an access token of over 20 KB, more than the cookies hold.
const HUGE: &str = "huge@example.com";

fn huge_claims_provider() -> EmulatorConfig {
    let mut config = EmulatorConfig { roles_claim: true, ..EmulatorConfig::default() };
    let names: Vec<String> = (0..99).map(|i| format!("{i:03}-{}", "r".repeat(196))).collect();
    config.roles.extend(names.iter().map(|n| RoleDef::new(n, &["read"])));
    // Names over 100 characters count for no route, so the user has `user` as well.
    let refs: Vec<&str> = names.iter().map(String::as_str).chain(["user"]).collect();
    config.users.push(TestUser::new("huge-claims-user", "Huge Claims", HUGE, &refs));
    config
}

fn server_side() -> serde_json::Value {
    json!({ "session_store": "server" })
}

#[rocket::async_test]
async fn the_cookie_holds_only_a_ticket_of_about_150_bytes_and_no_token() {
    let app = spawn_app_with(EmulatorConfig::default(), server_side()).await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().await.unwrap().contains(ALICE));
    let cookies = app.session_cookies();
    assert_eq!(cookies.len(), 1, "one cookie: {cookies:?}");
    let (name, sealed) = &cookies[0];
    assert!(name.len() + 1 + sealed.len() <= 160, "{} bytes", name.len() + 1 + sealed.len());
    let plaintext = session_plaintext(&app.client);
    assert!(plaintext.starts_with("~t1."), "a ticket, not the session");
    assert!(!plaintext.contains('{') && plaintext.len() < 80, "no token or profile in it");
    // The next page is served from the store, with no provider call.
    let tokens = app.token_calls();
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.token_calls(), tokens);
}

#[rocket::async_test]
async fn a_20_kb_token_fits_in_a_server_side_session_and_not_in_the_cookies() {
    let app = spawn_app_with(huge_claims_provider(), server_side()).await;
    assert_eq!(app.login_as(HUGE, "/auth_route").await.status(), Status::SeeOther, "signed in");
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok, "served with a 20 KB token");
    assert!(response.into_string().await.unwrap().contains(HUGE));
    assert_eq!(app.session_cookies().len(), 1);

    let in_cookies = spawn_app_with(huge_claims_provider(), json!({})).await;
    let response = in_cookies.login_as(HUGE, "/auth_route").await;
    assert_eq!(response.status(), Status::ServiceUnavailable, "too large for the cookie mode");
    assert!(response.into_string().await.unwrap().contains("Session too large"));
}

#[rocket::async_test]
async fn after_logout_the_ticket_opens_nothing_and_the_cookie_is_removed() {
    let app = spawn_app_with(EmulatorConfig::default(), server_side()).await;
    app.login_as(ALICE, "/auth_route").await;
    let cookies = app.session_cookies();
    app.logout().await;
    let replayed = replay(&app.client, &cookies, "text/html").await;
    assert_eq!(replayed.status(), Status::SeeOther, "the old ticket signs nobody in");
    assert!(location(&replayed).starts_with(&app.idp.oauth_server_url));
}

#[rocket::async_test]
async fn a_renewed_server_side_session_is_stored_once_and_the_same_cookie_keeps_working() {
    let idp = EmulatorConfig { refresh_tokens: true, access_token_ttl: 1, ..EmulatorConfig::default() };
    let settings = json!({ "session_store": "server", "clock_leeway_secs": 0, "refresh_window_secs": 0 });
    let app = spawn_app_with(idp, settings).await;
    app.login_as(ALICE, "/auth_route").await;
    app.idp.emulator.set_access_token_ttl(3600);
    let cookies = app.session_cookies();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let renewing = app.get("/auth_route").await;
    assert_eq!(renewing.status(), Status::Ok);
    assert!(
        renewing.cookies().get("appid_session").is_none(),
        "the ticket does not change: nothing to send back"
    );
    assert_eq!(app.token_calls(), 2, "the login and one refresh");
    // The same ticket (a copy of the cookie from before the renewal) reads the renewed
    // session: no second refresh, which the emulator would refuse (rotated token).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(replay(&app.client, &cookies, "text/html").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 2);
}

#[rocket::async_test]
async fn a_ticket_of_another_store_or_a_forged_ticket_is_refused_without_a_500() {
    let app = spawn_app_with(EmulatorConfig::default(), server_side()).await;
    app.login_as(ALICE, "/auth_route").await;
    let cookies = app.session_cookies();
    // Another instance with its own in-process store: the ticket names no session there.
    let other = app.bare_browser(server_side()).await;
    let replayed = replay(&other, &cookies, "text/html").await;
    assert_eq!(replayed.status(), Status::SeeOther);
    // A ticket for the same session id with another secret opens nothing.
    let plaintext = session_plaintext(&app.client);
    let sid = plaintext.trim_start_matches("~t1.").split('.').next().unwrap().to_string();
    let forged = rocket::http::Cookie::new("appid_session", format!("~t1.{sid}.AAAAAAAAAAAAAAAAAAAAAA"));
    let response = other.get("/auth_route").private_cookie(forged).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "refused: sign in again");
    let genuine = rocket::http::Cookie::new("appid_session", plaintext);
    let response = other.get("/auth_route").private_cookie(genuine).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "the genuine ticket is unknown to another store");
}
