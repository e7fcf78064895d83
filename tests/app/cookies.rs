//! The session cookie (security.md §1.1–1.5, R-C1–R-C8, R-L1–R-L2, bad inputs B31–B40):
//! whatever arrives in the `Cookie` header, only a cookie sealed by this app, current,
//! not idle and not logged out counts as a session. Everything else is no session: a
//! browser is sent to log in, a script gets 401, never a 500, and the app asks the
//! provider nothing about it (no token, introspection or management call).

use std::time::{Duration, Instant};

use appid_emulator::Endpoint;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};

use crate::common::*;

/// Calls that would mean the app used a cookie it should have ignored.
fn provider_use(app: &TestApp) -> [u64; 3] {
    let idp = &app.idp.emulator;
    [idp.calls(Endpoint::Token), idp.calls(Endpoint::Introspect), idp.calls(Endpoint::ManagementRoles)]
}

/// The raw (sealed) value of this browser's cookie `name`.
fn raw_cookie(app: &TestApp, name: &str) -> String {
    app.client.cookies().get(name).unwrap_or_else(|| panic!("a {name} cookie")).value().to_string()
}

/// `Set-Cookie` for the session in `response`: None if untouched, Some(value) otherwise
/// (an empty value is a removal).
fn session_set_cookie(response: &LocalResponse<'_>) -> Option<String> {
    response.cookies().get("appid_session").map(|c| c.value().to_string())
}

/// A browser visit with exactly these cookies, given as a `Cookie` header's text. (The
/// local client ignores a literal `Cookie` header; its pairs are sent as they are, raw.)
async fn visit_with_cookie_header<'c>(client: &'c Client, cookie_header: &str) -> LocalResponse<'c> {
    let mut request = client.get("/auth_route").header(Header::new("Accept", "text/html"));
    for pair in cookie_header.split("; ").filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap();
        request = request.cookie(Cookie::new(name.to_string(), value.to_string()));
    }
    request.dispatch().await
}

/// Starts a login in a separate cookie-less browser; returns the raw transaction cookie
/// and the authorization URL (a logged-in test browser cannot start one itself).
async fn transaction_elsewhere(app: &TestApp) -> (Cookie<'static>, url::Url) {
    let bare = app.bare_browser(json!({})).await;
    let response = visit(&bare, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let cookie = response.cookies().get("appid_login").unwrap().clone().into_owned();
    (cookie, url::Url::parse(&location(&response)).unwrap())
}

/// No session: a login starts at the provider, no session is set (at most the refused one
/// is removed), and nothing about the cookie was asked of the provider.
fn assert_treated_as_absent(app: &TestApp, response: &LocalResponse<'_>, before: [u64; 3]) {
    assert_eq!(response.status(), Status::SeeOther, "no session: a login starts");
    assert!(location(response).starts_with(&app.idp.oauth_server_url), "to the provider");
    if let Some(value) = session_set_cookie(response) {
        assert!(value.is_empty(), "only a removal of the session cookie may be sent");
    }
    assert_eq!(provider_use(app), before, "no token, introspection or management call");
}

#[rocket::async_test]
async fn r_c1_the_session_cookie_has_exactly_our_attributes_and_lifetime() {
    let app = spawn_app().await;
    let response = app.login_as(ALICE, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let set_cookie: Vec<&str> =
        response.headers().get("Set-Cookie").filter(|c| c.starts_with("appid_session=")).collect();
    assert_eq!(set_cookie.len(), 1, "one session cookie: {set_cookie:?}");
    let cookie = Cookie::parse_encoded(set_cookie[0].to_string()).unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None, "no Domain: only this host gets it");
    assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax), "Lax, or the login would loop");
    // Max-Age is the session's lifetime: min(access token expiry, 8 h), never Rocket's week.
    let max_age = cookie.max_age().unwrap().whole_seconds();
    let session = app.session_json();
    let lifetime = session["expires_at"].as_i64().unwrap() - now();
    assert!((max_age - lifetime).abs() <= 2, "Max-Age {max_age} = lifetime {lifetime}");
    assert!(max_age <= 8 * 3600);
    // Over http (this test's redirect URI) there is no Secure and no __Host- prefix; see
    // the next test for https.
    assert_ne!(cookie.secure(), Some(true));
}

