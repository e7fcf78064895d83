//! Typed per-route guards (`AuthorizedUser`, `Authorized<R>` with roles, scopes and their
//! combinations), the `/admin_route` example and the launch-time route audit.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use appid_emulator::Endpoint;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket_appid::{role, scope, AllOf, AnyOf, Authorized, AuthorizedUser};
use serde_json::json;

use crate::common::*;

scope!(Manage = "manage");
scope!(Read = "read");
role!(Auditor = "auditor");

#[rocket::get("/t/manage")]
fn needs_manage(user: Authorized<Manage>) -> String {
    format!("manage {}", user.sub)
}

#[rocket::get("/t/any")]
fn needs_any(user: Authorized<AnyOf<(Auditor, Manage)>>) -> String {
    format!("any {}", user.sub)
}

#[rocket::get("/t/all")]
fn needs_all(user: Authorized<AllOf<(rocket_appid::Admin, Read)>>) -> String {
    format!("all {}", user.sub)
}

#[rocket::get("/t/all-impossible")]
fn needs_all_impossible(user: Authorized<AllOf<(rocket_appid::Admin, Auditor)>>) -> String {
    format!("impossible {}", user.sub)
}

#[rocket::get("/t/owned")]
fn needs_a_role_owned(user: AuthorizedUser) -> String {
    format!("owned {} {}", user.sub, user.roles.join(","))
}

#[rocket::get("/t/borrowed")]
fn needs_a_role_borrowed(user: &AuthorizedUser) -> String {
    format!("borrowed {} {}", user.sub, user.roles.join(","))
}

/// A test app with extra guarded routes, against a fresh emulator, `email` logged in.
async fn app_with_guarded_routes(email: Option<&str>) -> TestApp {
    let mut app = spawn_app().await;
    let rocket = rocket_appid::build(app_figment(&app.idp, json!({}))).mount(
        "/",
        rocket::routes![
            needs_manage,
            needs_any,
            needs_all,
            needs_all_impossible,
            needs_a_role_owned,
            needs_a_role_borrowed
        ],
    );
    app.client = Client::tracked(rocket).await.unwrap();
    if let Some(email) = email {
        app.login_as(email, "/auth_route").await;
    }
    app
}

/// The guard taken by value (a copy) and by reference (a borrow of the request's decision)
/// let the same users through and refuse the same ones.
#[rocket::async_test]
async fn the_guard_by_value_and_by_reference_decide_alike() {
    let alice = app_with_guarded_routes(Some(ALICE)).await;
    let owned = alice.get("/t/owned").await.into_string().await.unwrap();
    let borrowed = alice.get("/t/borrowed").await.into_string().await.unwrap();
    assert!(owned.starts_with("owned ") && owned.ends_with(" user"), "{owned}");
    assert_eq!(owned.replacen("owned", "borrowed", 1), borrowed);

    let anonymous = app_with_guarded_routes(None).await;
    for path in ["/t/owned", "/t/borrowed"] {
        let response = anonymous.get(path).await;
        assert_eq!(response.status(), Status::SeeOther, "{path}: a browser is sent to log in");
        assert!(
            response.headers().get_one("Location").is_some_and(|l| l.contains("/authorization?")),
            "{path}"
        );
    }
}

