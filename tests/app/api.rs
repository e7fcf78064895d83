//! API clients: `Authorization: Bearer <access token>` on routes under `/api/`, answered
//! with JSON and RFC 6750 challenges on every failure path, never a redirect.

use appid_emulator::{EmulatorConfig, Endpoint, Fault, TestUser};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};

use crate::common::*;

rocket_appid::scope!(Write = "write");

/// An API route of a test app that needs the `write` scope (held by admins only).
#[rocket::post("/api/notes")]
fn write_note(caller: rocket_appid::Bearer<Write>) -> String {
    format!("noted for {}", caller.sub)
}

/// The app with the extra scoped API route, against `app`'s provider.
async fn app_with_notes(app: &TestApp) -> Client {
    let rocket =
        rocket_appid::build(app_figment(&app.idp, json!({}))).mount("/", rocket::routes![write_note]);
    Client::untracked(rocket).await.unwrap()
}

fn user(app: &TestApp, email: &str) -> TestUser {
    app.idp.emulator.user_by_email(email).unwrap()
}

/// An access token for `user` as App ID issues it, with `change` applied to its claims.
fn token(app: &TestApp, user: &TestUser, change: impl FnOnce(&mut Value)) -> String {
    let emulator = &app.idp.emulator;
    let config = emulator.config();
    let scopes: Vec<&str> = config
        .roles
        .iter()
        .filter(|r| user.roles.contains(&r.name))
        .flat_map(|r| r.scopes.iter().map(String::as_str))
        .collect();
    let now = emulator.now();
    let mut claims = json!({
        "iss": emulator.oauth_server_url(), "exp": now + 600, "iat": now, "aud": [config.client_id],
        "sub": user.sub, "amr": ["cloud_directory"], "tenant": config.tenant_id,
        "scope": format!("openid appid_default {}", scopes.join(" ")),
    });
    change(&mut claims);
    emulator.signing_key().sign_claims(&claims)
}

/// An id_token for `user` as App ID issues it (no nonce: an API client's), with `change`
/// applied to its claims.
fn id_token(app: &TestApp, user: &TestUser, change: impl FnOnce(&mut Value)) -> String {
    let emulator = &app.idp.emulator;
    let config = emulator.config();
    let now = emulator.now();
    let mut claims = json!({
        "iss": emulator.oauth_server_url(), "exp": now + 600, "iat": now - 1800, "aud": [config.client_id],
        "sub": user.sub, "amr": ["cloud_directory"], "tenant": config.tenant_id,
        "name": user.name, "email": user.email,
    });
    change(&mut claims);
    emulator.signing_key().sign_claims(&claims)
}

async fn get_with<'c>(client: &'c Client, path: &str, authorization: Option<&str>) -> LocalResponse<'c> {
    let mut request = client.get(path.to_string()).header(Header::new("Accept", "application/json"));
    if let Some(value) = authorization {
        request = request.header(Header::new("Authorization", value.to_string()));
    }
    request.dispatch().await
}

fn challenge(response: &LocalResponse<'_>) -> String {
    response.headers().get_one("WWW-Authenticate").expect("a WWW-Authenticate challenge").to_string()
}

async fn body(response: LocalResponse<'_>) -> Value {
    serde_json::from_str(&response.into_string().await.unwrap()).unwrap()
}

#[rocket::async_test]
async fn api_me_answers_a_valid_bearer_token_with_the_callers_identity_roles_and_scopes() {
    let app = spawn_app().await;
    let carol = user(&app, CAROL);
    let response =
        get_with(&app.client, "/api/me", Some(&format!("Bearer {}", token(&app, &carol, |_| {})))).await;
    assert_eq!(response.status(), Status::Ok);
    let me = body(response).await;
    assert_eq!(me["sub"], json!(carol.sub));
    let mut roles: Vec<&str> = me["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["admin", "user"]);
    let scopes: Vec<&str> = me["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(
        scopes.contains(&"manage") && scopes.contains(&"write") && scopes.contains(&"read"),
        "{scopes:?}"
    );
    assert_eq!(me["name"], Value::Null, "an access token carries no name");
    assert_eq!(me["email"], Value::Null);
}

#[rocket::async_test]
async fn a_real_access_token_from_a_login_works_as_a_bearer_token() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let access = app.session_json()["access_token"].as_str().unwrap().to_string();
    let bare = app.bare_browser(json!({})).await;
    let response = get_with(&bare, "/api/me", Some(&format!("Bearer {access}"))).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(body(response).await["roles"], json!(["user"]));
}

