//! Bad input at the callback `/afterauth` (security.md §3.2, B13–B30), against the real
//! emulator: every refusal is a 400 page, sets no session, and when the input is refused
//! before the code exchange the provider's token endpoint is never called.

use appid_emulator::Endpoint;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};
use url::Url;

use crate::common::*;

/// The text of the "start again" page (expired transaction, code refused by the provider).
const EXPIRED_TEXT: &str = "took too long or was already used";
/// The text of the "provider said no" page.
const CANCELLED_TEXT: &str = "cancelled or refused by the identity provider";

/// Asserts a refused callback: 400, the sign-in page, no session cookie set by it, no
/// redirect anywhere. Returns the body.
async fn assert_refused(response: LocalResponse<'_>) -> String {
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.headers().get_one("Location").is_none(), "a refused callback never redirects");
    assert!(response.cookies().get("appid_session").is_none(), "a refused callback sets no session cookie");
    assert_eq!(response.content_type(), Some(ContentType::HTML), "UTF-8 HTML, never sniffed");
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let body = response.into_string().await.unwrap();
    assert!(body.contains(REFUSED), "the sign-in page: {body}");
    body
}

/// Asserts the "sign-in cancelled" page: 400, no session cookie, no redirect, never
/// cached, and a way to try again. Returns the body.
async fn assert_cancelled(response: LocalResponse<'_>) -> String {
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.cookies().get("appid_session").is_none());
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let body = response.into_string().await.unwrap();
    assert!(
        body.contains("Sign-in cancelled") && body.contains(CANCELLED_TEXT),
        "the cancelled page: {body}"
    );
    body
}

/// Asserts that this browser has no session: no cookie, and the protected page sends it
/// to the provider. (Starts a new login: call it last.)
async fn assert_not_logged_in(app: &TestApp) {
    assert!(session_of(&app.client).is_none());
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
}

/// Delivers a callback with `params` and asserts it is refused before the code exchange:
/// the 400 page, no token call, and no session in this browser. (Starts a new login: call
/// it last.)
async fn assert_refused_without_a_token_call(app: &TestApp, params: &[(&str, &str)]) {
    assert_refused(app.afterauth(params).await).await;
    assert_eq!(app.token_calls(), 0);
    assert_not_logged_in(app).await;
}

#[rocket::async_test]
async fn b13_a_callback_without_a_query_is_refused_without_an_outbound_call() {
    let app = spawn_app().await;
    app.begin_login("/auth_route").await;

    assert_refused(app.client.get("/afterauth").dispatch().await).await;
    assert_eq!(app.token_calls(), 0);
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none(), "the transaction is consumed");
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b14_a_code_without_state_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, _) = app.code_and_state(ALICE).await;

    assert_refused_without_a_token_call(&app, &[("code", &code)]).await;
}

#[rocket::async_test]
async fn b15_a_state_without_code_is_refused_and_clears_the_transaction() {
    let app = spawn_app().await;
    let (_, state) = app.code_and_state(ALICE).await;

    let response = app.afterauth(&[("state", &state)]).await;
    assert_refused(response).await;
    assert_eq!(app.token_calls(), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none());
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b16_a_mismatched_state_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;
    let attacker = format!("{}x", &state[..state.len() - 1]);

    assert_refused_without_a_token_call(&app, &[("code", &code), ("state", &attacker)]).await;
}

#[rocket::async_test]
async fn b17_a_valid_callback_opened_in_another_browser_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    // The attacker starts a login in their browser and gets a genuine callback URL.
    let authorization = app.begin_login("/auth_route").await;
    let attackers_callback = app.sign_in_at_provider(&authorization, CAROL).await;

    // The victim is logged in as Alice in another browser and opens that URL.
    let victim = app.other_browser(json!({})).await;
    let start = visit(&victim, "/auth_route").await;
    let victims_authorization = Url::parse(&location(&start)).unwrap();
    let victims_callback = app.sign_in_at_provider(&victims_authorization, ALICE).await;
    assert_eq!(victim.get(victims_callback).dispatch().await.status(), Status::SeeOther);
    let before = session_of(&victim).unwrap();
    let calls = app.token_calls();

    let response = victim.get(attackers_callback).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.cookies().get("appid_session").is_none());
    assert!(response.into_string().await.unwrap().contains(REFUSED));
    assert_eq!(app.token_calls(), calls, "no exchange for a foreign callback");

    let after = session_of(&victim).unwrap();
    assert_eq!(before, after, "the victim's session is unchanged");
    let page = visit(&victim, "/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(body.contains(ALICE) && !body.contains(CAROL));
}

