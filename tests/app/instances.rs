//! Several instances of the app behind one address, sharing one Redis and one session key:
//! each instance here is an app of its own (its own caches, breakers and in-process state),
//! and only the store connects them, as on Code Engine. Needs `RAPPID_TEST_REDIS_URL`
//! (`.ci/run` starts a Redis); without it these tests print SKIPPED, except under CI=true.

use appid_emulator::EmulatorConfig;
use rocket::futures::future::join_all;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

use crate::common::*;

/// The shared store's settings for one test (its own namespace), or None to skip.
fn shared_store() -> Option<Value> {
    let Ok(url) = std::env::var("RAPPID_TEST_REDIS_URL") else {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("RAPPID_TEST_REDIS_URL is required under CI=true (.ci/run starts a Redis)");
        }
        println!("SKIPPED: RAPPID_TEST_REDIS_URL is not set: the several-instances tests did NOT run");
        return None;
    };
    let namespace = format!("t{:016x}", rand::random::<u64>());
    Some(json!({ "store_url": url, "store_namespace": namespace }))
}

fn merged(mut base: Value, more: Value) -> Value {
    if let (Some(base), Value::Object(more)) = (base.as_object_mut(), more) {
        base.extend(more);
    }
    base
}

/// Instance B: another app with the same settings (and so its own Redis connection).
async fn instance_b(app: &TestApp, settings: Value) -> Client {
    Client::untracked(rocket_appid::build(app_figment(&app.idp, settings))).await.expect("instance B ignites")
}

#[rocket::async_test]
async fn signing_out_on_one_instance_refuses_the_old_cookie_on_another_at_once() {
    let Some(store) = shared_store() else { return };
    let app = spawn_app_with(EmulatorConfig::default(), store.clone()).await;
    let b = instance_b(&app, store).await;
    app.login_as(ALICE, "/auth_route").await;
    let cookies = app.session_cookies();
    assert_eq!(replay(&b, &cookies, "text/html").await.status(), Status::Ok, "B serves A's session");
    app.logout().await;
    let replayed = replay(&b, &cookies, "text/html").await;
    assert_eq!(replayed.status(), Status::SeeOther, "B refuses the signed-out cookie at once");
    assert!(location(&replayed).starts_with(&app.idp.oauth_server_url));
}

/// Signs Alice in on A, waits until her access token (1 s) has expired, then sends 20
/// requests of her session at once, 10 to A and 10 to B (`settings` plus a shared store):
/// all are served and exactly one refresh is made. The emulator rotates refresh tokens and
/// refuses one used twice, as App ID does, so a second refresh would sign her out.
/// Returns A, B and the session's cookies.
async fn twenty_requests_at_renewal_over_two_instances(
    settings: Value,
) -> (TestApp, Client, Vec<(String, String)>) {
    let idp = EmulatorConfig { refresh_tokens: true, access_token_ttl: 1, ..EmulatorConfig::default() };
    let settings = merged(settings, json!({ "clock_leeway_secs": 0, "refresh_window_secs": 0 }));
    let app = spawn_app_with(idp, settings.clone()).await;
    let b = instance_b(&app, settings).await;
    app.login_as(ALICE, "/auth_route").await;
    app.idp.emulator.set_access_token_ttl(3600);
    let cookies = app.session_cookies();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let on_a = (0..10).map(|_| async { app.get("/auth_route").await.status() });
    let on_b = (0..10).map(|_| async { replay(&b, &cookies, "text/html").await.status() });
    let (a, b_statuses) = tokio::join!(join_all(on_a), join_all(on_b));
    let statuses: Vec<Status> = a.into_iter().chain(b_statuses).collect();
    assert!(statuses.iter().all(|s| *s == Status::Ok), "nobody is signed out: {statuses:?}");
    assert_eq!(app.token_calls(), 2, "the login's code exchange and exactly one refresh");
    (app, b, cookies)
}

#[rocket::async_test]
async fn twenty_requests_of_one_session_over_two_instances_at_renewal_make_one_refresh_call() {
    let Some(store) = shared_store() else { return };
    twenty_requests_at_renewal_over_two_instances(store).await;
}

#[rocket::async_test]
async fn a_store_that_stops_answering_signs_nobody_out_and_sessions_keep_working() {
    let Some(store) = shared_store() else { return };
    let app = spawn_app_with(EmulatorConfig::default(), store.clone()).await;
    app.login_as(ALICE, "/auth_route").await;
    // Instance B points at a Redis that is not there (its URL is the only difference).
    let gone = merged(store, json!({ "store_url": format!("redis://127.0.0.1:{}", free_port()) }));
    let b = instance_b(&app, gone).await;
    let cookies = app.session_cookies();
    for _ in 0..3 {
        let response = replay(&b, &cookies, "text/html").await;
        assert_eq!(response.status(), Status::Ok, "the deny-list fails open: no 500, no sign-out");
        assert!(response.cookies().get("appid_session").is_none_or(|c| !c.value().is_empty()));
    }
}