#[rocket::async_test]
async fn r_c1_behind_https_the_cookies_are_secure_and_host_prefixed() {
    let app = spawn_app_with(
        appid_emulator::EmulatorConfig::default(),
        json!({ "redirect_uri": "https://localhost:8443/afterauth" }),
    )
    .await;
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let login = response.cookies().get("__Host-appid_login").expect("a __Host- transaction cookie").clone();
    assert_eq!(login.secure(), Some(true));
    assert_eq!(login.http_only(), Some(true));
    assert_eq!(login.path(), Some("/"));
    assert_eq!(login.domain(), None);
    assert!(login.max_age().unwrap().whole_seconds() <= 600);

    let authorization = url::Url::parse(&location(&response)).unwrap();
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let response = app.client.get(callback).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    let session = response.cookies().get("__Host-appid_session").expect("a __Host- session cookie").clone();
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.path(), Some("/"));
    assert_eq!(session.domain(), None);
    assert_eq!(session.same_site(), Some(rocket::http::SameSite::Lax));
    assert!(response.cookies().get("appid_session").is_none(), "never an unprefixed one");
    // A session cookie that is not HTTPS-only would not count here.
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn b31_a_random_session_cookie_is_no_session_and_counts_as_undecryptable() {
    let app = spawn_app().await;
    let browser = app.bare_browser(json!({})).await;
    let before = provider_use(&app);
    let undecryptable = undecryptable_cookies(&browser);
    let random = STANDARD.encode((0..45).map(|_| rand::random::<u8>()).collect::<Vec<u8>>());
    assert_eq!(random.len(), 60);

    let response = visit_with_cookie_header(&browser, &format!("appid_session={random}")).await;
    assert_treated_as_absent(&app, &response, before);
    assert_eq!(session_set_cookie(&response).as_deref(), Some(""), "the junk cookie is removed");
    assert!(undecryptable_cookies(&browser) > undecryptable, "metric +1");

    // A script gets 401, not a login redirect and not a 500.
    let response = browser
        .get("/auth_route")
        .header(Header::new("Accept", "application/json"))
        .cookie(Cookie::new("appid_session", random.clone()))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(response.into_string().await.unwrap(), r#"{"error":"unauthenticated"}"#);
    assert_eq!(provider_use(&app), before);
}

#[rocket::async_test]
async fn b32_a_session_sealed_with_another_secret_key_is_no_session() {
    let app = spawn_app().await;
    let other = spawn_app_with(
        appid_emulator::EmulatorConfig::default(),
        json!({ "session_secret_key": "another test passphrase, as after a key rotation" }),
    )
    .await;
    other.login_as(ALICE, "/auth_route").await;
    assert_eq!(other.get("/auth_route").await.status(), Status::Ok, "good where it was made");
    let sealed = raw_cookie(&other, "appid_session");

    let browser = app.bare_browser(json!({})).await;
    let before = provider_use(&app);
    let undecryptable = undecryptable_cookies(&browser);
    let response = visit_with_cookie_header(&browser, &format!("appid_session={sealed}")).await;
    assert_treated_as_absent(&app, &response, before);
    assert!(undecryptable_cookies(&browser) > undecryptable);
}

#[rocket::async_test]
async fn b33_a_session_cookie_with_one_flipped_bit_is_no_session() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let sealed = raw_cookie(&app, "appid_session");
    let browser = app.bare_browser(json!({})).await;
    // The untouched value works in another browser (so the flip is what breaks it).
    let response = visit_with_cookie_header(&browser, &format!("appid_session={sealed}")).await;
    assert_eq!(response.status(), Status::Ok);

    let body = sealed.strip_prefix("s4.").expect("the session cookie's format");
    let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let flipped = format!("s4.{}", URL_SAFE_NO_PAD.encode(bytes));
    let before = provider_use(&app);
    let undecryptable = undecryptable_cookies(&browser);
    let response = visit_with_cookie_header(&browser, &format!("appid_session={flipped}")).await;
    assert_treated_as_absent(&app, &response, before);
    assert!(undecryptable_cookies(&browser) > undecryptable);
}

#[rocket::async_test]
async fn b34_a_transaction_cookie_moved_to_the_session_name_is_no_session() {
    let app = spawn_app().await;
    app.begin_login("/auth_route").await;
    // A genuine value sealed by this app, but for the name `appid_login` (the AEAD's
    // associated data), presented as `appid_session`.
    let transaction = raw_cookie(&app, "appid_login");
    let browser = app.bare_browser(json!({})).await;
    let before = provider_use(&app);
    let response = visit_with_cookie_header(&browser, &format!("appid_session={transaction}")).await;
    assert_treated_as_absent(&app, &response, before);
}

#[rocket::async_test]
async fn b35_a_session_past_its_embedded_expiry_is_no_session_and_is_removed() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let browser = app.bare_browser(json!({})).await;
    let mut session = app.session_json();
    // The same session still current works (so the expiry is what is checked).
    let response = visit_with_session(&browser, &session).await;
    assert_eq!(response.status(), Status::Ok);

    session["expires_at"] = json!(now() - 1);
    let before = provider_use(&app);
    let response = visit_with_session(&browser, &session).await;
    assert_treated_as_absent(&app, &response, before);
    assert_eq!(session_set_cookie(&response).as_deref(), Some(""), "a removal Set-Cookie");
}

