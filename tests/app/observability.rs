//! Logs and metrics: one JSON line per request without query strings, request ids, and
//! Prometheus counters behind a switch and an optional token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use appid_emulator::EmulatorConfig;
use rocket::http::Status;
use serde_json::json;

use crate::common::*;

#[rocket::async_test]
async fn metrics_are_off_by_default() {
    let app = spawn_app().await;
    assert_eq!(app.client.get("/metrics").dispatch().await.status(), Status::NotFound);
}

#[rocket::async_test]
async fn metrics_count_logins_guard_decisions_provider_calls_and_cache_lookups() {
    let app = spawn_app_with(EmulatorConfig::default(), json!({ "metrics": true })).await;
    app.login_as(ALICE, "/auth_route").await;
    assert_eq!(app.get("/auth_route").await.status(), Status::Ok);
    let response = app.client.get("/metrics").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert!(response.content_type().is_some_and(|t| t.top() == "text" && t.sub() == "plain"));
    let text = response.into_string().await.unwrap();
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert!(value("rocket_appid_logins_started_total") >= 1);
    assert!(value("rocket_appid_logins_succeeded_total") >= 1);
    assert!(value("rocket_appid_guard_decisions_total{outcome=\"ok\"}") >= 1);
    assert!(value("rocket_appid_guard_decisions_total{outcome=\"no_session\"}") >= 1);
    assert!(value("rocket_appid_provider_calls_total{endpoint=\"token\",outcome=\"ok\"}") >= 1);
    assert!(value("rocket_appid_cache_lookups_total{cache=\"roles\",result=\"hit\"}") >= 1);
    assert!(value("rocket_appid_jwks_fetches_total") >= 1);
    assert!(!text.contains("alice"), "no user data in labels");
}

#[rocket::async_test]
async fn a_metrics_token_is_required_when_configured() {
    let app = spawn_app_with(
        EmulatorConfig::default(),
        json!({ "metrics": true, "metrics_token": "scrape-me-1234" }),
    )
    .await;
    assert_eq!(app.client.get("/metrics").dispatch().await.status(), Status::Forbidden);
    let wrong = app.get_with("/metrics", &[("Authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status(), Status::Forbidden);
    let right = app.get_with("/metrics", &[("Authorization", "Bearer scrape-me-1234")]).await;
    assert_eq!(right.status(), Status::Ok);
}

#[rocket::async_test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/noauth_route").await.headers().get_one("X-Request-Id").unwrap().to_string();
    let b = app.get("/noauth_route").await.headers().get_one("X-Request-Id").unwrap().to_string();
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
}

/// Waits until the app on `port` answers `/health`, at most 20 s.
fn wait_until_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_get(port, "/health").contains("200") {
        assert!(Instant::now() < deadline, "the app did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to `child`.
fn stop(child: &std::process::Child) {
    let sent = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(sent.unwrap().success());
}

/// Sends one HTTP/1.1 GET and returns the status line.
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or("").to_string()
}

#[test]
fn the_process_logs_one_json_line_per_request_without_the_query() {
    let port = free_port();
    let mut child = app_process_logging_json(port);
    wait_until_up(port);
    assert!(http_get(port, "/afterauth?code=CANARY-CODE-123&state=CANARY-STATE").contains("400"));
    // Stopped as Code Engine stops it: the log writer's thread writes what is pending first.
    stop(&child);
    let output: Vec<String> =
        BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    let _ = child.wait();

    let requests: Vec<serde_json::Value> = output
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "request")
        .collect();
    let callback = requests.iter().find(|v| v["route"] == "/afterauth").expect("a line for the callback");
    assert_eq!(callback["status"], 400);
    assert_eq!(callback["method"], "GET");
    assert!(
        callback["duration_us"].as_u64().is_some() && callback["id"].as_str().is_some_and(|i| i.len() == 16)
    );
    let all = output.join("\n");
    assert!(!all.contains("CANARY"), "a query value reached the log:\n{all}");
}

/// The request log is written by a thread of its own; on SIGTERM every line of every
/// request answered reaches stdout before the process exits.
#[test]
fn on_sigterm_every_request_line_is_written_before_the_process_exits() {
    let port = free_port();
    let mut child = app_process_logging_json(port);
    wait_until_up(port);
    const REQUESTS: usize = 300;
    for _ in 0..REQUESTS {
        assert!(http_get(port, "/noauth_route").contains("200"));
    }
    stop(&child);
    let output: Vec<String> =
        BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "a clean exit");
    let lines = output
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "request" && v["route"] == "/noauth_route")
        .count();
    assert_eq!(lines, REQUESTS, "one line per request, none lost");
    assert!(output.iter().any(|l| l.contains("\"event\":\"shutdown\"")), "the shutdown is logged too");
}
