//! The main flow: protected page → provider → callback → back where the user started.

use rocket::http::Status;

use crate::common::*;

#[rocket::async_test]
async fn an_anonymous_visit_to_the_protected_page_starts_a_login_with_state_nonce_and_pkce() {
    let app = spawn_app_with(pkce_advertised(), serde_json::json!({})).await;
    let authorization = app.begin_login("/auth_route").await;

    assert_eq!(
        authorization.path(),
        format!("/oauth/v4/{}/authorization", app.idp.emulator.config().tenant_id)
    );
    let param =
        |name: &str| authorization.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("client_id").as_deref(), Some(app.idp.emulator.config().client_id.as_str()));
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(param("scope").as_deref(), Some("openid"));
    assert!(param("state").is_some_and(|s| s.len() >= 43));
    assert!(param("nonce").is_some_and(|s| s.len() >= 43));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"), "the provider lists PKCE");
}

/// Issue 19 item 4: App ID's discovery for web apps lists no PKCE method, so production
/// logins (`pkce = "auto"`) carry none; the default emulator mirrors it, and the default
/// login takes that path end to end: no challenge, no verifier kept or sent (the emulator
/// refuses a verifier it has no challenge for), the user signed in.
#[rocket::async_test]
async fn the_default_login_takes_production_s_path_without_pkce() {
    let app = spawn_app().await;
    let authorization = app.begin_login("/auth_route").await;
    let names: Vec<String> = authorization.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert!(names.iter().any(|n| n == "state") && names.iter().any(|n| n == "nonce"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("code_challenge")), "no PKCE: {names:?}");
    assert!(app.pending_login()["verifier"].is_null());

    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let response = app.client.get(callback).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
    drop(response);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn a_user_with_a_role_logs_in_and_sees_the_protected_page() {
    let app = spawn_app().await;
    let callback = app.login_as(ALICE, "/auth_route").await;
    assert_eq!(callback.status(), Status::SeeOther);
    assert_eq!(location(&callback), "/auth_route");
    assert_eq!(callback.headers().get_one("Cache-Control"), Some("no-store"));

    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(
        body.contains("This route requires authentication and authorization - Powered by IBM Cloud App ID!")
    );
    assert!(body.contains("alice@example.com"));
    assert!(body.contains(">user<"), "roles are shown");
}

#[rocket::async_test]
async fn a_user_with_two_roles_sees_both() {
    let app = spawn_app().await;
    app.login_as(CAROL, "/auth_route").await;
    let body = app.get("/auth_route").await.into_string().await.unwrap();
    assert!(body.contains(">admin<") && body.contains(">user<"));
}

#[rocket::async_test]
async fn a_user_without_a_role_gets_the_unauthorized_page_not_a_loop() {
    let app = spawn_app().await;
    let callback = app.login_as(BOB, "/auth_route").await;
    assert_eq!(location(&callback), "/auth_route");

    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::Forbidden);
    assert!(page.headers().get_one("Location").is_none());
    let body = page.into_string().await.unwrap();
    assert!(body.contains("Unauthorized"));
    assert!(body.contains("bob@example.com") || body.contains("Bob"));
}

#[rocket::async_test]
async fn after_login_the_user_returns_to_the_deep_link_first_asked_for() {
    let app = spawn_app().await;
    let callback = app.login_as(ALICE, "/auth_route?tab=roles&x=%2Fy").await;
    assert_eq!(location(&callback), "/auth_route?tab=roles&x=%2Fy");
}

#[rocket::async_test]
async fn the_root_redirects_to_the_protected_page() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
}

#[rocket::async_test]
async fn the_open_page_needs_no_login_and_shows_who_is_signed_in() {
    let app = spawn_app().await;
    let response = app.get("/noauth_route").await;
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().await.unwrap();
    assert!(body.contains("This route is open to all!"));
    assert!(!body.contains("Sign out"));

    app.login_as(ALICE, "/auth_route").await;
    let body = app.get("/noauth_route").await.into_string().await.unwrap();
    assert!(body.contains("Sign out") && body.contains("Alice"));
}