#[rocket::async_test]
async fn b36_a_session_of_an_older_schema_version_is_no_session() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let browser = app.bare_browser(json!({})).await;
    let current = app.session_json();
    assert_eq!(visit_with_session(&browser, &current).await.status(), Status::Ok);

    let mut older = current.clone();
    older["v"] = json!(2);
    let mut unversioned = current.clone();
    unversioned.as_object_mut().unwrap().remove("v");
    for session in [older, unversioned] {
        let before = provider_use(&app);
        let response = visit_with_session(&browser, &session).await;
        assert_treated_as_absent(&app, &response, before);
    }
}

#[rocket::async_test]
async fn b37_repeated_or_prefixed_session_cookies_never_authenticate_a_forged_value() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let genuine = raw_cookie(&app, "appid_session");
    let browser = app.bare_browser(json!({})).await;
    let transaction = transaction_elsewhere(&app).await.0.value().to_string();
    let junk = STANDARD.encode([7u8; 60]);

    let before = provider_use(&app);
    for header in [
        // Two forged values under our name: neither decrypts.
        format!("appid_session={junk}; appid_session={transaction}"),
        // The genuine value under a shadowing name (a sibling host's `__Host-`-less
        // cookie cannot pose as ours, nor ours as another name: the name is sealed in).
        format!("__Host-appid_session={genuine}"),
        format!("appid_session_={genuine}; Appid_Session={genuine}"),
    ] {
        let response = visit_with_cookie_header(&browser, &header).await;
        assert_treated_as_absent(&app, &response, before);
    }
}

#[rocket::async_test]
async fn b38_a_cookie_header_of_20000_tiny_cookies_is_handled_quickly() {
    let app = spawn_app().await;
    let browser = app.bare_browser(json!({})).await;
    let header: String = (0..20_000).map(|i| format!("c{i}=vvvvvvv; ")).collect();
    assert!(header.len() >= 280 * 1024, "about 300 KB: {}", header.len());
    let before = provider_use(&app);
    let started = Instant::now();
    let response = visit_with_cookie_header(&browser, &header).await;
    let elapsed = started.elapsed();
    assert_treated_as_absent(&app, &response, before);
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    // Over real HTTP hyper's limits apply first: see headers::b38_over_http_….
}

#[rocket::async_test]
async fn b40_a_copied_session_cookie_works_until_logout_then_never_again() {
    // Documented residual risk (RFC 9700 §2.2.1: App ID offers no sender-constrained
    // tokens): a stolen cookie works like the original until logout (deny-list), the idle
    // or absolute timeout, or the provider reports the token inactive.
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let stolen = format!("appid_session={}", raw_cookie(&app, "appid_session"));
    let thief = another_browser(&app, json!({})).await;
    assert_eq!(visit_with_cookie_header(&thief, &stolen).await.status(), Status::Ok, "the residual risk");

    let response = app.logout().await;
    app.signed_out_page(response).await;
    let before = provider_use(&app);
    let response = visit_with_cookie_header(&thief, &stolen).await;
    assert_treated_as_absent(&app, &response, before);
}

#[rocket::async_test]
async fn b39_non_utf8_bytes_in_the_cookie_header_are_skipped() {
    // The local client only takes text headers: this one goes over real HTTP.
    let app = spawn_app().await;
    let server = crate::headers::serve(app_figment(&app.idp, json!({}))).await;
    let mut request =
        b"GET /auth_route HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nCookie: appid_session="
            .to_vec();
    request.extend_from_slice(&[0xff, 0xfe, 0x80, 0xc3, 0x28]);
    request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let before = provider_use(&app);
    let head = server.raw(&request).await;
    assert!(head.starts_with("HTTP/1.1 303") || head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("set-cookie: appid_session=") || head.contains("appid_session=;")
    );
    assert_eq!(provider_use(&app), before);
}