#[rocket::async_test]
async fn an_expired_bearer_token_gets_401_invalid_token() {
    let app = spawn_app().await;
    let alice = user(&app, ALICE);
    let expired = token(&app, &alice, |c| c["exp"] = json!(app.idp.emulator.now() - 3600));
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {expired}"))).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert!(response.headers().get_one("Location").is_none(), "never a redirect");
    assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid", error="invalid_token""#);
    let answer = body(response).await;
    assert_eq!(answer["error"], "invalid_token");
    assert_eq!(answer["error_description"], "expired");
}

#[rocket::async_test]
async fn a_token_for_another_audience_gets_401_invalid_token() {
    let app = spawn_app().await;
    let alice = user(&app, ALICE);
    let foreign = token(&app, &alice, |c| c["aud"] = json!(["some-other-client"]));
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {foreign}"))).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid", error="invalid_token""#);
    assert_eq!(body(response).await["error_description"], "aud_mismatch");

    let tampered = format!("{}x", token(&app, &alice, |_| {}));
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {tampered}"))).await;
    assert_eq!(response.status(), Status::Unauthorized);
    let other_tenant = token(&app, &alice, |c| c["tenant"] = json!("another-tenant"));
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {other_tenant}"))).await;
    assert_eq!(response.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn a_missing_scope_gets_403_insufficient_scope_and_the_holder_gets_in() {
    let app = spawn_app().await;
    let client = app_with_notes(&app).await;
    let alice = token(&app, &user(&app, ALICE), |_| {});
    let response = client
        .post("/api/notes")
        .header(Header::new("Authorization", format!("Bearer {alice}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid", error="insufficient_scope""#);
    let answer = body(response).await;
    assert_eq!(answer["error"], "insufficient_scope");
    assert_eq!(answer["required"], "scope write");

    let carol = token(&app, &user(&app, CAROL), |_| {});
    let response = client
        .post("/api/notes")
        .header(Header::new("Authorization", format!("Bearer {carol}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().await.unwrap().starts_with("noted for "));
}

#[rocket::async_test]
async fn a_user_without_any_role_gets_403_on_the_api() {
    let app = spawn_app().await;
    let bob = token(&app, &user(&app, BOB), |_| {});
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {bob}"))).await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid", error="insufficient_scope""#);
    assert_eq!(body(response).await["error_description"], "no_role");
}

/// Issue 19 (emulator follows App ID): an application's own token from the
/// client-credentials grant carries `amr: ["appid_client_credentials"]` and the client id as
/// `sub`. The app verifies it like any access token; with no user behind it there is no
/// role: 403 `no_role`, not 401 (the token itself is good).
#[rocket::async_test]
async fn a_client_credentials_token_carries_its_amr_and_gets_403_no_role_on_the_api() {
    let app = spawn_app().await;
    let config = app.idp.emulator.config();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/token", app.idp.oauth_server_url))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = answer["access_token"].as_str().unwrap();
    let claims = app.idp.emulator.signing_key().verify(access).unwrap();
    assert_eq!(claims["amr"], json!(["appid_client_credentials"]));
    assert_eq!(claims["sub"], json!(config.client_id));

    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {access}"))).await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(body(response).await["error_description"], "no_role");
}

#[rocket::async_test]
async fn no_token_gets_401_with_a_bare_challenge_even_for_a_browser() {
    let app = spawn_app().await;
    for accept in ["application/json", "text/html"] {
        let response = app.get_with("/api/me", &[("Accept", accept)]).await;
        assert_eq!(response.status(), Status::Unauthorized, "{accept}");
        assert!(response.headers().get_one("Location").is_none(), "never a redirect ({accept})");
        // RFC 6750 §3.1: no credentials → no error code in the challenge.
        assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid""#);
        assert_eq!(body(response).await["error"], "unauthenticated");
    }
    assert!(app.client.cookies().get_private("appid_login").is_none(), "no login was started");
    // Another scheme is no bearer credential either.
    let response = get_with(&app.client, "/api/me", Some("Basic YWxpY2U6c2VjcmV0")).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid""#);
}

#[rocket::async_test]
async fn a_malformed_authorization_header_gets_400_invalid_request() {
    let app = spawn_app().await;
    for value in
        ["Bearer", "Bearer ", "Bearer three to kens", "Bearer tok\u{e9}n", "Bearer a=b", "Bearer a  b"]
    {
        let response = get_with(&app.client, "/api/me", Some(value)).await;
        assert_eq!(response.status(), Status::BadRequest, "{value:?}");
        assert_eq!(
            challenge(&response),
            r#"Bearer realm="rocket-appid", error="invalid_request""#,
            "{value:?}"
        );
        assert_eq!(body(response).await["error"], "invalid_request");
    }
    let good = token(&app, &user(&app, ALICE), |_| {});
    let twice = app
        .client
        .get("/api/me")
        .header(Header::new("Authorization", format!("Bearer {good}")))
        .header(Header::new("Authorization", format!("Bearer {good}")))
        .dispatch()
        .await;
    assert_eq!(twice.status(), Status::BadRequest, "two credentials are ambiguous");
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let lower = get_with(&app.client, "/api/me", Some(&format!("bearer {good}"))).await;
    assert_eq!(lower.status(), Status::Ok);
}

/// Decision: the session cookie alone does not open API routes. An API that honoured the
/// ambient cookie could be driven from any page the user visits (CSRF).
#[rocket::async_test]
async fn a_session_cookie_alone_does_not_open_the_api() {
    let app = spawn_app().await;
    app.login_as(CAROL, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "the browser session works");
    let response = app.get_with("/api/me", &[("Accept", "application/json")]).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid""#);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok, "and the session is left alone");
}

#[rocket::async_test]
async fn html_routes_ignore_bearer_tokens() {
    let app = spawn_app().await;
    let carol = token(&app, &user(&app, CAROL), |_| {});
    let response = app
        .client
        .get("/admin_route")
        .header(Header::new("Accept", "text/html"))
        .header(Header::new("Authorization", format!("Bearer {carol}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther, "a page still sends the browser to log in");
    assert!(location(&response).starts_with(&app.idp.oauth_server_url));
}

#[rocket::async_test]
async fn a_provider_outage_is_a_json_503_on_the_api() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "always" })).await;
    let alice = token(&app, &user(&app, ALICE), |_| {});
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(503));
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {alice}"))).await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert_eq!(response.headers().get_one("Retry-After"), Some("30"));
    assert_eq!(body(response).await["error"], "temporarily_unavailable");
    // A browser asking for the API gets JSON too, never the HTML error page.
    let browser = app
        .client
        .get("/api/me")
        .header(Header::new("Accept", "text/html"))
        .header(Header::new("Authorization", format!("Bearer {alice}")))
        .dispatch()
        .await;
    assert_eq!(browser.status(), Status::ServiceUnavailable);
    assert!(browser.content_type().is_some_and(|t| t.is_json()));
}

#[rocket::async_test]
async fn an_unknown_api_path_is_a_json_404() {
    let app = spawn_app().await;
    let response = app.get("/api/nothing-here").await;
    assert_eq!(response.status(), Status::NotFound);
    assert_eq!(body(response).await["error"], "not_found");
}

#[rocket::async_test]
async fn a_revoked_token_is_refused_when_introspection_asks() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "always" })).await;
    let alice = token(&app, &user(&app, ALICE), |_| {});
    assert_eq!(get_with(&app.client, "/api/me", Some(&format!("Bearer {alice}"))).await.status(), Status::Ok);
    app.idp.emulator.revoke_access_token(&alice);
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {alice}"))).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(body(response).await["error_description"], "token_inactive");
}

#[rocket::async_test]
async fn a_script_on_a_page_route_gets_json_on_every_failure_a_browser_gets_pages() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "introspection": "always" })).await;
    app.login_as(ALICE, "/auth_route").await;
    app.idp.emulator.set_fault(Endpoint::Introspect, Fault::status(503));
    let script = app.get_with("/auth_route", &[("Accept", "application/json")]).await;
    assert_eq!(script.status(), Status::ServiceUnavailable);
    assert_eq!(body(script).await["error"], "temporarily_unavailable");
    let page = app.get("/auth_route").await;
    assert_eq!(page.status(), Status::ServiceUnavailable);
    assert!(page.content_type().is_some_and(|t| t.is_html()), "a browser gets the error page");
}