#[rocket::async_test]
async fn b18_a_duplicated_state_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    assert_refused_without_a_token_call(&app, &[("code", &code), ("state", &state), ("state", "other")])
        .await;
}

#[rocket::async_test]
async fn b18_the_same_state_repeated_is_refused_too() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    assert_refused_without_a_token_call(&app, &[("code", &code), ("state", &state), ("state", &state)]).await;
}

#[rocket::async_test]
async fn b19_a_duplicated_code_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    assert_refused_without_a_token_call(
        &app,
        &[("code", &code), ("code", "another-code"), ("state", &state)],
    )
    .await;
}

#[rocket::async_test]
async fn b19_an_empty_code_followed_by_a_real_one_is_still_a_repeat() {
    // Found by the /afterauth fuzz test: "empty counts as absent" must not hide a repeat.
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    assert_refused_without_a_token_call(&app, &[("code", ""), ("state", &state), ("code", &code)]).await;
}

#[rocket::async_test]
async fn b20_an_empty_code_or_an_empty_state_counts_as_absent() {
    let app = spawn_app().await;

    let (_, state) = app.code_and_state(ALICE).await;
    let response = app.afterauth(&[("code", ""), ("state", &state)]).await;
    assert_refused(response).await;

    let (code, _) = app.code_and_state(ALICE).await;
    let response = app.afterauth(&[("code", &code), ("state", "")]).await;
    assert_refused(response).await;

    assert_eq!(app.token_calls(), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b21_an_8_kib_code_is_refused_before_any_outbound_call() {
    let app = spawn_app().await;
    let (_, state) = app.code_and_state(ALICE).await;
    let huge = "c".repeat(8 * 1024);

    assert_refused_without_a_token_call(&app, &[("code", &huge), ("state", &state)]).await;
}

#[rocket::async_test]
async fn b21_a_4_kib_state_is_refused_before_any_outbound_call() {
    let app = spawn_app().await;
    let (code, _) = app.code_and_state(ALICE).await;
    let huge = "s".repeat(4 * 1024);

    assert_refused_without_a_token_call(&app, &[("code", &code), ("state", &huge)]).await;
}

#[rocket::async_test]
async fn b23_a_provider_error_is_a_cancelled_page_without_the_reflected_description() {
    let app = spawn_app().await;
    let (_, state) = app.code_and_state(ALICE).await;

    let response = app
        .afterauth(&[
            ("error", "access_denied"),
            ("error_description", "<script>alert(1)</script>"),
            ("state", &state),
        ])
        .await;
    let body = assert_cancelled(response).await;
    assert!(!body.contains("<script>alert"));
    assert!(!body.contains("alert(1)"));
    assert!(!body.contains("access_denied"));
    assert_eq!(app.token_calls(), 0);
    assert!(app.client.cookies().get_private("appid_login").is_none(), "the transaction is cleared");
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b24_a_provider_error_without_state_is_refused() {
    let app = spawn_app().await;
    app.begin_login("/auth_route").await;

    let response = app.afterauth(&[("error", "server_error")]).await;
    // Without our state nothing the provider said is used: no code exchange, no session;
    // the page only says the sign-in did not happen.
    assert_cancelled(response).await;
    assert_eq!(app.token_calls(), 0);
    assert_not_logged_in(&app).await;
}

/// Issue 19 item 6: App ID may come back from a cancelled sign-in without `state`. The
/// user gets the "cancelled" page with a way to try again, and the logins other tabs have
/// in progress still complete.
#[rocket::async_test]
async fn an_error_redirect_without_state_gets_the_cancelled_page_and_keeps_other_tabs_logins() {
    let app = spawn_app().await;
    let first = app.begin_login("/auth_route?tab=a").await;
    let second = app.begin_login("/auth_route?tab=b").await;

    let body = assert_cancelled(app.afterauth(&[("error", "access_denied")]).await).await;
    assert!(body.contains(r#"href="/auth_route""#) && body.contains("Try again"), "{body}");
    assert_eq!(app.token_calls(), 0);

    for (authorization, destination) in [(first, "/auth_route?tab=a"), (second, "/auth_route?tab=b")] {
        let callback = app.sign_in_at_provider(&authorization, ALICE).await;
        let response = app.client.get(callback).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther, "the pending login of {destination} completes");
        assert_eq!(location(&response), destination);
    }
}

#[rocket::async_test]
async fn b25_a_callback_naming_another_issuer_is_refused_without_a_token_call() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    let params = [("code", code.as_str()), ("state", &state), ("iss", "https://evil.example")];
    assert_refused_without_a_token_call(&app, &params).await;
}

#[rocket::async_test]
async fn b25_a_callback_naming_our_own_issuer_is_accepted() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    let response =
        app.afterauth(&[("code", &code), ("state", &state), ("iss", &app.idp.oauth_server_url)]).await;
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
    let sid = app.session_json()["sid"].clone();

    let replay = app.client.get(callback).dispatch().await;
    assert_refused(replay).await;
    assert_eq!(app.token_calls(), 1, "the replay is not exchanged again");

    assert_eq!(app.session_json()["sid"], sid, "the first session is kept");
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    assert!(page.into_string().await.unwrap().contains(ALICE));
}

#[rocket::async_test]
async fn b28_a_transaction_older_than_600_seconds_is_refused_as_expired() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;
    let mut login = app.pending_login();
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
    assert_eq!(app.token_calls(), 0);
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
    assert_eq!(app.token_calls(), 0);
    assert!(session_of(&app.client).is_none());
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
    let before = app.session_json();

    // An attacker's genuine callback for Carol, with no transaction in this browser.
    let other = app.other_browser(json!({})).await;
    let start = visit(&other, "/auth_route").await;
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

    assert_eq!(app.token_calls(), 1, "only Alice's own login was exchanged");
    assert_eq!(app.session_json(), before, "the session is untouched");
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(body.contains(ALICE) && !body.contains(CAROL));
}

#[rocket::async_test]
async fn a_failed_callback_removes_the_transaction_so_the_genuine_callback_then_fails_too() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;

    let wrong = app.afterauth(&[("code", &code), ("state", "wrong")]).await;
    assert_refused(wrong).await;
    assert!(app.client.cookies().get_private("appid_login").is_none());

    let genuine = app.afterauth(&[("code", &code), ("state", &state)]).await;
    assert_refused(genuine).await;
    assert_eq!(app.token_calls(), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn a_code_the_provider_rejects_gives_the_start_again_page_after_exactly_one_token_call() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;
    let tampered = format!("{code}x");

    let response = app.afterauth(&[("code", &tampered), ("state", &state)]).await;
    let body = assert_refused(response).await;
    assert!(body.contains(EXPIRED_TEXT), "invalid_grant: start again");
    assert_eq!(app.token_calls(), 1, "a refused code is never retried");
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn an_expired_id_token_is_refused_and_starts_no_session() {
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;
    // Tokens issued now look 4 000 s old: the id_token (1 h) has expired.
    app.idp.emulator.set_clock_offset(-4000);

    let response = app.afterauth(&[("code", &code), ("state", &state)]).await;
    assert_refused(response).await;
    assert_eq!(app.token_calls(), 1);
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
        let (code, state) = app.code_and_state(ALICE).await;
        let mut login = app.pending_login();
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

/// The query parameters of the provider URL a login was sent to, in order.
fn params(authorization: &Url) -> Vec<(String, String)> {
    authorization.query_pairs().into_owned().collect()
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(response: &LocalResponse<'_>) -> Vec<String> {
    response.headers().get("Set-Cookie").map(str::to_string).collect()
}

/// True when `set_cookie` removes cookie `name` (empty value, expired).
fn is_removal(set_cookie: &str, name: &str) -> bool {
    set_cookie.starts_with(&format!("{name}=;")) && set_cookie.contains("Max-Age=0")
}

#[rocket::async_test]
async fn r_a1_a_thousand_logins_get_distinct_random_state_nonce_and_s256_challenge() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use std::collections::HashSet;

    // A provider that lists S256: `pkce = "auto"` sends a challenge on every login.
    let app = spawn_app_with(pkce_advertised(), json!({})).await;
    let (mut states, mut nonces, mut challenges) = (HashSet::new(), HashSet::new(), HashSet::new());
    for _ in 0..1000 {
        let authorization = app.begin_login("/auth_route").await;
        let p = |name: &str| param(&format!("/x?{}", authorization.query().unwrap()), name);
        assert_eq!(p("code_challenge_method"), "S256");
        assert!(URL_SAFE_NO_PAD.decode(p("state")).unwrap().len() >= 16);
        assert!(URL_SAFE_NO_PAD.decode(p("nonce")).unwrap().len() >= 16);
        assert_eq!(URL_SAFE_NO_PAD.decode(p("code_challenge")).unwrap().len(), 32, "SHA-256");
        states.insert(p("state"));
        nonces.insert(p("nonce"));
        challenges.insert(p("code_challenge"));
    }
    assert_eq!((states.len(), nonces.len(), challenges.len()), (1000, 1000, 1000));
    assert_eq!(app.idp.emulator.calls(Endpoint::Discovery), 1, "discovery is cached");
}

#[rocket::async_test]
async fn r_a1_a_provider_that_does_not_advertise_pkce_still_gets_state_and_nonce() {
    // App ID documents PKCE only for single-page apps and its discovery document lists no
    // `code_challenge_methods_supported` (appid-api.md §2): with `pkce = "auto"` no
    // challenge is sent then, while state and nonce always are.
    let config = appid_emulator::EmulatorConfig { pkce_advertised: false, ..Default::default() };
    let app = spawn_app_with(config, json!({})).await;
    let authorization = app.begin_login("/auth_route").await;
    let names: Vec<String> = params(&authorization).into_iter().map(|(k, _)| k).collect();
    assert!(names.contains(&"state".into()) && names.contains(&"nonce".into()));
    assert!(!names.iter().any(|n| n.starts_with("code_challenge")), "{names:?}");
    let stored = app.pending_login();
    assert_eq!(stored["verifier"], Value::Null);
    // And the login completes without PKCE.
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    assert_eq!(app.client.get(callback).dispatch().await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn r_a2_the_transaction_cookie_is_private_httponly_lax_and_lives_600_seconds() {
    for (redirect_uri, name) in
        [(REDIRECT_URI, "appid_login"), ("https://127.0.0.1:8000/afterauth", "__Host-appid_login")]
    {
        // With PKCE, so that the verifier is among the secrets the cookie must hide.
        let app = spawn_app_with(pkce_advertised(), json!({ "redirect_uri": redirect_uri })).await;
        let response = app.get("/auth_route").await;
        assert_eq!(response.status(), Status::SeeOther);
        let authorization = Url::parse(&location(&response)).unwrap();
        let query = format!("/x?{}", authorization.query().unwrap());
        let cookies = set_cookies(&response);
        assert_eq!(cookies.len(), 1, "only the transaction cookie: {cookies:?}");
        let header = &cookies[0];
        let attributes: Vec<&str> = header.split("; ").collect();
        assert!(attributes[0].starts_with(&format!("{name}=")), "{header}");
        for expected in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
            assert!(attributes.contains(&expected), "{expected} missing in {header}");
        }
        assert_eq!(attributes.contains(&"Secure"), redirect_uri.starts_with("https"), "{header}");
        assert!(!header.contains("Domain"), "{header}");
        // The value is sealed: none of the three secrets is readable in it.
        let sealed = response.cookies().get(name).unwrap().value().to_string();
        let stored: Value =
            serde_json::from_str(response.cookies().get_private(name).unwrap().value()).unwrap();
        assert_eq!(stored["state"], param(&query, "state"));
        for secret in
            [param(&query, "state"), param(&query, "nonce"), stored["verifier"].as_str().unwrap().into()]
        {
            assert!(!sealed.contains(&secret));
        }
    }
}

#[rocket::async_test]
async fn r_a4_every_callback_outcome_removes_the_transaction_cookie() {
    let app = spawn_app().await;
    // Success.
    let callback = app.login_as(ALICE, "/auth_route").await;
    assert_eq!(callback.status(), Status::SeeOther);
    assert!(
        set_cookies(&callback).iter().any(|c| is_removal(c, "appid_login")),
        "{:?}",
        set_cookies(&callback)
    );
    drop(callback);
    // A refusal (wrong state) and a provider refusal of the code (invalid_grant), in a
    // browser that is not logged in.
    let app = spawn_app().await;
    let (code, _) = app.code_and_state(ALICE).await;
    let refused = app.afterauth(&[("code", &code), ("state", "wrong")]).await;
    assert_eq!(refused.status(), Status::BadRequest);
    assert!(set_cookies(&refused).iter().any(|c| is_removal(c, "appid_login")));
    drop(refused);
    let (code, state) = app.code_and_state(ALICE).await;
    let bad_code = format!("{code}x");
    let refused = app.afterauth(&[("code", &bad_code), ("state", &state)]).await;
    assert_eq!(refused.status(), Status::BadRequest);
    assert!(set_cookies(&refused).iter().any(|c| is_removal(c, "appid_login")));
    assert!(app.client.cookies().get_private("appid_login").is_none());
}

#[rocket::async_test]
async fn r_a6_host_and_forwarded_headers_never_change_the_redirect_uri() {
    // The emulator accepts exactly our redirect URI, and the token request only with the
    // same redirect URI as the authorization request.
    let config =
        appid_emulator::EmulatorConfig { redirect_uris: vec![REDIRECT_URI.into()], ..Default::default() };
    let app = spawn_app_with(config, json!({})).await;
    let hostile = [
        Header::new("Host", "evil.example"),
        Header::new("X-Forwarded-Host", "evil.example"),
        Header::new("X-Forwarded-Proto", "https"),
        Header::new("Forwarded", "host=evil.example;proto=https"),
    ];
    let mut request = app.client.get("/auth_route").header(Header::new("Accept", "text/html"));
    for header in hostile.clone() {
        request = request.header(header);
    }
    let start = request.dispatch().await;
    assert_eq!(start.status(), Status::SeeOther);
    let authorization = Url::parse(&location(&start)).unwrap();
    let query = format!("/x?{}", authorization.query().unwrap());
    assert_eq!(param(&query, "redirect_uri"), REDIRECT_URI);
    drop(start);

    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let mut request = app.client.get(callback);
    for header in hostile {
        request = request.header(header);
    }
    let response = request.dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "the token request used the same redirect URI");
    assert_eq!(location(&response), "/auth_route", "and the app sends the user to no other host");
    assert_eq!(app.token_calls(), 1);
}

#[rocket::async_test]
async fn r_a9_a_callback_in_a_browser_without_a_login_is_a_400_page_with_a_way_back() {
    let app = spawn_app().await;
    let response = app.client.get("/afterauth?code=x&state=y").dispatch().await;
    let body = assert_refused(response).await;
    assert!(body.contains(r#"href="/auth_route""#), "a link to sign in again");
    assert_eq!(app.token_calls(), 0);
    assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), 0, "no automatic trip to the provider");
    assert!(app.client.cookies().get_private("appid_login").is_none(), "and no new login started");
}

#[rocket::async_test]
async fn r_a11_the_authorization_request_has_exactly_the_code_flow_parameters() {
    // With PKCE listed by the provider, the most parameters the app ever sends.
    let app = spawn_app_with(pkce_advertised(), json!({})).await;
    let authorization = app.begin_login("/auth_route").await;
    let mut names: Vec<String> = params(&authorization).into_iter().map(|(k, _)| k).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "nonce",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ],
        "each exactly once; no response_mode, prompt or other extras"
    );
    let query = format!("/x?{}", authorization.query().unwrap());
    assert_eq!(param(&query, "response_type"), "code", "no implicit or hybrid flow");
    assert_eq!(param(&query, "scope"), "openid");
    assert_eq!(param(&query, "code_challenge_method"), "S256", "never plain");
    assert_eq!(param(&query, "client_id"), app.idp.emulator.config().client_id);
    assert_eq!(
        authorization.path(),
        format!("/oauth/v4/{}/authorization", app.idp.emulator.config().tenant_id)
    );
}

#[rocket::async_test]
async fn r_a13_two_tabs_never_loop() {
    // Each tab's login has its own pending transaction (see tabs.rs): whichever finishes
    // first, both complete, each back where it started, and nothing redirects again.
    for newer_first in [true, false] {
        let app = spawn_app().await;
        let older = app.begin_login("/auth_route?tab=1").await;
        let newer = app.begin_login("/auth_route?tab=2").await;
        let older_callback = app.sign_in_at_provider(&older, ALICE).await;
        let newer_callback = app.sign_in_at_provider(&newer, ALICE).await;
        let order = if newer_first {
            [(newer_callback, "/auth_route?tab=2"), (older_callback, "/auth_route?tab=1")]
        } else {
            [(older_callback, "/auth_route?tab=1"), (newer_callback, "/auth_route?tab=2")]
        };
        for (callback, destination) in order {
            let response = app.client.get(callback).dispatch().await;
            assert_eq!(response.status(), Status::SeeOther);
            assert_eq!(location(&response), destination);
        }
        assert_eq!(app.token_calls(), 2);
        assert_eq!(app.idp.emulator.calls(Endpoint::Authorization), 2, "only the logins the user started");
    }
}

#[rocket::async_test]
async fn r_x6_the_redirect_after_login_is_a_303_neither_cached_nor_referred() {
    let app = spawn_app().await;
    let response = app.login_as(ALICE, "/auth_route?x=1").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route?x=1");
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(response.headers().get_one("Referrer-Policy"), Some("no-referrer"));
}

#[rocket::async_test]
async fn b22_a_state_with_crlf_is_refused_and_logged_as_one_escaped_line() {
    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::prelude::*;

    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;
    let injected = format!("{state}\r\nevent=login_success sub=admin\r\n");
    let path = callback_path(&[("code", &code), ("state", &injected)]);
    assert!(path.contains("%0D%0A"));

    // The app's own log set-up (src/main.rs): JSON lines in production, text in debug.
    let (json, text) = (Captured::default(), Captured::default());
    let filter = "info,rocket::=warn,_=warn,rocket_dyn_templates=warn,hyper=warn,reqwest=warn";
    let (json_writer, text_writer) = (json.clone(), text.clone());
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_target(false)
                .with_writer(move || json_writer.clone()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(false)
                .with_writer(move || text_writer.clone()),
        )
        .with(tracing_subscriber::EnvFilter::new(filter));
    let response = app.client.get(path).dispatch().with_subscriber(subscriber).await;
    assert_refused(response).await;
    assert_eq!(app.token_calls(), 0);

    let (json, text) = (json.text(), text.text());
    let lines: Vec<Value> = json.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let refusals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "login_refused").collect();
    assert_eq!(refusals.len(), 1, "{json}");
    assert_eq!(refusals[0]["reason"], "state_mismatch");
    assert_eq!(text.lines().count(), lines.len(), "one text line per event:\n{text}");
    assert_eq!(text.lines().filter(|l| l.contains("login_refused")).count(), 1, "{text}");
    for output in [&json, &text] {
        assert!(!output.contains('\r'), "a raw CR reached the log");
        assert!(!output.contains("login_success") && !output.contains("sub=admin"), "{output}");
        assert!(!output.contains(&state) && !output.contains(&code), "no state or code in the log");
    }
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn b26_app_id_does_not_advertise_the_iss_parameter_so_a_callback_without_iss_is_accepted() {
    // RFC 9207 would make `iss` mandatory once discovery advertises
    // `authorization_response_iss_parameter_supported`; App ID's discovery does not
    // (appid-api.md §1), and neither does the emulator. A present `iss` is checked (B25).
    let app = spawn_app().await;
    let (code, state) = app.code_and_state(ALICE).await;
    let response = app.afterauth(&[("code", &code), ("state", &state)]).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
}

#[rocket::async_test]
async fn app_ids_sign_up_return_without_code_sends_the_user_back_to_start_again() {
    // App ID ends a Cloud Directory sign-up or password reset with `?flow=…` and no code
    // (appid-api.md §2). Not a refusal (B14/B15 are about a missing code in a sign-in):
    // nothing is accepted, the transaction is used up, and the user goes back to the page
    // the login started from, which starts a new login.
    let app = spawn_app().await;
    app.begin_login("/auth_route?x=1").await;
    let response = app.client.get("/afterauth?flow=sign_up").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route?x=1");
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    assert!(response.cookies().get("appid_session").is_none());
    drop(response);
    assert!(app.client.cookies().get_private("appid_login").is_none(), "the transaction is used up");

    // Without a transaction: the root; an unknown flow, or one with a code, is a sign-in.
    let response = app.client.get("/afterauth?flow=forgot_password").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/");
    drop(response);
    assert_refused(app.client.get("/afterauth?flow=other").dispatch().await).await;
    assert_refused(app.client.get("/afterauth?flow=sign_up&code=x").dispatch().await).await;
    assert_refused(app.client.get("/afterauth?flow=sign_up&flow=sign_up").dispatch().await).await;
    assert_eq!(app.token_calls(), 0);
    assert_not_logged_in(&app).await;
}

#[rocket::async_test]
async fn r_a12_the_pkce_verifier_is_sent_and_a_wrong_one_is_refused_by_the_provider() {
    // Whether App ID enforces PKCE for regular web apps is open (security.md §8); the
    // emulator does, so a verifier that does not match the challenge fails the exchange.
    let app = spawn_app_with(pkce_advertised(), json!({})).await;
    let (code, state) = app.code_and_state(ALICE).await;
    let mut login = app.pending_login();
    assert!(login["verifier"].as_str().is_some_and(|v| v.len() >= 43));
    login["verifier"] = json!("a-verifier-that-does-not-match-the-challenge-0123456789");
    let response = app
        .client
        .get(callback_path(&[("code", &code), ("state", &state)]))
        .private_cookie(Cookie::new("appid_login", login.to_string()))
        .dispatch()
        .await;
    let body = assert_refused(response).await;
    assert!(body.contains(EXPIRED_TEXT), "invalid_grant: start again");
    assert_eq!(app.token_calls(), 1, "exactly one exchange, not retried");
    assert_not_logged_in(&app).await;
}

/// Issue 19 item 3: IBM's SDK mocks answer a refused code with `invalid_grant` and 401
/// rather than 400; that is still "start again", not "the identity service is down".
#[rocket::async_test]
async fn invalid_grant_with_status_401_gives_the_start_again_page_not_unavailable() {
    let config = appid_emulator::EmulatorConfig { invalid_grant_status: 401, ..Default::default() };
    let app = spawn_app_with(config, json!({})).await;
    let (code, state) = app.code_and_state(ALICE).await;
    let used_up = format!("{code}x");

    let response = app.afterauth(&[("code", &used_up), ("state", &state)]).await;
    let body = assert_refused(response).await;
    assert!(body.contains(EXPIRED_TEXT), "invalid_grant (401): start again");
    assert_eq!(app.token_calls(), 1, "a refused code is never retried");
    assert_not_logged_in(&app).await;
}