#[rocket::async_test]
async fn carol_the_admin_opens_the_admin_page_and_sees_its_link() {
    let app = spawn_app().await;
    app.login_as(CAROL, "/admin_route").await;
    let page = app.get("/admin_route").await;
    assert_eq!(page.status(), Status::Ok);
    let html = page.into_string().await.unwrap();
    assert!(html.contains("This route requires the admin role"), "{html}");
    assert!(html.contains(r#"id="nav-admin""#), "the navigation links the admin page");
    let protected = app.get("/auth_route").await.into_string().await.unwrap();
    assert!(protected.contains(r#"href="/admin_route""#), "every guarded page shows the link to admins");
}

#[rocket::async_test]
async fn alice_without_the_admin_role_gets_the_403_page_and_no_admin_link() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    let protected = app.get("/auth_route").await;
    assert_eq!(protected.status(), Status::Ok);
    assert!(!protected.into_string().await.unwrap().contains("/admin_route"), "no admin link for alice");

    let page = app.get("/admin_route").await;
    assert_eq!(page.status(), Status::Forbidden);
    assert!(page.headers().get_one("Location").is_none());
    let html = page.into_string().await.unwrap();
    assert!(html.contains("Alice Example") && html.contains("role admin"), "{html}");
    assert!(!html.contains(r#"id="nav-admin""#));
    // A script asking for JSON gets JSON.
    let json = app.get_with("/admin_route", &[("Accept", "application/json")]).await;
    assert_eq!(json.status(), Status::Forbidden);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json.into_string().await.unwrap()).unwrap()["required"],
        "role admin"
    );
}

#[rocket::async_test]
async fn the_open_page_never_shows_the_admin_link() {
    let app = spawn_app().await;
    app.login_as(CAROL, "/auth_route").await;
    let html = app.get("/noauth_route").await.into_string().await.unwrap();
    assert!(html.contains("Signed in as"), "the header knows who is signed in");
    assert!(!html.contains(r#"id="nav-admin""#), "but not the roles: no provider call for navigation");
}

#[rocket::async_test]
async fn anonymous_visitors_of_the_admin_page_are_sent_to_log_in_and_come_back() {
    let app = spawn_app().await;
    let script = app.get_with("/admin_route", &[("Accept", "application/json")]).await;
    assert_eq!(script.status(), Status::Unauthorized);
    let fetch = app.get_with("/admin_route", &[("Accept", "*/*"), ("Sec-Fetch-Mode", "cors")]).await;
    assert_eq!(fetch.status(), Status::Unauthorized, "a fetch() is not a navigation: no redirect");
    let authorization = app.begin_login("/admin_route").await;
    let back = app.sign_in_at_provider(&authorization, CAROL).await;
    let response = app.client.get(back).dispatch().await;
    assert_eq!(location(&response), "/admin_route");
}

#[rocket::async_test]
async fn bob_without_any_role_gets_403_on_the_admin_page() {
    let app = spawn_app().await;
    app.login_as(BOB, "/auth_route").await;
    let page = app.get("/admin_route").await;
    assert_eq!(page.status(), Status::Forbidden);
    assert!(page.into_string().await.unwrap().contains("no role"));
}

#[rocket::async_test]
async fn checking_a_requirement_reuses_the_guards_decision_without_another_provider_call() {
    let app = spawn_app().await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    let before = app.idp.emulator.total_calls();
    assert_eq!(app.get("/admin_route").await.status(), Status::Forbidden);
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.idp.emulator.total_calls(), before, "roles and token checks come from the caches");
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 1, "one login, nothing more");
}

#[rocket::async_test]
async fn scope_any_of_and_all_of_guards_allow_and_refuse_as_declared() {
    // Carol: roles user+admin, scopes read write manage. Alice: role user, scope read.
    let carol = app_with_guarded_routes(Some(CAROL)).await;
    for path in ["/t/manage", "/t/any", "/t/all"] {
        assert_eq!(carol.get(path).await.status(), Status::Ok, "carol {path}");
    }
    assert_eq!(carol.get("/t/all-impossible").await.status(), Status::Forbidden, "one member missing");

    let alice = app_with_guarded_routes(Some(ALICE)).await;
    for path in ["/t/manage", "/t/any", "/t/all"] {
        let response = alice.get(path).await;
        assert_eq!(response.status(), Status::Forbidden, "alice {path}");
        let html = response.into_string().await.unwrap();
        assert!(html.contains("does not have what this page requires"), "{path}: {html}");
    }

    let anonymous = app_with_guarded_routes(None).await;
    for path in ["/t/manage", "/t/any", "/t/all"] {
        assert_eq!(anonymous.get(path).await.status(), Status::SeeOther, "anonymous {path}");
        let api =
            anonymous.client.get(path).header(Header::new("Accept", "application/json")).dispatch().await;
        assert_eq!(api.status(), Status::Unauthorized, "anonymous script {path}");
    }
}

/// The app's route audit table, as logged at liftoff.
const EXPECTED_TABLE: &[&str] = &[
    "GET / -> public",
    "GET /auth_route -> any role",
    "GET /admin_route -> role admin",
    "GET /api/me -> bearer any role",
    "GET /noauth_route -> public",
    "GET /health -> public",
    "GET /ready -> public",
    "GET /metrics -> metrics token (when configured)",
    "GET /afterauth -> public",
    "POST /logout -> public",
    "GET /signed_out?<provider> -> public",
    "GET /static/<path..> -> public",
];

#[rocket::async_test]
async fn the_route_audit_table_covers_every_mounted_route() {
    let app = spawn_app().await;
    let table = rocket_appid::route_requirements().table(app.client.rocket().routes());
    let undeclared: Vec<_> =
        table.iter().filter(|l| l.requirement.is_none()).map(|l| l.to_string()).collect();
    assert!(undeclared.is_empty(), "mounted routes missing from route_requirements(): {undeclared:?}");
    let mut lines: Vec<String> = table.iter().map(|l| l.to_string()).collect();
    let mut expected: Vec<String> = EXPECTED_TABLE.iter().map(|l| l.to_string()).collect();
    lines.sort();
    expected.sort();
    assert_eq!(lines, expected);
}

/// The table is only as good as the guards behind it: every route it calls guarded is
/// requested anonymously and as Alice (role `user` only). A route that lost its guard
/// (say `/auth_route` without `AuthorizedUser`) answers 200 here and fails this test.
#[rocket::async_test]
async fn every_route_the_audit_calls_guarded_refuses_who_it_should() {
    let anonymous = spawn_app().await;
    let table = rocket_appid::route_requirements().table(anonymous.client.rocket().routes());
    let mut guarded = Vec::new();
    for line in table.iter().filter(|l| l.method == "GET" && !l.uri.contains('<')) {
        let requirement = line.requirement.clone().unwrap_or_else(|| "UNDECLARED".into());
        let response = anonymous.get(&line.uri).await;
        let status = response.status();
        let sent_to_login = status == Status::SeeOther
            && response
                .headers()
                .get_one("Location")
                .is_some_and(|l| l.starts_with(&anonymous.idp.oauth_server_url));
        match requirement.as_str() {
            "public" => assert!(!sent_to_login && status != Status::Unauthorized, "{line}: {status}"),
            "metrics token (when configured)" => {
                assert_eq!(status, Status::NotFound, "{line}: metrics are off")
            }
            r if r.starts_with("bearer ") => assert_eq!(status, Status::Unauthorized, "{line}"),
            _ => {
                assert!(sent_to_login, "{line}: an anonymous browser got {status}, not the login redirect");
                guarded.push((line.uri.clone(), requirement));
            }
        }
    }
    assert!(guarded.len() >= 2, "the probe reached the guarded pages: {guarded:?}");
    // Alice has the role `user` only: any-role pages open, the others refuse her.
    let alice = spawn_app().await;
    alice.login_as(ALICE, &guarded[0].0).await;
    for (uri, requirement) in &guarded {
        let alice_may = requirement == "any role" || requirement == "role user";
        let expected = if alice_may { Status::Ok } else { Status::Forbidden };
        assert_eq!(alice.get(uri).await.status(), expected, "{uri} ({requirement}) as alice");
    }
}

#[test]
fn the_running_app_logs_the_route_table_at_liftoff() {
    let port = free_port();
    let mut child = app_process_logging_json(port);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut routes = Vec::new();
    while routes.len() < EXPECTED_TABLE.len() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if entry["event"] == "route_requirement" {
            routes.push(entry);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let admin = routes.iter().find(|r| r["uri"] == "/admin_route").expect("a line for /admin_route");
    assert_eq!(admin["requirement"], "role admin");
    assert_eq!(admin["method"], "GET");
    let me = routes.iter().find(|r| r["uri"] == "/api/me").expect("a line for /api/me");
    assert_eq!(me["requirement"], "bearer any role");
    assert_eq!(routes.len(), EXPECTED_TABLE.len(), "one line per mounted route: {routes:?}");
    assert!(routes.iter().all(|r| r["requirement"] != "UNDECLARED"));
}

/// `examples/protect.rs`, compiled into this test binary.
#[allow(dead_code)]
#[path = "../../examples/protect.rs"]
mod protect;

#[rocket::async_test]
async fn the_example_program_protects_its_own_routes() {
    let mut app = spawn_app().await;
    app.client = Client::tracked(protect::app(app_figment(&app.idp, json!({})))).await.unwrap();
    // Anonymous: the example's page sends the browser to log in, a script gets 401.
    let script = app.get_with("/hello", &[("Accept", "application/json")]).await;
    assert_eq!(script.status(), Status::Unauthorized);
    let back = app.login_as(ALICE, "/hello").await;
    assert_eq!(location(&back), "/hello", "the login returns to the example's page");
    let hello = app.get("/hello").await;
    assert_eq!(hello.status(), Status::Ok);
    assert_eq!(hello.into_string().await.unwrap(), "Hello Alice Example, your roles: user");
    let admin = app.get("/admin").await;
    assert_eq!(admin.status(), Status::Forbidden, "alice is no admin");
    assert!(admin.into_string().await.unwrap().contains("role admin"), "the library's 403 page");
}

/// A tenant with a role `reports` whose access is for another application, held by bob
/// alone (the other users as usual), with `overrides` for the app.
async fn tenant_with_a_role_for_another_app(overrides: serde_json::Value) -> TestApp {
    let mut config = appid_emulator::EmulatorConfig::default();
    config.roles.push(appid_emulator::RoleDef::new("reports", &["report"]).for_application("other-app"));
    let app = spawn_app_with(config, overrides).await;
    let bob = app.idp.emulator.user_by_email(BOB).unwrap();
    app.idp.emulator.set_user_roles(&bob.sub, vec!["reports".into()]);
    app
}

/// Issue 19 item 9: App ID's roles are tenant-wide. With `roles_this_app_only`, a role
/// whose access is only for another application of the tenant opens nothing here (bob:
/// 403), while roles for this application work as before; the tenant's role list is read
/// once and cached. Off (the default), bob gets in, as in the Flask pattern.
#[rocket::async_test]
async fn roles_this_app_only_counts_only_roles_whose_access_includes_this_application() {
    let app = tenant_with_a_role_for_another_app(json!({ "roles_this_app_only": true })).await;
    app.login_as(BOB, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Forbidden, "reports is not for this app");
    assert_eq!(app.idp.emulator.calls(Endpoint::ManagementRoles), 2, "bob's roles and the tenant's");

    let alice = app.other_browser(json!({ "roles_this_app_only": true })).await;
    let callback = {
        let response = visit(&alice, "/auth_route").await;
        let authorization = url::Url::parse(&location(&response)).unwrap();
        app.sign_in_at_provider(&authorization, ALICE).await
    };
    alice.get(callback).dispatch().await;
    assert_eq!(visit(&alice, "/auth_route").await.status(), Status::Ok, "user is for this app");

    let default = tenant_with_a_role_for_another_app(json!({})).await;
    default.login_as(BOB, "/auth_route").await;
    assert_eq!(default.get("/auth_route").await.status(), Status::Ok, "off: every role counts");
}
