//! Session key rotation (issue 5, F6): a new `SESSION_SECRET_KEY` never gives an error.
//! Without the previous key, cookies sealed with it count as absent and the user logs in
//! again; with `SESSION_SECRET_KEY_PREVIOUS` (`appid.previous_session_secret_key`) they keep
//! working and are sealed again with the new key on the same response.

use appid_emulator::{EmulatorConfig, Endpoint};
use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::json;
use url::Url;

use crate::chunking::{big_claims_provider, BIG};
use crate::common::*;

/// The key `app_figment` gives the first instance.
const OLD_KEY: &str = "a test passphrase that is long enough to be stretched";
const NEW_KEY: &str = "the rotated session key, also long enough to be stretched";

/// The same app restarted with the new key (and, with `keep_previous`, the old one for
/// reading). It keeps no cookies: each request carries the ones a test gives it.
async fn rotated(app: &TestApp, keep_previous: bool) -> Client {
    let settings = if keep_previous {
        json!({ "session_secret_key": NEW_KEY, "previous_session_secret_key": OLD_KEY })
    } else {
        json!({ "session_secret_key": NEW_KEY })
    };
    app.bare_browser(settings).await
}

/// The session cookies (every chunk) of the test browser.
fn session_cookies(client: &Client) -> Vec<Cookie<'static>> {
    client.cookies().iter().filter(|c| c.name().starts_with("appid_session")).cloned().collect()
}

/// Session cookies set (not removed) by `response`.
fn set_session_cookies(response: &LocalResponse<'_>) -> Vec<Cookie<'static>> {
    response
        .cookies()
        .iter()
        .filter(|c| c.name().starts_with("appid_session") && !c.value().is_empty())
        .map(|c| c.clone().into_owned())
        .collect()
}

/// `user` logged in on a new app against `provider`; returns the app and the session's
/// cookies, which must be `chunks` of them.
async fn logged_in(provider: EmulatorConfig, user: &str, chunks: usize) -> (TestApp, Vec<Cookie<'static>>) {
    let app = spawn_app_with(provider, json!({})).await;
    app.login_as(user, "/auth_route").await;
    let old = session_cookies(&app.client);
    assert_eq!(old.len(), chunks);
    (app, old)
}

#[rocket::async_test]
async fn without_the_previous_key_old_sessions_are_absent_and_the_user_logs_in_again() {
    for (provider, user, chunks) in [(Default::default(), ALICE, 1), (big_claims_provider(), BIG, 3)] {
        let (app, old) = logged_in(provider, user, chunks).await;
        let restarted = rotated(&app, false).await;
        let calls = app.idp.emulator.calls(Endpoint::Token);

        let page = replay(&restarted, &old, "text/html").await;
        assert_eq!(page.status(), Status::SeeOther, "a browser is sent to log in, no error page");
        assert!(location(&page).contains("/authorization?"));
        let removed = page.cookies().iter().filter(|c| c.name().starts_with("appid_session")).count();
        assert_eq!(removed, chunks, "every cookie of the old session is removed");
        drop(page);
        assert_eq!(replay(&restarted, &old, "application/json").await.status(), Status::Unauthorized);
        assert_eq!(app.idp.emulator.calls(Endpoint::Token), calls, "nothing was asked of the provider");
    }
}

#[rocket::async_test]
async fn with_the_previous_key_old_sessions_are_accepted_and_sealed_again_with_the_new_key() {
    for (provider, user, chunks) in [(Default::default(), ALICE, 1), (big_claims_provider(), BIG, 3)] {
        let (app, old) = logged_in(provider, user, chunks).await;

        let rotating = rotated(&app, true).await;
        let response = replay(&rotating, &old, "text/html").await;
        assert_eq!(response.status(), Status::Ok, "the old session still works");
        let resealed = set_session_cookies(&response);
        assert_eq!(resealed.len(), chunks, "sealed again on the same response");
        for cookie in &old {
            let new = resealed.iter().find(|c| c.name() == cookie.name()).unwrap();
            assert_ne!(new.value(), cookie.value());
        }
        assert!(response.into_string().await.unwrap().contains(user));

        // Once the previous key is gone, the re-sealed cookies work and the old ones do not.
        let rotated_only = rotated(&app, false).await;
        assert_eq!(replay(&rotated_only, &resealed, "text/html").await.status(), Status::Ok);
        assert_eq!(replay(&rotated_only, &old, "application/json").await.status(), Status::Unauthorized);
        // And a session sealed with the new key needs no re-sealing.
        let again = replay(&rotating, &resealed, "text/html").await;
        assert_eq!(again.status(), Status::Ok);
        assert!(set_session_cookies(&again).is_empty(), "nothing to re-seal");
    }
}

/// A login Alice started before the rotation and finished at the provider: the raw
/// transaction cookie and the callback path, not yet delivered.
async fn login_in_flight(app: &TestApp) -> (Cookie<'static>, String) {
    let start = app.get("/auth_route").await;
    let authorization = Url::parse(&location(&start)).unwrap();
    let transaction = start.cookies().get("appid_login").unwrap().clone().into_owned();
    drop(start);
    (transaction, app.sign_in_at_provider(&authorization, ALICE).await)
}

#[rocket::async_test]
async fn with_the_previous_key_a_login_in_flight_during_the_rotation_completes() {
    let app = spawn_app().await;
    let (transaction, callback) = login_in_flight(&app).await;

    let rotating = rotated(&app, true).await;
    let response = rotating.get(callback.clone()).cookie(transaction.clone()).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
    let session = set_session_cookies(&response);
    drop(response);
    assert_eq!(replay(&rotating, &session, "text/html").await.status(), Status::Ok);

    // Without the previous key the same transaction gets the "start again" page (F6).
    let app = spawn_app().await;
    let (transaction, callback) = login_in_flight(&app).await;
    let response = rotated(&app, false).await;
    let response = response.get(callback).cookie(transaction).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.into_string().await.unwrap().contains("Start again"));
}
