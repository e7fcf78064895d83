//! Session timeouts (issue 5, R-C2, ASVS 7.3.1/7.3.2): an idle timeout
//! (`session_idle_secs`, default 30 min) and an absolute lifetime counted from the login
//! (`session_max_age_secs`, default 8 h), both kept inside the sealed cookie and checked by
//! the server. Sessions are forged here with the app's own key, with their times moved.

use rocket::http::Status;
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};

use crate::common::*;

/// Logs Alice in with `settings` and returns her session (decrypted) and a cookie-less
/// browser of the same app.
async fn session_and_browser(settings: Value) -> (TestApp, Value, Client) {
    let app = spawn_app_with(Default::default(), settings.clone()).await;
    assert_eq!(app.login_as(ALICE, "/auth_route").await.status(), Status::SeeOther);
    let session = app.session_json();
    let browser = app.bare_browser(settings).await;
    (app, session, browser)
}

/// The session was refused: a login starts and the session cookie is removed.
fn assert_ended(response: &LocalResponse<'_>) {
    assert_eq!(response.status(), Status::SeeOther, "a login starts");
    assert!(location(response).contains("/authorization?"));
    assert_eq!(response.cookies().get("appid_session").map(|c| c.value()), Some(""), "the cookie is removed");
}

#[rocket::async_test]
async fn the_idle_timeout_is_a_setting() {
    let (_app, session, browser) = session_and_browser(json!({ "session_idle_secs": 120 })).await;
    let mut used = session.clone();
    used["last_seen"] = json!(now() - 100);
    assert_eq!(visit_with_session(&browser, &used).await.status(), Status::Ok, "used 100 s ago");
    used["last_seen"] = json!(now() - 130);
    assert_ended(&visit_with_session(&browser, &used).await);

    // With the default (30 min) the same session unused for 130 s is fine, and for 31 min not.
    let (_app, session, browser) = session_and_browser(json!({})).await;
    let mut used = session.clone();
    used["last_seen"] = json!(now() - 130);
    assert_eq!(visit_with_session(&browser, &used).await.status(), Status::Ok);
    used["last_seen"] = json!(now() - 31 * 60);
    assert_ended(&visit_with_session(&browser, &used).await);
}

#[rocket::async_test]
async fn the_absolute_lifetime_counts_from_the_login_even_when_the_expiry_was_moved() {
    // A session whose tokens were renewed keeps its `created_at`: however far `expires_at`
    // moved, it ends `session_max_age_secs` after the login.
    let (_app, session, browser) = session_and_browser(json!({ "session_max_age_secs": 600 })).await;
    assert!(session["expires_at"].as_i64().unwrap() <= now() + 600, "the expiry is capped at login");
    let mut renewed = session.clone();
    renewed["expires_at"] = json!(now() + 3600);
    renewed["created_at"] = json!(now() - 500);
    assert_eq!(visit_with_session(&browser, &renewed).await.status(), Status::Ok, "500 s after the login");
    renewed["created_at"] = json!(now() - 601);
    assert_ended(&visit_with_session(&browser, &renewed).await);

    // The default: 8 hours.
    let (_app, session, browser) = session_and_browser(json!({})).await;
    let mut renewed = session.clone();
    renewed["expires_at"] = json!(now() + 3600);
    renewed["created_at"] = json!(now() - 8 * 3600 - 1);
    assert_ended(&visit_with_session(&browser, &renewed).await);
}

#[rocket::async_test]
async fn session_settings_outside_their_bounds_stop_the_app_from_starting() {
    let idp = appid_emulator::spawn(Default::default()).await.unwrap();
    for settings in [
        json!({ "session_idle_secs": 59 }),
        json!({ "session_idle_secs": 8 * 24 * 3600 }),
        json!({ "session_max_chunks": 0 }),
        json!({ "login_max_pending": 9 }),
    ] {
        let error = rocket_appid::build(app_figment(&idp, settings.clone())).ignite().await.unwrap_err();
        assert!(matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)), "{settings} is refused");
    }
}