/// Server-side sessions over Redis: the session itself is shared, so a logout deletes it
/// for every instance, and a renewal on one is what the others read next.
fn server_side(store: Value) -> Value {
    merged(store, json!({ "session_store": "server" }))
}

#[rocket::async_test]
async fn a_server_side_session_is_served_by_another_instance_and_logout_deletes_it_for_both() {
    let Some(store) = shared_store() else { return };
    let settings = server_side(store);
    let app = spawn_app_with(EmulatorConfig::default(), settings.clone()).await;
    let b = instance_b(&app, settings).await;
    app.login_as(ALICE, "/auth_route").await;
    let cookies = app.session_cookies();
    assert_eq!(cookies.len(), 1, "one small ticket cookie");
    let on_b = replay(&b, &cookies, "text/html").await;
    assert_eq!(on_b.status(), Status::Ok, "B reads the session A stored");
    assert!(on_b.into_string().await.unwrap().contains(ALICE));
    app.logout().await;
    let replayed = replay(&b, &cookies, "text/html").await;
    assert_eq!(replayed.status(), Status::SeeOther, "deleted for every instance at once");
}

#[rocket::async_test]
async fn twenty_requests_of_one_server_side_session_over_two_instances_make_one_refresh_call() {
    let Some(store) = shared_store() else { return };
    let (app, b, cookies) = twenty_requests_at_renewal_over_two_instances(server_side(store)).await;
    assert_eq!(replay(&b, &cookies, "text/html").await.status(), Status::Ok, "later: the stored renewal");
    assert_eq!(app.token_calls(), 2);
}

#[rocket::async_test]
async fn with_redis_gone_a_server_side_session_gets_the_503_page_and_keeps_its_cookie() {
    let Some(store) = shared_store() else { return };
    let app = spawn_app_with(EmulatorConfig::default(), server_side(store.clone())).await;
    app.login_as(ALICE, "/auth_route").await;
    let gone =
        server_side(merged(store, json!({ "store_url": format!("redis://127.0.0.1:{}", free_port()) })));
    let b = instance_b(&app, gone).await;
    let cookies = app.session_cookies();
    for _ in 0..3 {
        let response = replay(&b, &cookies, "text/html").await;
        assert_eq!(response.status(), Status::ServiceUnavailable, "fails closed, no 500");
        assert!(response.cookies().get("appid_session").is_none(), "the cookie is not touched");
    }
    assert_eq!(replay(&app.client, &cookies, "text/html").await.status(), Status::Ok, "A still serves it");
}

#[rocket::async_test]
async fn the_token_endpoint_budget_is_one_for_all_instances_when_they_share_redis() {
    let Some(store) = shared_store() else { return };
    let settings = merged(store, json!({ "token_calls_per_sec": 2 }));
    let app = spawn_app_with(EmulatorConfig::default(), settings.clone()).await;
    // Instance B with a browser of its own (it keeps its login transactions).
    let b = Client::tracked(rocket_appid::build(app_figment(&app.idp, settings))).await.expect("B ignites");
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for _ in 0..2 {
        let authorization = app.begin_login("/auth_route").await;
        on_a.push(app.sign_in_at_provider(&authorization, ALICE).await);
        let started = visit(&b, "/auth_route").await;
        let authorization = url::Url::parse(&location(&started)).expect("a provider URL");
        on_b.push(app.sign_in_at_provider(&authorization, ALICE).await);
    }
    // All four callbacks within one second of the clock (the budget's window).
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_millis());
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1020 - into_second))).await;
    let before = app.token_calls();
    let a_answers = on_a.iter().map(|path| app.client.get(path.clone()).dispatch());
    let b_answers = on_b.iter().map(|path| b.get(path.clone()).dispatch());
    let (a_answers, b_answers) = tokio::join!(join_all(a_answers), join_all(b_answers));
    let statuses: Vec<Status> = a_answers.iter().chain(b_answers.iter()).map(|a| a.status()).collect();
    let refused = statuses.iter().filter(|s| **s == Status::TooManyRequests).count();
    assert_eq!(refused, 2, "two exchanges this second for both instances together: {statuses:?}");
    assert_eq!(app.token_calls() - before, 2, "no call beyond the shared budget");
}

/// A real app process (the release binary's code path, with its own runtime, caches and
/// Redis connection) on `port`, sharing `redis` under `namespace`.
struct AppProcess {
    child: std::process::Child,
    base: String,
}

