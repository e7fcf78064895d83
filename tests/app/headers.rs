//! Headers and transport (security.md §1.3–1.4, §3.6, R-H1–R-H5): the security headers
//! on every kind of response, identity only from our session cookie, path variants of the
//! protected page guarded or 404, odd methods refused, and hyper's size limits (431/414)
//! over real HTTP against a launched server.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use appid_emulator::{EmulatorConfig, Endpoint};
use rocket::fairing::AdHoc;
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{Header, Method, Status};
use rocket::local::asynchronous::LocalResponse;
use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};
use rocket::tokio::net::TcpStream;
use serde_json::json;

use crate::common::*;

/// The app launched on a loopback port (real HTTP through hyper), stopped when dropped.
pub struct Served {
    pub addr: SocketAddr,
    shutdown: rocket::Shutdown,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

/// Launches the app built from `figment` on a free loopback port.
pub async fn serve(figment: Figment) -> Served {
    let figment =
        figment.merge(Serialized::global("port", 0)).merge(Serialized::global("address", "127.0.0.1"));
    let (tx, rx) = rocket::tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let rocket = rocket_appid::build(figment).attach(AdHoc::on_liftoff("report port", move |rocket| {
        let port = rocket.config().port;
        let tx = tx.lock().unwrap().take();
        Box::pin(async move {
            if let Some(tx) = tx {
                let _ = tx.send(port);
            }
        })
    }));
    let rocket = rocket.ignite().await.expect("the app ignites");
    let shutdown = rocket.shutdown();
    rocket::tokio::spawn(rocket.launch());
    let port = rocket::tokio::time::timeout(Duration::from_secs(10), rx).await.unwrap().unwrap();
    Served { addr: SocketAddr::from(([127, 0, 0, 1], port)), shutdown }
}

impl Served {
    /// Sends `request` as raw bytes; returns the response head (status line and headers),
    /// or what arrived before the server closed the connection.
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        // The server may answer and close before it has read everything: ignore write errors.
        let _ = stream.write_all(request).await;
        let mut received = Vec::new();
        let mut buf = [0u8; 8192];
        let deadline = rocket::tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let read = rocket::tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            }
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                received.truncate(end);
                break;
            }
        }
        String::from_utf8_lossy(&received).into_owned()
    }
}

/// Asserts the headers every response carries (R-H3), and no HSTS over http.
fn assert_security_headers(response: &LocalResponse<'_>, what: &str) {
    let headers = response.headers();
    let csp = headers.get_one("Content-Security-Policy").unwrap_or_else(|| panic!("{what}: a CSP"));
    for directive in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"]
    {
        assert!(csp.contains(directive), "{what}: CSP {csp} lacks {directive}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{what}: no script: {csp}");
    assert_eq!(headers.get_one("X-Content-Type-Options"), Some("nosniff"), "{what}");
    assert_eq!(headers.get_one("Referrer-Policy"), Some("no-referrer"), "{what}");
    assert_eq!(headers.get_one("Strict-Transport-Security"), None, "{what}: no HSTS over http");
    assert_eq!(headers.get_one("Cache-Control"), Some("no-store"), "{what}: never cached");
}

#[rocket::async_test]
async fn r_h3_every_kind_of_response_carries_the_security_headers_and_no_store() {
    let app = spawn_app().await;
    let response = app.get("/noauth_route").await;
    assert_eq!(response.status(), Status::Ok);
    assert_security_headers(&response, "200 open page");

    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_security_headers(&response, "303 login");

    let response = app.client.get("/afterauth?code=x&state=y").dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert_security_headers(&response, "400 callback");

    let response = app.get_with("/auth_route", &[("Accept", "application/json")]).await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_security_headers(&response, "401 API");

    let response = app.get("/nothing-here").await;
    assert_eq!(response.status(), Status::NotFound);
    assert_security_headers(&response, "404");

    let response = app.login_as(ALICE, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_security_headers(&response, "303 callback");
    let response = app.get("/auth_route").await;
    assert_eq!(response.status(), Status::Ok);
    assert_security_headers(&response, "200 authenticated page");

    let bob = spawn_app().await;
    let response = bob.login_as(BOB, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    let response = bob.get("/auth_route").await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_security_headers(&response, "403 no role");

    let cross = app.post_with("/logout", &[("Sec-Fetch-Site", "cross-site")]).await;
    assert_eq!(cross.status(), Status::Forbidden);
    assert_security_headers(&cross, "403 cross-site");
}

#[rocket::async_test]
async fn r_h3_a_503_page_carries_the_security_headers() {
    let app = spawn_app().await;
    // A provider that refuses connections, so no discovery document was ever read.
    let dead = json!({ "oauth_server_url": "http://127.0.0.1:1/oauth/v4/tenant-down" });
    let client = app.other_browser(dead).await;
    let response = visit(&client, "/auth_route").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert_security_headers(&response, "503");
}

#[rocket::async_test]
async fn r_h3_hsts_is_sent_when_the_app_is_served_over_https() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "redirect_uri": "https://localhost:8443/afterauth" }),
    )
    .await;
    for path in ["/noauth_route", "/auth_route", "/nothing-here"] {
        let response = app.get(path).await;
        let hsts = response.headers().get_one("Strict-Transport-Security").unwrap_or_default();
        let max_age: u64 = hsts.trim_start_matches("max-age=").split(';').next().unwrap().parse().unwrap();
        assert!(max_age >= 31_536_000, "{path}: {hsts}");
    }
}