#[rocket::async_test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);

    let response = app.logout().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/signed_out");
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let cookies: Vec<String> = response.headers().get("Set-Cookie").map(String::from).collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("appid_session=") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    let page = app.follow(response).await;
    let body = page.into_string().await.unwrap();
    assert!(body.contains("You are signed out") && !body.contains("Signed in as"));
    assert!(body.contains(r#"<meta http-equiv="refresh" content="1; url=/noauth_route">"#));
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther, "back to the provider");
}

#[rocket::async_test]
async fn the_page_after_logout_removes_the_signed_out_marker() {
    // The marker's removal is the cookie change that evicts the protected page from
    // the browser's back/forward cache.
    // The logout itself cannot set it: its `Clear-Site-Data` would wipe it at once. The
    // signed-out page it redirects to does.
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app.logout().await;
    assert!(response.cookies().get("appid_signed_out").is_none(), "not set by the logout response");
    assert!(app.client.cookies().get("appid_signed_out").is_none());
    let page = app.follow(response).await;
    let marker: Vec<String> = page
        .headers()
        .get("Set-Cookie")
        .filter(|c| c.starts_with("appid_signed_out="))
        .map(String::from)
        .collect();
    assert_eq!(marker.len(), 1, "{marker:?}");
    assert!(marker[0].starts_with("appid_signed_out=1;") && marker[0].contains("Max-Age=300"), "{marker:?}");
    drop(page);
    assert!(app.client.cookies().get("appid_signed_out").is_some());
    let next = app.get("/noauth_route").await;
    assert!(next
        .headers()
        .get("Set-Cookie")
        .any(|c| c.starts_with("appid_signed_out=;") && c.contains("Max-Age=0")));
    drop(next);
    // (The local client honours `Expires`, not `Max-Age=0`: it keeps the name, emptied.)
    assert!(
        app.client.cookies().get("appid_signed_out").is_none_or(|c| c.value().is_empty()),
        "removed by the next response"
    );
}

#[rocket::async_test]
async fn a_logout_posted_from_another_site_is_refused_and_keeps_the_session() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app.post_with("/logout", &[("Origin", "https://evil.example")]).await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn a_second_login_gets_a_new_session() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let first = app.session_json();
    app.logout().await;
    app.login_as(CAROL, "/auth_route").await;
    let second = app.session_json();
    assert_ne!(first["sid"], second["sid"]);
}

#[rocket::async_test]
async fn logout_from_our_own_page_works_in_a_browser_that_sends_origin_null() {
    // With `Referrer-Policy: no-referrer`, Chromium sends `Origin: null` on our own form posts.
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let token = app.csrf_token().await;
    let response = app
        .client
        .post("/logout")
        .header(rocket::http::ContentType::Form)
        .body(format!("csrf={token}"))
        .header(rocket::http::Header::new("Origin", "null"))
        .header(rocket::http::Header::new("Sec-Fetch-Site", "same-origin"))
        .dispatch()
        .await;
    assert_logout_redirect(&response, "/signed_out");
    app.signed_out_page(response).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_cross_site_logout_is_refused_by_sec_fetch_site() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let response = app.post_with("/logout", &[("Sec-Fetch-Site", "cross-site")]).await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
}

/// `pkce = "always"` sends a challenge where discovery lists none (the emulator still
/// checks it), and `never` sends none where it is listed: the setting decides, not the
/// emulator's default.
#[rocket::async_test]
async fn the_pkce_setting_overrides_what_discovery_lists() {
    let has_challenge = |url: &url::Url| url.query_pairs().any(|(k, _)| k == "code_challenge");
    let always = spawn_app_with(Default::default(), serde_json::json!({ "pkce": "always" })).await;
    let authorization = always.begin_login("/auth_route").await;
    assert!(has_challenge(&authorization));
    let callback = always.sign_in_at_provider(&authorization, ALICE).await;
    assert_eq!(always.client.get(callback).dispatch().await.status(), Status::SeeOther);
    assert_eq!(always.get("/auth_route").await.status(), Status::Ok, "the verifier matched");

    let never = spawn_app_with(pkce_advertised(), serde_json::json!({ "pkce": "never" })).await;
    assert!(!has_challenge(&never.begin_login("/auth_route").await));
}