impl AppProcess {
    fn start(
        idp: &appid_emulator::RunningEmulator,
        redis: &str,
        namespace: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let mut command = app_process_against(idp, port);
        command
            .env("APPID_STORE_URL", redis)
            .env("APPID_STORE_NAMESPACE", namespace)
            .env("APPID_CLOCK_LEEWAY_SECS", "0")
            .env("APPID_REFRESH_WINDOW_SECS", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (name, value) in extra {
            command.env(name, value);
        }
        AppProcess {
            child: command.spawn().expect("the app starts"),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        for _ in 0..200 {
            if http.get(format!("{}/health", self.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{} did not start", self.base);
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `name=value` pairs a response sets (removals left out).
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|line| line.to_str().ok()?.split(';').next()?.split_once('='))
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
}

#[rocket::async_test]
async fn two_app_processes_share_logout_renewal_and_server_side_sessions_through_redis() {
    let Some(store) = shared_store() else { return };
    let (redis, namespace) =
        (store["store_url"].as_str().unwrap(), store["store_namespace"].as_str().unwrap());
    for mode in ["cookie", "server"] {
        let idp = EmulatorConfig { refresh_tokens: true, access_token_ttl: 1, ..EmulatorConfig::default() };
        let idp = appid_emulator::spawn(idp).await.expect("emulator starts");
        let namespace = format!("{namespace}-{mode}");
        let mode_setting = [("APPID_SESSION_STORE", mode)];
        let (a, b) = (
            AppProcess::start(&idp, redis, &namespace, &mode_setting),
            AppProcess::start(&idp, redis, &namespace, &mode_setting),
        );
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        a.wait_ready(&http).await;
        b.wait_ready(&http).await;

        // Sign in on A.
        let started = http.get(format!("{}/auth_route", a.base)).send().await.unwrap();
        assert_eq!(started.status().as_u16(), 303);
        let transaction = set_cookies(&started);
        let authorization = url::Url::parse(started.headers()["location"].to_str().unwrap()).unwrap();
        let callback = sign_in(&authorization, ALICE).await;
        let finished = http
            .get(format!("{}{callback}", a.base))
            .header("Cookie", cookie_header(&transaction))
            .send()
            .await
            .unwrap();
        assert_eq!(finished.status().as_u16(), 303, "{mode}: signed in on A");
        let session: Vec<(String, String)> = set_cookies(&finished)
            .into_iter()
            .filter(|(name, _)| name.starts_with("appid_session"))
            .collect();
        assert!(!session.is_empty());
        let cookie = cookie_header(&session);
        idp.emulator.set_access_token_ttl(3600);

        // At renewal time, 20 requests spread over both processes: one refresh call.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let before = idp.emulator.calls(appid_emulator::Endpoint::Token);
        let requests = (0..20).map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            http.get(format!("{base}/auth_route")).header("Cookie", &cookie).send()
        });
        let statuses: Vec<u16> =
            join_all(requests).await.into_iter().map(|r| r.map_or(0, |r| r.status().as_u16())).collect();
        assert!(statuses.iter().all(|s| *s == 200), "{mode}: nobody is signed out: {statuses:?}");
        assert_eq!(idp.emulator.calls(appid_emulator::Endpoint::Token) - before, 1, "{mode}: one refresh");

        // Sign out on A: B refuses the same cookie at once.
        let page = http
            .get(format!("{}/noauth_route", a.base))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf =
            page.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
        let logout = http
            .post(format!("{}/logout", a.base))
            .header("Cookie", &cookie)
            .header("Sec-Fetch-Site", "same-origin")
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status().as_u16(), 303, "{mode}: signed out on A");
        let on_b = http.get(format!("{}/auth_route", b.base)).header("Cookie", &cookie).send().await.unwrap();
        assert_eq!(on_b.status().as_u16(), 303, "{mode}: B refuses the signed-out cookie");
        assert!(on_b.headers()["location"].to_str().unwrap().starts_with(&idp.oauth_server_url));
    }
}

/// Issue 19 item 8 across instances: the renewal kept in Redis for the grace period
/// outlives its 5-second access token; the previous cookie on instance B renews it in turn
/// instead of being served the expired token (and sent to sign in).
#[rocket::async_test]
async fn renewal_a_kept_renewal_in_redis_is_used_only_while_its_access_token_is_still_usable() {
    let Some(store) = shared_store() else { return };
    let idp = EmulatorConfig { refresh_tokens: true, access_token_ttl: 5, ..EmulatorConfig::default() };
    let app = spawn_app_with(idp, store.clone()).await;
    let b = instance_b(&app, store).await;
    app.login_as(ALICE, "/auth_route").await;
    let first_cookies = app.session_cookies();
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.token_calls(), 2, "login and one refresh");
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;

    assert_eq!(replay(&b, &first_cookies, "text/html").await.status(), Status::Ok);
    assert_eq!(app.token_calls(), 3, "the kept renewal renewed in turn, once");
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    assert_eq!(app.token_calls(), 3);
}
