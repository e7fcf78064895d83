//! Logout (issue 5): per-session token in the form, every cookie cleared, the refresh token
//! revoked at the provider, the provider's SSO session ended when configured, and no
//! protected content afterwards for Back or a replayed cookie.

use appid_emulator::{EmulatorConfig, Endpoint, Fault};
use rocket::http::{ContentType, Status};
use serde_json::json;
use url::Url;

use crate::common::*;

fn with_refresh() -> EmulatorConfig {
    EmulatorConfig { refresh_tokens: true, ..EmulatorConfig::default() }
}

#[rocket::async_test]
async fn logout_revokes_the_refresh_token_and_clears_every_cookie() {
    let app = spawn_app_with(with_refresh(), json!({})).await;
    app.login_as(ALICE, "/auth_route").await;
    let refresh_token =
        app.session_json()["rt"].as_str().expect("the session keeps the refresh token").to_string();
    assert!(app.idp.emulator.refresh_token_active(&refresh_token));
    let ours: Vec<String> = app
        .client
        .cookies()
        .iter()
        .filter(|c| c.name().starts_with("appid_") || c.name().starts_with("__Host-appid_"))
        .map(|c| c.name().to_string())
        .collect();
    assert!(!ours.is_empty());

    let response = app.logout().await;
    for name in &ours {
        let removal = response.cookies().get(name).unwrap_or_else(|| panic!("{name} is removed"));
        assert!(removal.value().is_empty(), "{name} is removed, not rewritten");
    }
    drop(response);
    assert!(app.session_cookies().is_empty(), "no session cookie is left in the browser");
    assert_eq!(app.idp.emulator.calls(Endpoint::Revoke), 1, "one revocation call");
    assert!(!app.idp.emulator.refresh_token_active(&refresh_token), "the provider no longer accepts it");
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther, "logged out: to the provider");
}

#[rocket::async_test]
async fn a_failed_revocation_does_not_stop_the_logout() {
    let app = spawn_app_with(with_refresh(), json!({})).await;
    app.login_as(ALICE, "/auth_route").await;
    app.idp.emulator.set_fault(Endpoint::Revoke, Fault::status(500));
    let response = app.logout().await;
    app.signed_out_page(response).await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Revoke), 1, "revocation was tried");
    assert!(app.session_cookies().is_empty());
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn without_a_refresh_token_logout_makes_no_revocation_call() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    app.logout().await;
    assert_eq!(app.idp.emulator.calls(Endpoint::Revoke), 0);
}

#[rocket::async_test]
async fn a_get_to_logout_changes_nothing() {
    let app = spawn_app_with(with_refresh(), json!({})).await;
    app.login_as(ALICE, "/auth_route").await;
    let before = app.session_cookies();
    let response = app.get("/logout").await;
    assert_ne!(response.status(), Status::Ok);
    assert!(response.cookies().iter().all(|c| !c.name().starts_with("appid_session")), "no cookie change");
    drop(response);
    assert_eq!(app.session_cookies(), before);
    assert_eq!(app.idp.emulator.calls(Endpoint::Revoke), 0);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "still signed in");
}