/// `token` with the first character of its signature changed.
fn tampered(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    format!("{signed}.{first}{}", &signature[1..])
}

/// Issue 19 item 1: App ID's client SDKs send `Authorization: Bearer <access> <id_token>`
/// (IBM's API strategy accepts it). The id_token is verified too, and names the caller.
#[rocket::async_test]
async fn bearer_access_and_id_token_form_is_accepted() {
    let app = spawn_app().await;
    let carol = user(&app, CAROL);
    let header = format!("Bearer {} {}", token(&app, &carol, |_| {}), id_token(&app, &carol, |_| {}));
    let response = get_with(&app.client, "/api/me", Some(&header)).await;
    assert_eq!(response.status(), Status::Ok);
    let me = body(response).await;
    assert_eq!(me["sub"], json!(carol.sub));
    assert_eq!(me["name"], json!(carol.name), "the verified id_token names the caller");
    assert_eq!(me["email"], json!(carol.email));
}

#[rocket::async_test]
async fn bearer_id_token_of_another_user_or_that_fails_verification_is_refused() {
    let app = spawn_app().await;
    let (carol, alice) = (user(&app, CAROL), user(&app, ALICE));
    let access = token(&app, &carol, |_| {});
    let refused = [
        (id_token(&app, &alice, |_| {}), "sub_mismatch"),
        (tampered(&id_token(&app, &carol, |_| {})), "bad_signature"),
        (id_token(&app, &carol, |c| c["exp"] = json!(app.idp.emulator.now() - 3600)), "expired"),
        (id_token(&app, &carol, |c| c["aud"] = json!(["some-other-client"])), "aud_mismatch"),
        (id_token(&app, &carol, |c| c["tenant"] = json!("another-tenant")), "tenant_mismatch"),
    ];
    for (id, reason) in refused {
        let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {access} {id}"))).await;
        assert_eq!(response.status(), Status::Unauthorized, "{reason}");
        assert_eq!(challenge(&response), r#"Bearer realm="rocket-appid", error="invalid_token""#);
        assert_eq!(body(response).await["error_description"], reason);
    }
}

/// Issue 19 item 1: tokens minted for another client of the tenant (a single-page or
/// mobile front end calling this API) carry that client's id in `aud`; they are accepted
/// once that audience is configured as trusted, and only then.
#[rocket::async_test]
async fn a_bearer_token_for_a_configured_trusted_audience_is_accepted() {
    let app = spawn_app().await;
    let alice = user(&app, ALICE);
    let spa_access = token(&app, &alice, |c| c["aud"] = json!(["spa-client"]));
    let spa_id = id_token(&app, &alice, |c| c["aud"] = json!(["spa-client"]));
    let trusting = app.bare_browser(json!({ "trusted_audiences": ["spa-client", "mobile-client"] })).await;
    for header in [format!("Bearer {spa_access}"), format!("Bearer {spa_access} {spa_id}")] {
        let response = get_with(&trusting, "/api/me", Some(&header)).await;
        assert_eq!(response.status(), Status::Ok, "{header:.30}");
        assert_eq!(body(response).await["sub"], json!(alice.sub));
    }
    // Our own tokens still work there; by default the other client's are refused.
    let ours = get_with(&trusting, "/api/me", Some(&format!("Bearer {}", token(&app, &alice, |_| {})))).await;
    assert_eq!(ours.status(), Status::Ok);
    let response = get_with(&app.client, "/api/me", Some(&format!("Bearer {spa_access}"))).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(body(response).await["error_description"], "aud_mismatch");
}
