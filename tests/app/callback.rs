//! Bad input at the callback `/afterauth` (security.md §3.2, B13–B30), against the real
//! emulator: every refusal is a 400 page, sets no session, and when the input is refused
//! before the code exchange the provider's token endpoint is never called.

use appid_emulator::Endpoint;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};
use url::Url;

use crate::common::*;

/// The title of every refused-callback page.
const REFUSED: &str = "Sign-in could not be completed";
/// The text of the "start again" page (expired transaction, code refused by the provider).
const EXPIRED_TEXT: &str = "took too long or was already used";
/// The text of the "provider said no" page.
const CANCELLED_TEXT: &str = "cancelled or refused by the identity provider";

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Asserts a refused callback: 400, the sign-in page, no session cookie set by it, no
/// redirect anywhere. Returns the body.
async fn assert_refused(response: LocalResponse<'_>) -> String {
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.headers().get_one("Location").is_none(), "a refused callback never redirects");
    assert!(response.cookies().get("appid_session").is_none(), "a refused callback sets no session cookie");
    let body = response.into_string().await.unwrap();
    assert!(body.contains(REFUSED), "the sign-in page: {body}");
    body
}

/// Asserts that this browser has no session: no cookie, and the protected page sends it
/// to the provider. (Starts a new login: call it last.)
async fn assert_not_logged_in(app: &TestApp) {
    assert!(app.client.cookies().get_private("appid_session").is_none());
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
}

fn token_calls(app: &TestApp) -> u64 {
    app.idp.emulator.calls(Endpoint::Token)
}

/// The value of query parameter `name` of an app path such as `/afterauth?code=…`.
fn param(path_and_query: &str, name: &str) -> String {
    let url = Url::parse(&format!("http://app.test{path_and_query}")).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {path_and_query}"))
}

/// `/afterauth?…` with these parameters, form-encoded in order.
fn callback_path(params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("/afterauth?{query}")
}

/// Starts a login in this browser and signs in at the provider; returns the genuine
/// callback's code and state, not yet delivered to the app.
async fn code_and_state(app: &TestApp, email: &str) -> (String, String) {
    let authorization = app.begin_login("/auth_route").await;
    let callback = app.sign_in_at_provider(&authorization, email).await;
    (param(&callback, "code"), param(&callback, "state"))
}

/// The pending login transaction of this browser, as stored in its private cookie.
fn pending_login(app: &TestApp) -> Value {
    let cookie = app.client.cookies().get_private("appid_login").expect("a login in progress");
    serde_json::from_str(cookie.value()).unwrap()
}

/// The session of this browser, as stored in its private cookie.
fn session(app: &TestApp) -> Value {
    let cookie = app.client.cookies().get_private("appid_session").expect("a session");
    serde_json::from_str(cookie.value()).unwrap()
}

/// Another browser: the same app (same secret key) against the same provider, with its
/// own cookies.
async fn other_browser(app: &TestApp) -> Client {
    Client::tracked(rocket_appid::build(app_figment(&app.idp, json!({})))).await.unwrap()
}

#[rocket::async_test]
async fn b13_a_callback_without_a_query_is_refused_without_an_outbound_call() {
    let app = spawn_app().await;
    app.begin_login("/auth_route").await;

    assert_refused(app.client.get("/afterauth").dispatch().await).await;
    assert_eq!(token_calls(&app), 0);
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none(), "the transaction is consumed");
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b14_a_code_without_state_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, _) = code_and_state(&app, ALICE).await;

    let response = app.client.get(callback_path(&[("code", &code)])).dispatch().await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b15_a_state_without_code_is_refused_and_clears_the_transaction() {
    let app = spawn_app().await;
    let (_, state) = code_and_state(&app, ALICE).await;

    let response = app.client.get(callback_path(&[("state", &state)])).dispatch().await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none());
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b16_a_mismatched_state_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;
    let attacker = format!("{}x", &state[..state.len() - 1]);

    let response = app.client.get(callback_path(&[("code", &code), ("state", &attacker)])).dispatch().await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b17_a_valid_callback_opened_in_another_browser_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    // The attacker starts a login in their browser and gets a genuine callback URL.
    let authorization = app.begin_login("/auth_route").await;
    let attackers_callback = app.sign_in_at_provider(&authorization, CAROL).await;

    // The victim is logged in as Alice in another browser and opens that URL.
    let victim = other_browser(&app).await;
    let start = victim.get("/auth_route").header(Header::new("Accept", "text/html")).dispatch().await;
    let victims_authorization = Url::parse(&location(&start)).unwrap();
    let victims_callback = app.sign_in_at_provider(&victims_authorization, ALICE).await;
    assert_eq!(victim.get(victims_callback).dispatch().await.status(), Status::SeeOther);
    let before = victim.cookies().get_private("appid_session").unwrap();
    let calls = token_calls(&app);

    let response = victim.get(attackers_callback).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.cookies().get("appid_session").is_none());
    assert!(response.into_string().await.unwrap().contains(REFUSED));
    assert_eq!(token_calls(&app), calls, "no exchange for a foreign callback");

    let after = victim.cookies().get_private("appid_session").unwrap();
    assert_eq!(before.value(), after.value(), "the victim's session is unchanged");
    let page = victim.get("/auth_route").header(Header::new("Accept", "text/html")).dispatch().await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(body.contains(ALICE) && !body.contains(CAROL));
}