#[rocket::async_test]
async fn a_logout_without_or_with_a_wrong_token_is_refused_and_keeps_the_session() {
    let app = spawn_app_with(with_refresh(), json!({})).await;
    app.login_as(ALICE, "/auth_route").await;
    // Another user's valid token is wrong for this session.
    let other = spawn_app_with(with_refresh(), json!({})).await;
    other.login_as(CAROL, "/auth_route").await;
    let carols = other.csrf_token().await;
    assert_ne!(carols, app.csrf_token().await, "tokens differ per session");

    for token in [None, Some(""), Some("wrong"), Some(carols.as_str())] {
        let response = app.post_logout(token).await;
        assert_eq!(response.status(), Status::Forbidden, "token {token:?}");
        assert!(response.headers().get_one("Clear-Site-Data").is_none());
        assert!(response.cookies().iter().all(|c| !c.name().starts_with("appid_session")));
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Revoke), 0);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "still signed in");
    // The right token works.
    app.logout().await;
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_replayed_cookie_after_logout_gets_no_content_including_renewed_ones() {
    let config = EmulatorConfig { refresh_tokens: true, access_token_ttl: 1, ..EmulatorConfig::default() };
    let overrides = json!({ "clock_leeway_secs": 0, "refresh_window_secs": 0 });
    let app = spawn_app_with(config, overrides.clone()).await;
    app.login_as(ALICE, "/auth_route").await;
    let original = app.session_cookies();
    app.idp.emulator.set_access_token_ttl(3600);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The expired token is renewed silently: a new cookie of the same session.
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    let renewed = app.session_cookies();
    assert_ne!(renewed, original, "the renewal wrote a new cookie");

    app.logout().await;
    let calls =
        [Endpoint::Token, Endpoint::Introspect, Endpoint::ManagementRoles].map(|e| app.idp.emulator.calls(e));
    let thief = another_browser(&app, overrides).await;
    for cookies in [&original, &renewed] {
        let page = replay(&thief, cookies, "text/html").await;
        assert_eq!(page.status(), Status::SeeOther, "a browser is sent to log in");
        assert!(location(&page).starts_with(&app.idp.oauth_server_url));
        let api = replay(&thief, cookies, "application/json").await;
        assert_eq!(api.status(), Status::Unauthorized);
    }
    let after =
        [Endpoint::Token, Endpoint::Introspect, Endpoint::ManagementRoles].map(|e| app.idp.emulator.calls(e));
    assert_eq!(after, calls, "no refresh or any other provider call for a logged-out session");
}

#[rocket::async_test]
async fn back_after_logout_shows_no_protected_content() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let protected = app.get("/auth_route").await;
    assert_eq!(protected.headers().get_one("Cache-Control"), Some("no-store"), "never kept in a cache");
    drop(protected);
    app.logout().await;
    // Back re-requests the no-store page: no session, so no content.
    let again = app.get("/auth_route").await;
    assert_eq!(again.status(), Status::SeeOther);
    assert!(!again.into_string().await.unwrap_or_default().contains("Alice"));
}

/// The provider's SSO logout URL on a signed-out page (unescaped): its "Continue" link, which
/// the page's meta refresh follows at once.
fn provider_logout(page: &str) -> Url {
    let marker = r#"id="provider-logout" href=""#;
    let start = page.find(marker).expect("a way on to the provider") + marker.len();
    let url = Url::parse(page[start..].split('"').next().unwrap()).unwrap();
    assert!(page.contains(&format!(r#"<meta http-equiv="refresh" content="0; url={url}">"#)), "{page}");
    url
}

#[rocket::async_test]
async fn sso_logout_ends_the_providers_session_and_returns_to_the_registered_page() {
    let config = EmulatorConfig { refresh_tokens: true, sso: true, ..EmulatorConfig::default() };
    let app = spawn_app_with(config, json!({ "sso_logout": true })).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Log in at the provider, keeping its SSO cookie like a browser would.
    let authorization = app.begin_login("/auth_route").await;
    let mut form: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
    form.push(("login_hint".into(), ALICE.into()));
    let mut action = authorization.clone();
    action.set_query(None);
    let signed_in = browser.post(action).form(&form).send().await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 302);
    let sso_cookie =
        signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let back = Url::parse(signed_in.headers()["location"].to_str().unwrap()).unwrap();
    app.client.get(format!("{}?{}", back.path(), back.query().unwrap())).dispatch().await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);

    // While the SSO session lasts, the provider signs the user in without asking.
    let silent = browser.get(authorization.clone()).header("Cookie", &sso_cookie).send().await.unwrap();
    assert_eq!(silent.status().as_u16(), 302, "SSO: no login page");
    assert_eq!(app.idp.emulator.sso_sessions(), 1);

    let response = app.logout_to("/signed_out?provider=1").await;
    let page = app.signed_out_page(response).await;
    let sso_logout = provider_logout(&page);
    assert_eq!(
        format!("{}://{}{}", sso_logout.scheme(), sso_logout.authority(), sso_logout.path()),
        format!("{}/cloud_directory/sso/logout", app.idp.oauth_server_url)
    );
    let query: Vec<(String, String)> = sso_logout.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        vec![
            ("redirect_uri".to_string(), "http://127.0.0.1:8000/signed_out".to_string()),
            ("client_id".to_string(), app.idp.emulator.config().client_id.clone()),
        ],
        "the configured (default) return page, never one from the request"
    );

    let ended = browser.get(sso_logout).header("Cookie", &sso_cookie).send().await.unwrap();
    assert_eq!(ended.status().as_u16(), 302);
    assert_eq!(ended.headers()["location"].to_str().unwrap(), "http://127.0.0.1:8000/signed_out");
    assert_eq!(app.idp.emulator.calls(Endpoint::SsoLogout), 1);
    assert_eq!(app.idp.emulator.sso_sessions(), 0);
    let signed_out = app.get("/signed_out").await;
    assert_eq!(signed_out.status(), Status::Ok);
    assert!(signed_out.into_string().await.unwrap().contains("You are signed out"));

    // The next login asks for the user again.
    let next = browser.get(authorization).header("Cookie", &sso_cookie).send().await.unwrap();
    assert_eq!(next.status().as_u16(), 200, "the login page, not a silent sign-in");
    assert!(next.text().await.unwrap().contains("alice@example.com"));
}