#[rocket::async_test]
async fn b88_roles_claimed_by_the_client_are_ignored() {
    // Roles come only from App ID's management API for the session's subject: Bob has
    // none, whatever his request says.
    let app = spawn_app().await;
    app.login_as(BOB, "/auth_route").await;
    let response = app
        .get_with(
            "/auth_route",
            &[
                ("Accept", "text/html"),
                ("X-Forwarded-Groups", "admin"),
                ("X-Roles", "user,admin"),
                ("X-Auth-Request-Groups", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(response.cookies().get("appid_session").is_none(), "the session is not changed");
}

/// A `Host` line plus `extra`, as raw request bytes for `target`.
fn raw_get(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

#[rocket::async_test]
async fn b90_one_header_of_500_kb_gets_431_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let server = serve(app_figment(&app.idp, json!({}))).await;
    let huge = format!("X-Big: {}\r\n", "a".repeat(500 * 1024));
    let head = server.raw(&raw_get("/auth_route", &huge)).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
    assert!(server.raw(&raw_get("/health", "")).await.starts_with("HTTP/1.1 200"), "still serving");
}

#[rocket::async_test]
async fn b91_150_headers_get_431() {
    let app = spawn_app().await;
    let server = serve(app_figment(&app.idp, json!({}))).await;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let head = server.raw(&raw_get("/auth_route", &many)).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
    assert!(server.raw(&raw_get("/health", "")).await.starts_with("HTTP/1.1 200"));
}

#[rocket::async_test]
async fn b92_a_request_target_of_70000_bytes_gets_414() {
    let app = spawn_app().await;
    let server = serve(app_figment(&app.idp, json!({}))).await;
    let target = format!("/auth_route?q={}", "a".repeat(70_000));
    let head = server.raw(&raw_get(&target, "")).await;
    assert!(head.starts_with("HTTP/1.1 414"), "{head:?}");
    assert!(!head.contains("Set-Cookie"), "no transaction was started");
    assert!(server.raw(&raw_get("/health", "")).await.starts_with("HTTP/1.1 200"));
}

#[rocket::async_test]
async fn b38_over_http_a_300_kb_cookie_header_is_answered_quickly() {
    let app = spawn_app().await;
    let server = serve(app_figment(&app.idp, json!({}))).await;
    let cookies: String = (0..20_000).map(|i| format!("c{i}=vvvvvvv; ")).collect();
    let started = std::time::Instant::now();
    let head =
        server.raw(&raw_get("/auth_route", &format!("Accept: text/html\r\nCookie: {cookies}\r\n"))).await;
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    // hyper reads up to 408 KiB of head: this passes hyper, and the app treats it as no session.
    assert!(head.starts_with("HTTP/1.1 303") || head.starts_with("HTTP/1.1 431"), "{head:?}");
    assert!(server.raw(&raw_get("/health", "")).await.starts_with("HTTP/1.1 200"));
}

#[rocket::async_test]
async fn b94_x_real_ip_from_the_client_is_not_trusted() {
    let app = spawn_app().await;
    // Rocket.toml sets `ip_header = false`: the socket peer is the client address.
    assert!(app.client.rocket().config().ip_header.is_none());
    let response = app
        .client
        .get("/noauth_route")
        .header(Header::new("X-Real-IP", "1.2.3.4"))
        .remote("127.0.0.9:4000".parse().unwrap())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
}

#[rocket::async_test]
async fn b95_identity_headers_and_a_bearer_token_without_the_cookie_are_ignored() {
    let app = spawn_app().await;
    // A genuine access token of Alice's, from a real login in another browser.
    let other = spawn_app().await;
    other.login_as(ALICE, "/auth_route").await;
    let token = other.session_json()["access_token"].as_str().unwrap().to_string();
    let bare = app.bare_browser(json!({})).await;
    let identity = [
        ("X-Forwarded-User", "admin"),
        ("X_Forwarded_User", "admin"),
        ("X-Auth-Request-Email", "alice@example.com"),
        ("X-Auth-Request-User", "alice"),
        ("Remote-User", "admin"),
    ];
    for accept in ["text/html", "application/json"] {
        let mut request = bare
            .get("/auth_route")
            .header(Header::new("Accept", accept))
            .header(Header::new("Authorization", format!("Bearer {token}")));
        for (name, value) in identity {
            request = request.header(Header::new(name, value));
        }
        let response = request.dispatch().await;
        let expected = if accept == "text/html" { Status::SeeOther } else { Status::Unauthorized };
        assert_eq!(response.status(), expected, "{accept}");
        assert!(response.cookies().get("appid_session").is_none());
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Introspect), 0, "the bearer token was never looked at");
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 0);
}

#[rocket::async_test]
async fn b96_rewrite_headers_do_not_change_what_is_guarded() {
    let app = spawn_app().await;
    let rewrites = ["X-Forwarded-Uri", "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Prefix"];
    for name in rewrites {
        let response = app.get_with("/auth_route", &[("Accept", "text/html"), (name, "/noauth_route")]).await;
        assert_eq!(response.status(), Status::SeeOther, "{name}: still the guarded page");
        assert!(location(&response).starts_with(&app.idp.oauth_server_url));
        // And the open page pretending to be the protected one shows nothing protected.
        let response = app.get_with("/noauth_route", &[("Accept", "text/html"), (name, "/auth_route")]).await;
        assert_eq!(response.status(), Status::Ok);
        let body = response.into_string().await.unwrap();
        assert!(!body.contains("Who you are"), "{name}: nothing protected");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 0);
}

#[rocket::async_test]
async fn b97_variants_of_the_protected_path_are_guarded_or_404() {
    let app = spawn_app().await;
    app.login_as(BOB, "/auth_route").await; // logged in, no role: a guarded path answers 403
    let variants = [
        "//auth_route",
        "/auth_route/",
        "/auth_route//",
        "/./auth_route",
        "/auth_route/.",
        "/AUTH_ROUTE",
        "/Auth_Route",
        "/auth_route%2f",
        "/auth%5Froute",
        "/auth_route%00",
        "/auth_route%23/x",
        "/auth_route;x",
        "/auth_route.html",
        "/static/../auth_route",
        "/static/%2e%2e/auth_route",
        "/noauth_route/../auth_route",
        "/auth_route?x=/noauth_route",
    ];
    for path in variants {
        let response = app.get(path).await;
        let status = response.status();
        assert!(
            status == Status::Forbidden || status == Status::NotFound || status == Status::BadRequest,
            "{path}: guarded (403 for a user without a role) or 404, got {status}"
        );
    }
}

#[rocket::async_test]
async fn b98_options_trace_and_unknown_methods_show_nothing_protected() {
    let app = spawn_app().await;
    for method in
        [Method::Options, Method::Trace, Method::Connect, Method::Patch, Method::Put, Method::Delete]
    {
        let response = app.client.req(method, "/auth_route").dispatch().await;
        let status = response.status();
        assert!(
            [Status::NotFound, Status::MethodNotAllowed, Status::BadRequest].contains(&status),
            "{method}: {status}"
        );
        assert!(response.cookies().get("appid_session").is_none());
        assert!(response.cookies().get("appid_login").is_none(), "{method}: no login started");
    }
    let server = serve(app_figment(&app.idp, json!({}))).await;
    for method in ["FOO", "TRACE", "OPTIONS"] {
        let head = server
            .raw(
                format!("{method} /auth_route HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!([400, 404, 405].contains(&status), "{method}: {head:?}");
        assert!(!head.contains("appid_login"), "{method}: no login started");
    }
    assert_eq!(app.idp.emulator.calls(Endpoint::Token), 0);
}