#[rocket::async_test]
async fn b18_a_duplicated_state_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;

    let response = app
        .client
        .get(callback_path(&[("code", &code), ("state", &state), ("state", "other")]))
        .dispatch()
        .await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b18_the_same_state_repeated_is_refused_too() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;

    let response = app
        .client
        .get(callback_path(&[("code", &code), ("state", &state), ("state", &state)]))
        .dispatch()
        .await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b19_a_duplicated_code_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;

    let response = app
        .client
        .get(callback_path(&[("code", &code), ("code", "another-code"), ("state", &state)]))
        .dispatch()
        .await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b20_an_empty_code_or_an_empty_state_counts_as_absent() {
    let app = spawn_app().await;

    let (_, state) = code_and_state(&app, ALICE).await;
    let response = app.client.get(callback_path(&[("code", ""), ("state", &state)])).dispatch().await;
    assert_refused(response).await;

    let (code, _) = code_and_state(&app, ALICE).await;
    let response = app.client.get(callback_path(&[("code", &code), ("state", "")])).dispatch().await;
    assert_refused(response).await;

    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b21_an_8_kib_code_is_refused_before_any_outbound_call() {
    let app = spawn_app().await;
    let (_, state) = code_and_state(&app, ALICE).await;
    let huge = "c".repeat(8 * 1024);

    let response = app.client.get(callback_path(&[("code", &huge), ("state", &state)])).dispatch().await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b21_a_4_kib_state_is_refused_before_any_outbound_call() {
    let app = spawn_app().await;
    let (code, _) = code_and_state(&app, ALICE).await;
    let huge = "s".repeat(4 * 1024);

    let response = app.client.get(callback_path(&[("code", &code), ("state", &huge)])).dispatch().await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b23_a_provider_error_is_a_cancelled_page_without_the_reflected_description() {
    let app = spawn_app().await;
    let (_, state) = code_and_state(&app, ALICE).await;

    let response = app
        .client
        .get(callback_path(&[
            ("error", "access_denied"),
            ("error_description", "<script>alert(1)</script>"),
            ("state", &state),
        ]))
        .dispatch()
        .await;
    let body = assert_refused(response).await;
    assert!(body.contains(CANCELLED_TEXT));
    assert!(!body.contains("<script>alert"));
    assert!(!body.contains("alert(1)"));
    assert!(!body.contains("access_denied"));
    assert_eq!(token_calls(&app), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none(), "the transaction is cleared");
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b24_a_provider_error_without_state_is_refused() {
    let app = spawn_app().await;
    app.begin_login("/auth_route").await;

    let response = app.client.get(callback_path(&[("error", "server_error")])).dispatch().await;
    let body = assert_refused(response).await;
    assert!(!body.contains(CANCELLED_TEXT), "without our state the error is not even believed");
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b25_a_callback_naming_another_issuer_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;

    let response = app
        .client
        .get(callback_path(&[("code", &code), ("state", &state), ("iss", "https://evil.example")]))
        .dispatch()
        .await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b25_a_callback_naming_our_own_issuer_is_accepted() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;

    let response = app
        .client
        .get(callback_path(&[("code", &code), ("state", &state), ("iss", &app.idp.oauth_server_url)]))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn b27_a_callback_replayed_after_success_is_refused_and_the_session_survives() {
    let app = spawn_app().await;
    let authorization = app.begin_login("/auth_route").await;
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let first = app.client.get(callback.clone()).dispatch().await;
    assert_eq!(first.status(), Status::SeeOther);
    let sid = session(&app)["sid"].clone();

    let replay = app.client.get(callback).dispatch().await;
    assert_refused(replay).await;
    assert_eq!(token_calls(&app), 1, "the replay is not exchanged again");

    assert_eq!(session(&app)["sid"], sid, "the first session is kept");
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    assert!(page.into_string().await.unwrap().contains(ALICE));
}

#[rocket::async_test]
async fn b28_a_transaction_older_than_600_seconds_is_refused_as_expired() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;
    let mut login = pending_login(&app);
    let callback = callback_path(&[("code", &code), ("state", &state)]);

    login["created_at"] = json!(now() - 601);
    let response = app
        .client
        .get(callback.clone())
        .private_cookie(Cookie::new("appid_login", login.to_string()))
        .dispatch()
        .await;
    let body = assert_refused(response).await;
    assert!(body.contains(EXPIRED_TEXT));
    assert_eq!(token_calls(&app), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none());

    // The same transaction 590 s old is still fine (the code was never spent).
    login["created_at"] = json!(now() - 590);
    let response = app
        .client
        .get(callback)
        .private_cookie(Cookie::new("appid_login", login.to_string()))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
}

#[rocket::async_test]
async fn b29_a_posted_callback_is_not_processed() {
    let app = spawn_app().await;
    let authorization = app.begin_login("/auth_route").await;
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let form = callback.split_once('?').unwrap().1.to_string();

    let response = app.client.post("/afterauth").header(ContentType::Form).body(form).dispatch().await;
    assert!(matches!(response.status().code, 404 | 405), "{}", response.status());
    assert!(response.cookies().get("appid_session").is_none());
    assert_eq!(token_calls(&app), 0);
    assert!(app.client.cookies().get_private("appid_session").is_none());
    assert!(
        app.client.cookies().get_private("appid_login").is_some(),
        "the transaction was not even consumed"
    );

    // Nothing was spent: the genuine GET callback still completes the login.
    let response = app.client.get(callback).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn b30_a_failed_callback_while_logged_in_leaves_the_existing_session_working() {
    let app = spawn_app().await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    let before = session(&app);

    // An attacker's genuine callback for Carol, with no transaction in this browser.
    let other = other_browser(&app).await;
    let start = other.get("/auth_route").header(Header::new("Accept", "text/html")).dispatch().await;
    let authorization = Url::parse(&location(&start)).unwrap();
    let carols_callback = app.sign_in_at_provider(&authorization, CAROL).await;
    assert_refused(app.client.get(carols_callback.clone()).dispatch().await).await;

    // The same with a pending transaction of ours whose state does not match.
    let pending = json!({
        "state": "our-own-state", "nonce": "our-own-nonce", "verifier": null,
        "return_to": "/auth_route", "created_at": now(),
    });
    let response = app
        .client
        .get(carols_callback)
        .private_cookie(Cookie::new("appid_login", pending.to_string()))
        .dispatch()
        .await;
    assert_refused(response).await;

    assert_eq!(token_calls(&app), 1, "only Alice's own login was exchanged");
    assert_eq!(session(&app), before, "the session is untouched");
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(body.contains(ALICE) && !body.contains(CAROL));
}

#[rocket::async_test]
async fn a_failed_callback_removes_the_transaction_so_the_genuine_callback_then_fails_too() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;

    let wrong = app.client.get(callback_path(&[("code", &code), ("state", "wrong")])).dispatch().await;
    assert_refused(wrong).await;
    assert!(app.client.cookies().get_private("appid_login").is_none());

    let genuine = app.client.get(callback_path(&[("code", &code), ("state", &state)])).dispatch().await;
    assert_refused(genuine).await;
    assert_eq!(token_calls(&app), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn a_code_the_provider_rejects_gives_the_start_again_page_after_exactly_one_token_call() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;
    let tampered = format!("{code}x");

    let response = app.client.get(callback_path(&[("code", &tampered), ("state", &state)])).dispatch().await;
    let body = assert_refused(response).await;
    assert!(body.contains(EXPIRED_TEXT), "invalid_grant: start again");
    assert_eq!(token_calls(&app), 1, "a refused code is never retried");
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn an_expired_id_token_is_refused_and_starts_no_session() {
    let app = spawn_app().await;
    let (code, state) = code_and_state(&app, ALICE).await;
    // Tokens issued now look 4 000 s old: the id_token (1 h) has expired.
    app.idp.emulator.set_clock_offset(-4000);

    let response = app.client.get(callback_path(&[("code", &code), ("state", &state)])).dispatch().await;
    assert_refused(response).await;
    assert_eq!(token_calls(&app), 1);
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0);
    app.idp.emulator.set_clock_offset(0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b1_doubled_slashes_in_the_protected_path_return_to_a_single_slash_path() {
    for (visited, expected) in [
        ("//auth_route", "/auth_route"),
        ("///auth_route", "/auth_route"),
        ("/auth_route//", "/auth_route"),
        ("//auth_route?next=//evil.example", "/auth_route?next=//evil.example"),
    ] {
        let app = spawn_app().await;
        let callback = app.login_as(ALICE, visited).await;
        assert_eq!(callback.status(), Status::SeeOther);
        let destination = location(&callback);
        assert_eq!(destination, expected, "after visiting {visited}");
        assert!(destination.starts_with('/') && !destination.starts_with("//"));
    }
}

#[rocket::async_test]
async fn b2_paths_naming_another_host_start_no_login() {
    let app = spawn_app().await;
    for visited in ["//evil.example/x", "/%2F%2Fevil.example", "/%2F/evil.example"] {
        let response = app.get(visited).await;
        assert_eq!(response.status(), Status::NotFound, "{visited}");
        assert!(response.headers().get_one("Location").is_none());
        assert!(app.client.cookies().get_private("appid_login").is_none(), "{visited} starts no login");
    }
}

#[rocket::async_test]
async fn a_stored_return_path_to_another_host_is_replaced_by_root() {
    for hostile in ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/%2F%2Fevil.example"] {
        let app = spawn_app().await;
        let (code, state) = code_and_state(&app, ALICE).await;
        let mut login = pending_login(&app);
        login["return_to"] = json!(hostile);

        let response = app
            .client
            .get(callback_path(&[("code", &code), ("state", &state)]))
            .private_cookie(Cookie::new("appid_login", login.to_string()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response), "/", "stored {hostile:?}");
    }
}