#[rocket::async_test]
async fn r_c2_an_idle_session_ends_and_activity_is_written_back_at_most_once_a_minute() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let browser = app.bare_browser(json!({})).await;
    let session = app.session_json();
    assert!(session["last_seen"].as_i64().is_some(), "the session records its last use");

    // Used 10 s ago: accepted, not rewritten. (`visit_with_session` seals the session in
    // Rocket's jar, as older versions did: that is written back once in the current format,
    // with `last_seen` unchanged, and the current format then stays as it is.)
    let mut recent = session.clone();
    recent["last_seen"] = json!(now() - 10);
    let response = visit_with_session(&browser, &recent).await;
    assert_eq!(response.status(), Status::Ok);
    let current = session_set_cookie(&response).expect("an older format is written back");
    assert!(current.starts_with("s4."));
    let response = visit_with_cookie_header(&browser, &format!("appid_session={current}")).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(session_set_cookie(&response), None, "not rewritten within the minute");

    // Used 5 minutes ago: accepted, and last_seen moves to now.
    let mut older = session.clone();
    older["last_seen"] = json!(now() - 300);
    let tracked = app.other_browser(json!({})).await;
    let response = visit_with_session(&tracked, &older).await;
    assert_eq!(response.status(), Status::Ok);
    assert!(session_set_cookie(&response).is_some_and(|v| !v.is_empty()), "the activity is written back");
    let rewritten: Value = session_of(&tracked).unwrap();
    assert!(rewritten["last_seen"].as_i64().unwrap() >= now() - 2);
    assert_eq!(rewritten["sid"], session["sid"], "the same session, only its activity updated");
    assert_eq!(rewritten["expires_at"], session["expires_at"], "the absolute expiry does not move");

    // Unused for 31 minutes: ended, although its absolute expiry is hours away.
    let mut idle = session.clone();
    idle["last_seen"] = json!(now() - 31 * 60);
    assert!(idle["expires_at"].as_i64().unwrap() > now() + 600);
    let before = provider_use(&app);
    let response = visit_with_session(&browser, &idle).await;
    assert_treated_as_absent(&app, &response, before);
    assert_eq!(session_set_cookie(&response).as_deref(), Some(""));
}

/// Sessions written by older versions (JSON sealed in Rocket's private jar) keep working
/// after an upgrade, and are written back in the current format at once.
#[rocket::async_test]
async fn a_session_cookie_of_the_older_format_is_accepted_and_written_back_in_the_current_one() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let session = app.session_json();
    let tracked = app.other_browser(json!({})).await;
    let response = visit_with_session(&tracked, &session).await;
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().await.unwrap().contains(ALICE));
    let written = tracked.cookies().get("appid_session").expect("written back").value().to_string();
    assert!(written.starts_with("s4."), "the current format");
    assert_eq!(session_of(&tracked).unwrap(), session, "the same session");
    assert_eq!(visit(&tracked, "/auth_route").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn r_c3_every_login_mints_a_new_session_id() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let first = app.session_json()["sid"].as_str().unwrap().to_string();
    // A second login completed in this (logged-in) browser replaces the session.
    let (transaction, authorization) = transaction_elsewhere(&app).await;
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let response = app.client.get(callback).cookie(transaction).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    let second = app.session_json()["sid"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert!(app.client.cookies().get("appid_login").is_none(), "the transaction cookie is gone");
}

#[rocket::async_test]
async fn r_l1_logout_removes_the_cookies_and_sends_clear_site_data() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app.logout().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(response.headers().get_one("Location"), Some("/signed_out"));
    assert_eq!(response.headers().get_one("Clear-Site-Data"), Some("\"cookies\""));
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(session_set_cookie(&response).as_deref(), Some(""), "the session cookie is removed");
    let removal = response.cookies().get("appid_session").unwrap();
    assert_eq!(removal.path(), Some("/"), "removed under the same name and path");
    assert!(response.cookies().get("appid_login").is_none_or(|c| c.value().is_empty()));
    assert!(app.client.cookies().get("appid_session").is_none());
    // The page it leads to does not bring the session back either.
    let page = app.follow(response).await;
    assert_eq!(session_set_cookie(&page), None);
    drop(page);
    assert!(app.client.cookies().get("appid_session").is_none());
}

#[rocket::async_test]
async fn r_l1_a_cross_site_logout_is_refused_and_leaves_the_session_alone() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app
        .post_with("/logout", &[("Sec-Fetch-Site", "cross-site"), ("Origin", "https://evil.example")])
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(response.headers().get_one("Clear-Site-Data").is_none());
    assert_eq!(session_set_cookie(&response), None, "the session cookie is untouched");
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn r_l2_a_saved_session_cookie_replayed_after_logout_is_refused() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let saved = format!("appid_session={}", raw_cookie(&app, "appid_session"));
    app.logout().await;

    let replay = another_browser(&app, json!({})).await;
    let before = provider_use(&app);
    let response = visit_with_cookie_header(&replay, &saved).await;
    assert_treated_as_absent(&app, &response, before);
    let (name, value) = saved.split_once('=').unwrap();
    let response = replay
        .get("/auth_route")
        .header(Header::new("Accept", "application/json"))
        .cookie(Cookie::new(name.to_string(), value.to_string()))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Unauthorized);
    // Another login of the same user is a new session and is not affected.
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}
