//! Several tabs (issue 5, R-A13, F16): one login cookie holds up to `login_max_pending`
//! logins in progress, so logins started in several tabs at once all complete, each back
//! where it started. The callback takes only its own pending login (by `state`); a used,
//! evicted or foreign `state` gets the 400 page without any call to the provider.

use appid_emulator::Endpoint;
use rocket::http::Status;
use serde_json::{json, Value};

use crate::common::*;

/// The logins pending in the test browser (one is stored as an object, several as a list).
fn pending(app: &TestApp) -> Vec<Value> {
    match app.client.cookies().get_private("appid_login") {
        None => Vec::new(),
        Some(cookie) => match serde_json::from_str(cookie.value()).unwrap() {
            Value::Array(list) => list,
            one => vec![one],
        },
    }
}

#[rocket::async_test]
async fn f16_two_interleaved_logins_both_complete_and_land_on_their_own_pages() {
    // Begin A, begin B, complete A, complete B; and the other way round.
    for a_first in [true, false] {
        let app = spawn_app().await;
        let a = app.begin_login("/auth_route?tab=a").await;
        let b = app.begin_login("/auth_route?tab=b").await;
        assert_eq!(pending(&app).len(), 2, "both logins are pending in one cookie");
        let back_a = app.sign_in_at_provider(&a, ALICE).await;
        let back_b = app.sign_in_at_provider(&b, CAROL).await;
        let order = if a_first {
            [(back_a, "/auth_route?tab=a", ALICE), (back_b, "/auth_route?tab=b", CAROL)]
        } else {
            [(back_b, "/auth_route?tab=b", CAROL), (back_a, "/auth_route?tab=a", ALICE)]
        };
        for (i, (callback, destination, user)) in order.into_iter().enumerate() {
            let response = app.client.get(callback).dispatch().await;
            assert_eq!(response.status(), Status::SeeOther, "login {i} completes");
            assert_eq!(location(&response), destination);
            drop(response);
            assert_eq!(pending(&app).len(), 1 - i, "only the completed login is removed");
            let page = app.get(destination).await;
            assert_eq!(page.status(), Status::Ok);
            assert!(page.into_string().await.unwrap().contains(user), "{user}'s session");
        }
        assert_eq!(app.token_calls(), 2);
        assert!(app.client.cookies().get("appid_login").is_none(), "nothing left pending");
    }
}

#[rocket::async_test]
async fn a_replayed_state_is_refused_without_a_provider_call() {
    let app = spawn_app().await;
    let a = app.begin_login("/auth_route?tab=a").await;
    let b = app.begin_login("/auth_route?tab=b").await;
    let back_a = app.sign_in_at_provider(&a, ALICE).await;
    let back_b = app.sign_in_at_provider(&b, ALICE).await;
    assert_eq!(app.client.get(back_a.clone()).dispatch().await.status(), Status::SeeOther);

    let replay = app.client.get(back_a).dispatch().await;
    assert_eq!(replay.status(), Status::BadRequest);
    assert!(replay.headers().get_one("Location").is_none(), "never a redirect");
    assert!(replay.into_string().await.unwrap().contains(REFUSED));
    assert_eq!(app.token_calls(), 1, "the replay is not exchanged");
    // A refused callback used up the pending logins (R-A4): tab B starts again.
    let late = app.client.get(back_b).dispatch().await;
    assert_eq!(late.status(), Status::BadRequest);
    assert_eq!(app.token_calls(), 1);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "the completed login is kept");
}

#[rocket::async_test]
async fn a_callback_matching_no_pending_login_gets_the_400_page_without_a_provider_call() {
    let app = spawn_app().await;
    let a = app.begin_login("/auth_route?tab=a").await;
    app.begin_login("/auth_route?tab=b").await;
    let back_a = app.sign_in_at_provider(&a, ALICE).await;
    let forged = back_a.replace("state=", "state=x");
    let response = app.client.get(forged).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.into_string().await.unwrap().contains(REFUSED));
    assert_eq!(app.token_calls(), 0);
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 0);
}

#[rocket::async_test]
async fn more_logins_than_the_limit_evict_the_oldest() {
    let app = spawn_app_with(Default::default(), json!({ "login_max_pending": 3 })).await;
    let mut tabs = Vec::new();
    for tab in 0..4 {
        tabs.push(app.begin_login(&format!("/auth_route?tab={tab}")).await);
    }
    assert_eq!(pending(&app).len(), 3);
    let backs: Vec<String> = {
        let mut backs = Vec::new();
        for tab in &tabs {
            backs.push(app.sign_in_at_provider(tab, ALICE).await);
        }
        backs
    };
    // The newest three complete, in any order.
    for tab in [3, 1, 2] {
        let response = app.client.get(backs[tab].clone()).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther, "tab {tab}");
        assert_eq!(location(&response), format!("/auth_route?tab={tab}"));
    }
    // The oldest was evicted: its callback gets the 400 page, no exchange.
    let response = app.client.get(backs[0].clone()).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.into_string().await.unwrap().contains(REFUSED));
    assert_eq!(app.token_calls(), 3);
}

#[rocket::async_test]
async fn long_return_paths_evict_the_oldest_so_the_login_cookie_stays_under_4096_bytes() {
    // Return paths may be 2,048 bytes: with 1 KB ones only two logins fit in one cookie.
    let app = spawn_app().await;
    let path = |tab: usize| format!("/auth_route?tab={tab}&q={}", "x".repeat(1000));
    let mut tabs = Vec::new();
    for tab in 0..4 {
        let response = app.get(&path(tab)).await;
        assert_eq!(response.status(), Status::SeeOther);
        for line in response.headers().get("Set-Cookie") {
            assert!(line.len() < 4096, "a {} byte Set-Cookie line", line.len());
        }
        tabs.push(url::Url::parse(&location(&response)).unwrap());
    }
    let kept: Vec<Value> = pending(&app).iter().map(|p| p["return_to"].clone()).collect();
    assert_eq!(kept, [json!(path(2)), json!(path(3))], "the newest two");
    for tab in [3, 2] {
        let back = app.sign_in_at_provider(&tabs[tab], ALICE).await;
        let response = app.client.get(back).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response), path(tab));
    }
    let back = app.sign_in_at_provider(&tabs[0], ALICE).await;
    assert_eq!(app.client.get(back).dispatch().await.status(), Status::BadRequest, "evicted");
    assert_eq!(app.token_calls(), 2);
}
