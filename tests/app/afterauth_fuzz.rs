//! `/afterauth` query handling under 10 000 generated queries (security.md R-E3, R-A3):
//! never a 500 or a panic, only refusal statuses, never a session cookie or a redirect,
//! and a repeated `code` or `state` is refused before any token request.

use std::collections::BTreeMap;
use std::time::Instant;

use appid_emulator::Endpoint;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::Cookie;
use serde_json::json;

use crate::common::*;

const CASES: usize = 10_000;
/// The state of the transaction sent with about half of the cases (shaped like ours).
const STATE: &str = "fuzzSTATEfuzzSTATEfuzzSTATEfuzzSTATEfuzzSTA";
/// Statuses R-E3 allows for a callback (414 and 431 come from hyper, not seen here).
const ALLOWED: [u16; 5] = [400, 414, 422, 431, 503];

/// One parameter value, biased toward what breaks parsers: our state, empty, long,
/// percent escapes, controls, markup, non-ASCII.
fn value(issuer: String) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(STATE.to_string()),
        2 => Just(String::new()),
        3 => "[A-Za-z0-9_-]{1,60}",
        2 => "[%&=+;#?/\\\\ .:@a-f0-9]{0,30}",
        1 => any::<String>(),
        1 => prop::sample::select(vec![
            "<script>alert(1)</script>", "%00", "%0d%0a", "\r\n", "%", "%%", "%zz", "%E2%80%AE", "\u{0}",
            "a%26state%3Dx", "+", "null", "[]", "{}", "sign_up", "forgot_password",
        ])
        .prop_map(str::to_string),
        1 => (1usize..6000).prop_map(|n| "c".repeat(n)),
        1 => Just(issuer),
    ]
}

/// One parameter name: the four the callback reads, near misses and noise.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["code", "state"]).prop_map(str::to_string),
        2 => prop::sample::select(vec!["error", "iss", "error_description", "flow", "session_state"])
            .prop_map(str::to_string),
        1 => prop::sample::select(vec!["Code", "STATE", "code[]", "state ", "", "c%6fde", "st%61te", "code%00"])
            .prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ]
}

/// A whole case: the raw query, and whether the browser has a pending transaction.
fn case(issuer: String) -> impl Strategy<Value = (String, bool)> {
    let pair = (key(), value(issuer), any::<bool>());
    let pairs = prop::collection::vec(pair, 0..6);
    // 0: form-encoded (always a valid URI); 1: raw (may not even be a URI); 2: encoded with
    // one parameter repeated; 3: encoded after a well-formed `code` and our `state`.
    (pairs, 0u8..4, prop::sample::select(vec!["&", "&", "&", ";", "&&"]), any::<bool>()).prop_map(
        |(pairs, style, separator, with_transaction)| {
            let encode = |(k, v, bare): &(String, String, bool)| {
                let k: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
                let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                if *bare && v.is_empty() {
                    k
                } else {
                    format!("{k}={v}")
                }
            };
            let mut parts: Vec<String> = match style {
                1 => pairs.iter().map(|(k, v, _)| format!("{k}={v}")).collect(),
                _ => pairs.iter().map(encode).collect(),
            };
            if style == 3 {
                // A well-formed callback for the pending login, plus whatever else.
                parts.insert(0, format!("code=fuzz-code&state={STATE}"));
            }
            if style == 2 {
                let first = parts.first().cloned().unwrap_or_else(|| format!("state={STATE}"));
                parts.push(first);
            }
            (parts.join(separator), with_transaction)
        },
    )
}

/// True for App ID's `?flow=sign_up|forgot_password` without a code or an error.
fn ends_a_provider_flow(query: &str) -> bool {
    let values = |name: &str| -> Vec<String> {
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    };
    let flow = values("flow");
    flow.len() == 1
        && ["sign_up", "forgot_password"].contains(&flow[0].as_str())
        && values("code").iter().all(String::is_empty)
        && values("error").iter().all(String::is_empty)
        && values("code").len() <= 1
        && values("state").len() <= 1
        && values("error").len() <= 1
        && values("iss").len() <= 1
}

/// How often the callback's parser sees `name` in `query` (its own parser, form rules).
fn occurrences(query: &str, name: &str) -> usize {
    url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == name).count()
}

#[rocket::async_test]
async fn r_e3_10000_generated_callback_queries_never_fail_open() {
    let app = spawn_app().await;
    // One client for all cases; it keeps no cookies, so each case carries only its own.
    let client = app.bare_browser(json!({})).await;
    let transaction = json!({
        "state": STATE, "nonce": "fuzz-nonce", "verifier": null,
        "return_to": "/auth_route", "created_at": now(),
    })
    .to_string();
    let strategy = case(app.idp.oauth_server_url.clone());
    let mut runner = TestRunner::new(Config { cases: CASES as u32, ..Config::default() });
    let mut statuses = BTreeMap::new();
    let (mut duplicates, mut exchanges, mut flows) = (0, 0, 0);
    let started = Instant::now();

    for _ in 0..CASES {
        let (query, with_transaction) = strategy.new_tree(&mut runner).unwrap().current();
        let token_calls = app.idp.emulator.calls(Endpoint::Token);
        let mut request = client.get(format!("/afterauth?{query}"));
        if with_transaction {
            request = request.private_cookie(Cookie::new("appid_login", transaction.clone()));
        }
        let response = request.dispatch().await;
        let status = response.status().code;
        *statuses.entry(status).or_insert(0) += 1;
        if status == 303 {
            // Only App ID's end of a sign-up/password-reset flow redirects, to a local path.
            assert!(ends_a_provider_flow(&query), "{query:?} redirected");
            crate::return_to::assert_origin_relative(&location(&response), &query);
            flows += 1;
        } else {
            assert!(ALLOWED.contains(&status), "{query:?} (transaction: {with_transaction}) gave {status}");
            assert!(response.headers().get_one("Location").is_none(), "{query:?} redirected");
        }
        assert!(response.cookies().get("appid_session").is_none(), "{query:?} set a session cookie");
        let body = response.into_string().await.unwrap_or_default();
        assert!(!body.contains("<script>alert"), "{query:?} was reflected");

        let exchanged = app.idp.emulator.calls(Endpoint::Token) - token_calls;
        if occurrences(&query, "code") > 1 || occurrences(&query, "state") > 1 {
            duplicates += 1;
            assert_eq!(status, 400, "{query:?}: a repeated parameter is refused");
            assert_eq!(exchanged, 0, "{query:?}: refused before the token endpoint");
        }
        if !with_transaction {
            assert_eq!(exchanged, 0, "{query:?}: no transaction, no token request");
        }
        exchanges += exchanged;
    }

    let elapsed = started.elapsed();
    eprintln!("{CASES} callback queries in {elapsed:?}: statuses {statuses:?}, {duplicates} with a repeated code/state, {exchanges} reached the token endpoint, {flows} ended a provider flow");
    assert!(duplicates > 500, "the generator repeats parameters often enough ({duplicates})");
    assert!(exchanges > 0, "some cases pass every check and reach the (refusing) token endpoint");
    assert!(session_of(&app.client).is_none());
}