#[rocket::async_test]
async fn a_configured_post_logout_url_is_used_and_a_request_parameter_is_not() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "sso_logout": true, "post_logout_redirect_uri": "http://127.0.0.1:8000/noauth_route" }),
    )
    .await;
    app.login_as(ALICE, "/auth_route").await;
    let token = app.csrf_token().await;
    let response = app
        .client
        .post("/logout?redirect_uri=https://evil.example&post_logout_redirect_uri=https://evil.example")
        .header(ContentType::Form)
        .body(format!("csrf={token}&redirect_uri=https%3A%2F%2Fevil.example"))
        .dispatch()
        .await;
    assert_logout_redirect(&response, "/signed_out?provider=1");
    let page = app.signed_out_page(response).await;
    assert!(!page.contains("evil.example"));
    let sso_logout = provider_logout(&page);
    assert!(!sso_logout.as_str().contains("evil.example"));
    assert!(sso_logout.as_str().contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fnoauth_route"));
    // The signed-out page takes no destination from its own request either.
    let page = app.get("/signed_out?provider=1&redirect_uri=https://evil.example").await;
    assert_eq!(page.status(), Status::Ok);
    let page = unescape(&page.into_string().await.unwrap());
    assert!(!page.contains("evil.example"));
    assert_eq!(provider_logout(&page), sso_logout);
}

#[rocket::async_test]
async fn a_user_without_a_role_can_sign_out_from_the_403_page() {
    let app = spawn_app().await;
    app.login_as(BOB, "/auth_route").await;
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Forbidden);
    let body = page.into_string().await.unwrap();
    let form = &body[body.find(r#"<main"#).unwrap()..];
    let marker = r#"name="csrf" value=""#;
    let start = form.find(marker).expect("the page's own logout form carries the token") + marker.len();
    let token = form[start..].split('"').next().unwrap().to_string();
    let response = app.post_logout(Some(&token)).await;
    assert_logout_redirect(&response, "/signed_out");
    app.signed_out_page(response).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn with_an_end_session_endpoint_in_discovery_logout_uses_it_with_client_id() {
    let config = EmulatorConfig { end_session_endpoint: true, ..EmulatorConfig::default() };
    let app = spawn_app_with(config, json!({ "sso_logout": true })).await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app.logout_to("/signed_out?provider=1").await;
    let page = app.signed_out_page(response).await;
    let end_session = provider_logout(&page);
    assert_eq!(end_session.path(), format!("/oauth/v4/{}/end_session", appid_emulator::DEFAULT_TENANT_ID));
    let query: Vec<(String, String)> = end_session.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        vec![
            ("client_id".to_string(), app.idp.emulator.config().client_id.clone()),
            ("post_logout_redirect_uri".to_string(), "http://127.0.0.1:8000/signed_out".to_string()),
        ],
        "no id_token_hint: the id_token is not kept (cookie budget)"
    );
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let ended = browser.get(end_session).send().await.unwrap();
    assert_eq!(ended.status().as_u16(), 302);
    assert_eq!(ended.headers()["location"].to_str().unwrap(), "http://127.0.0.1:8000/signed_out");
}

#[rocket::async_test]
async fn without_sso_logout_the_signed_out_page_never_sends_the_browser_to_the_provider() {
    // `?provider=1` is only honoured when `sso_logout` is configured: a link with it cannot
    // send a browser on to the provider's logout. Even with an end_session_endpoint listed.
    let config = EmulatorConfig { end_session_endpoint: true, ..EmulatorConfig::default() };
    let app = spawn_app_with(config, json!({})).await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app.logout().await;
    let page = app.signed_out_page(response).await;
    assert!(page.contains(r#"<meta http-equiv="refresh" content="1; url=/noauth_route">"#));

    for path in ["/signed_out?provider=1", "/signed_out?provider=2", "/signed_out?provider=x"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), Status::Ok, "{path}");
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let page = unescape(&response.into_string().await.unwrap());
        assert!(page.contains("You are signed out"), "{path}: {page}");
        assert!(!page.contains("provider-logout"), "{path}: no way on to the provider");
        assert!(!page.contains(&app.idp.oauth_server_url), "{path}: no provider URL");
        assert!(!page.contains("end_session") && !page.contains("sso/logout"), "{path}");
        assert_eq!(page.matches(r#"http-equiv="refresh""#).count(), 1, "{path}: only the plain page's own");
        assert!(
            page.contains(r#"<meta http-equiv="refresh" content="1; url=/noauth_route">"#),
            "{path}: the plain page moves on to the open page only"
        );
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::SsoLogout), 0);
}

#[rocket::async_test]
async fn two_apps_in_one_process_keep_their_own_deny_lists_unless_given_one_store() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let cookies = app.session_cookies();
    // Same key and provider, but an app of its own: nothing of `app`'s state is shared.
    let separate = app.bare_browser(json!({})).await;
    let sharing = another_browser(&app, json!({})).await;
    app.logout().await;
    assert_eq!(replay(&sharing, &cookies, "text/html").await.status(), Status::SeeOther, "refused");
    assert_eq!(
        replay(&separate, &cookies, "text/html").await.status(),
        Status::Ok,
        "another app's logout is not this app's (several instances need a shared store)"
    );
}

#[rocket::async_test]
async fn with_the_deny_list_set_to_fail_closed_a_store_outage_gives_503_and_keeps_the_session() {
    // A shared store nobody answers at (a loopback port with no server).
    let url = format!("redis://127.0.0.1:{}", free_port());
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "store_url": url, "deny_list_on_store_error": "closed" }),
    )
    .await;
    app.login_as(ALICE, "/auth_route").await;
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::ServiceUnavailable, "no session can be vouched for");
    assert!(page.cookies().get("appid_session").is_none(), "and none is ended: the cookie stays");
    drop(page);
    assert!(app.client.cookies().get("appid_session").is_some());
}

#[rocket::async_test]
async fn a_failing_shared_store_is_reported_by_ready_and_sessions_keep_working() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "store_url": url, "metrics": true })).await;
    app.login_as(ALICE, "/auth_route").await;
    for _ in 0..3 {
        assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "the deny-list fails open");
    }
    let metrics = app.client.get("/metrics").dispatch().await.into_string().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rocket_appid_store_calls_total{op=\"is_denied\",outcome=\"error\"}")),
        "store errors are counted:\n{metrics}"
    );
    let ready = app.client.get("/ready").dispatch().await;
    assert_eq!(ready.status(), Status::Ok, "still ready: the fallbacks serve");
    let body: serde_json::Value = serde_json::from_str(&ready.into_string().await.unwrap()).unwrap();
    assert_eq!(body["store"], "degraded", "{body}");
}
