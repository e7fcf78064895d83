//! Return-to and redirects (security.md §2 E, §3.1): where a browser is sent after login.
//! Every path into a `Location` goes through one validator (`return_to::is_safe`); these
//! tests feed it our open-redirect corpus (`tests/data/open_redirects.txt`) and generated
//! input, directly and through the running app against the emulator, and check every
//! `Location` the app emits after login stays on our origin.

use std::time::Instant;

use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::uri::Origin;
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket_appid::auth::return_to;
use serde_json::{json, Value};
use url::Url;

use crate::common::*;

/// The open-redirect corpus: one payload per line, `#` comments and blank lines ignored.
const CORPUS: &str = include_str!("../data/open_redirects.txt");

/// The corpus payloads.
fn payloads() -> Vec<&'static str> {
    CORPUS.lines().filter(|line| !line.is_empty() && !line.starts_with('#')).collect()
}

/// A payload percent-decoded once (so `%09` becomes a real tab and `%252F` becomes `%2F`).
fn decoded_once(payload: &str) -> String {
    percent_decode_str(payload).decode_utf8_lossy().into_owned()
}

/// True when `location` can only lead to our own origin: it starts with exactly one `/`,
/// not followed by `/` or `\`, has no control or whitespace character, and a WHATWG URL
/// parser (which reads `\` as `/` and drops tabs and newlines) resolves it to our origin.
pub(crate) fn is_origin_relative(location: &str) -> bool {
    let base = Url::parse("https://app.example/some/page?x=1").unwrap();
    let mut chars = location.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !location.chars().any(|c| c.is_control() || c.is_whitespace())
        && base.join(location).is_ok_and(|url| url.origin() == base.origin())
}

/// Asserts `location` is origin-relative, naming the input that produced it.
pub(crate) fn assert_origin_relative(location: &str, input: &str) {
    assert!(is_origin_relative(location), "{input:?} produced Location {location:?}");
}

/// A client that keeps no cookies between requests (every visit is a new, logged-out
/// browser), for the same app and provider as `app`.
async fn cookieless_client(app: &TestApp) -> Client {
    app.bare_browser(json!({})).await
}

/// Finishes the login `start` began (a 303 to the provider): signs Alice in and delivers
/// the callback with the transaction `start` set, first changed by `change`. Returns the
/// callback's status and `Location`.
async fn finish_login(
    app: &TestApp,
    client: &Client,
    start: LocalResponse<'_>,
    change: impl FnOnce(&mut Value),
) -> (Status, Option<String>) {
    assert_eq!(start.status(), Status::SeeOther);
    let authorization = Url::parse(&location(&start)).unwrap();
    assert!(authorization.as_str().starts_with(&format!("{}/authorization?", app.idp.oauth_server_url)));
    let cookie = start.cookies().get_private("appid_login").expect("a login transaction");
    let mut pending: Value = serde_json::from_str(cookie.value()).unwrap();
    change(&mut pending);
    let callback = app.sign_in_at_provider(&authorization, ALICE).await;
    let response =
        client.get(callback).private_cookie(Cookie::new("appid_login", pending.to_string())).dispatch().await;
    assert!(response.cookies().get("appid_session").is_some(), "the login succeeded");
    (response.status(), response.headers().get_one("Location").map(str::to_string))
}

/// Logs in with `return_to` planted in the stored transaction (as if an earlier check had
/// let it through); returns the `Location` after login.
async fn location_after_login_with_stored(app: &TestApp, client: &Client, stored: &str) -> String {
    let start = visit(client, "/auth_route").await;
    let (status, location) = finish_login(app, client, start, |t| t["return_to"] = json!(stored)).await;
    assert_eq!(status, Status::SeeOther, "stored {stored:?}");
    location.expect("a Location after login")
}

/// Visits `path` logged out. If it starts a login, completes it and returns the `Location`
/// after login; if not, checks nothing was started and returns `None`.
async fn location_after_visiting(app: &TestApp, client: &Client, path: &str) -> Option<String> {
    let start = visit(client, path).await;
    let to_provider = start
        .headers()
        .get_one("Location")
        .is_some_and(|to| to.starts_with(&format!("{}/authorization?", app.idp.oauth_server_url)));
    if start.status() == Status::SeeOther && !to_provider {
        // `/` sends everyone to the protected page: a fixed, local redirect.
        assert_origin_relative(&location(&start), path);
        assert!(start.cookies().get("appid_login").is_none(), "{path:?} starts no login");
        return None;
    }
    if start.status() != Status::SeeOther {
        assert!(start.headers().get_one("Location").is_none(), "{path:?} redirects only to log in");
        assert!(start.cookies().get("appid_login").is_none(), "{path:?} starts no login");
        assert!(start.cookies().get("appid_session").is_none());
        return None;
    }
    let (status, location) = finish_login(app, client, start, |_| {}).await;
    assert_eq!(status, Status::SeeOther, "after visiting {path:?}");
    location
}

#[test]
fn r_x1_the_open_redirect_corpus_has_at_least_300_payloads_and_the_validator_refuses_each() {
    let payloads = payloads();
    assert!(payloads.len() >= 300, "only {} payloads", payloads.len());
    for payload in payloads {
        for input in [payload.to_string(), decoded_once(payload)] {
            assert!(!return_to::is_safe(&input), "{input:?} passed the validator");
            assert_eq!(return_to::safe_or_root(&input), "/", "{input:?}");
        }
    }
}

#[rocket::async_test]
async fn r_x1_the_open_redirect_corpus_through_the_app_never_leads_off_our_origin() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    let started = Instant::now();
    let (mut logins, mut as_path, mut as_query) = (0, 0, 0);
    for payload in payloads() {
        // (1) Stored in the transaction, literally and decoded once: refused at the callback.
        for stored in [payload.to_string(), decoded_once(payload)] {
            let location = location_after_login_with_stored(&app, &client, &stored).await;
            assert_eq!(location, "/", "stored {stored:?}");
            logins += 1;
        }
        // (2) As the requested path, where it is a URI at all: any login it starts
        // returns to a path on our origin.
        if Origin::parse(payload).is_ok() {
            if let Some(location) = location_after_visiting(&app, &client, payload).await {
                assert_origin_relative(&location, payload);
                as_path += 1;
            }
        }
        // (3) As the protected page's query: kept as data, or `/` when the whole is unsafe.
        let path = format!("/auth_route?{payload}");
        if Origin::parse(&path).is_ok() {
            let location = location_after_visiting(&app, &client, &path).await.expect("a login");
            assert_origin_relative(&location, &path);
            assert!(location == path || location == "/", "{path:?} returned to {location:?}");
            as_query += 1;
        }
    }
    eprintln!(
        "corpus through the app: {logins} stored, {as_path} as path, {as_query} as query in {:?}",
        started.elapsed()
    );
    assert!(as_query >= 100, "most payloads are expressible as a query ({as_query})");
    assert!(session_of(&app.client).is_none());
}

/// Strings biased toward what breaks redirect checks: slashes, backslashes, `%` escapes,
/// dots, colons, `@`, controls, whitespace, schemes, look-alikes and our own routes.
fn hostile_string() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        6 => Just("/".to_string()),
        3 => Just("\\".to_string()),
        3 => prop::sample::select(vec!["%2F", "%2f", "%5C", "%5c", "%25", "%2e", "%2E", "%09", "%0a", "%0d", "%20", "%00", "%40", "%3A", "%252F", "%EF%BC%8F", "%E3%80%82", "%C0%AF"]).prop_map(str::to_string),
        3 => prop::sample::select(vec![".", "..", ":", "@", "?", "#", ";", "&", "="]).prop_map(str::to_string),
        2 => prop::sample::select(vec!["\t", "\n", "\r", "\u{0b}", "\u{0c}", " ", "\u{0}", "\u{7f}", "\u{a0}", "\u{3000}", "\u{200b}", "\u{202e}"]).prop_map(str::to_string),
        2 => prop::sample::select(vec!["http:", "https:", "HtTpS:", "javascript:", "data:", "//", "evil.example", "afterauth", "logout", "auth_route", "／", "＼", "。"]).prop_map(str::to_string),
        2 => "[a-zA-Z0-9_-]{1,6}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(atom, 0..24).prop_map(|atoms| atoms.concat())
}

#[test]
fn r_x4_no_generated_return_path_becomes_a_location_off_our_origin() {
    let mut runner = TestRunner::new(Config { cases: 20_000, ..Config::default() });
    runner
        .run(&hostile_string(), |input| {
            // What the callback puts in `Location`, and that exact string re-validated.
            let location = return_to::safe_or_root(&input);
            prop_assert!(is_origin_relative(&location), "{:?} gave {:?}", input, location);
            prop_assert!(return_to::is_safe(&location));
            // The same input as a request path (where it parses): rebuilt, then validated.
            if let Ok(uri) = Origin::parse(&input) {
                let rebuilt = return_to::from_request(&uri);
                prop_assert!(is_origin_relative(&rebuilt), "{:?} rebuilt as {:?}", input, rebuilt);
            }
            Ok(())
        })
        .unwrap();
}

#[rocket::async_test]
async fn r_x4_generated_return_paths_through_the_app_never_leave_our_origin() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    let mut runner = TestRunner::new(Config { cases: 150, ..Config::default() });
    let strategy = hostile_string();
    for _ in 0..150 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        // As a stored return path: the exact `Location` emitted after login.
        let location = location_after_login_with_stored(&app, &client, &input).await;
        assert_origin_relative(&location, &input);
        // As the requested path and as the protected page's query, where they parse.
        for path in [format!("/{input}"), format!("/auth_route?{input}")] {
            if Origin::parse(&path).is_ok() {
                if let Some(location) = location_after_visiting(&app, &client, &path).await {
                    assert_origin_relative(&location, &path);
                }
            }
        }
    }
}

#[rocket::async_test]
async fn b3_backslash_return_paths_become_root() {
    // security.md lists no row B3; R-X3 ("table-driven test over B3–B9") and
    // GHSA-qqxw-m5fj-f7gv make it the backslash family.
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    for hostile in
        ["/\\evil.example", "\\\\evil.example", "/\\/evil.example", "/%5Cevil.example", "/%255Cevil.example"]
    {
        assert_eq!(return_to::safe_or_root(hostile), "/", "{hostile:?}");
        assert_eq!(location_after_login_with_stored(&app, &client, hostile).await, "/", "{hostile:?}");
    }
    // As a request path a raw backslash is not even a URI (400); encoded it routes nowhere.
    for visited in ["/\\evil.example", "/%5Cevil.example", "/%5C%5Cevil.example"] {
        assert_eq!(location_after_visiting(&app, &client, visited).await, None, "{visited:?}");
    }
    assert_eq!(app.idp.emulator.calls(appid_emulator::Endpoint::Token), 5, "only the five logins");
}

#[rocket::async_test]
async fn b4_whitespace_or_controls_between_slashes_become_root() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    for hostile in [
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0d/evil.example",
        "/%0b/evil.example",
        "/%20/evil.example",
    ] {
        assert_eq!(return_to::safe_or_root(hostile), "/", "{hostile:?}");
        assert_eq!(location_after_login_with_stored(&app, &client, hostile).await, "/", "{hostile:?}");
        // The raw character too (what a decoding layer would have produced).
        let raw = decoded_once(hostile);
        assert_eq!(location_after_login_with_stored(&app, &client, &raw).await, "/", "{raw:?}");
        // Requested as a path it matches no route: 404, no login started.
        assert_eq!(location_after_visiting(&app, &client, hostile).await, None, "{hostile:?}");
    }
}

#[rocket::async_test]
async fn b5_scheme_like_return_paths_become_root() {
    // No row B5 in security.md; R-X3's "scheme-like prefixes".
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    for hostile in [
        "https://evil.example",
        "HtTpS://evil.example",
        " https://evil.example",
        "javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/https://evil.example",
    ] {
        assert_eq!(return_to::safe_or_root(hostile), "/", "{hostile:?}");
        assert_eq!(location_after_login_with_stored(&app, &client, hostile).await, "/", "{hostile:?}");
    }
}

#[rocket::async_test]
async fn b6_dot_segments_and_multiple_encodings_become_root() {
    // No row B6 in security.md; R-X3's `/./`, `/../` and "decode until stable".
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    for hostile in [
        "/./\\evil.example",
        "/./../../\\evil.example",
        "/%2e%2e/evil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "/auth_route/../../evil.example",
    ] {
        assert_eq!(return_to::safe_or_root(hostile), "/", "{hostile:?}");
        assert_eq!(location_after_login_with_stored(&app, &client, hostile).await, "/", "{hostile:?}");
    }
    for visited in ["/./auth_route", "/%2e%2e/auth_route", "/%252F%252Fevil.example"] {
        assert_eq!(location_after_visiting(&app, &client, visited).await, None, "{visited:?}");
    }
}

#[rocket::async_test]
async fn b7_a_url_in_the_query_stays_data_on_our_path() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    for visited in [
        "/auth_route?next=https://evil.example",
        "/auth_route?next=//evil.example&rd=/%5Cevil.example",
        "/auth_route?https://evil.example",
    ] {
        let location = location_after_visiting(&app, &client, visited).await.expect("a login");
        assert_eq!(location, visited);
        assert_origin_relative(&location, visited);
    }
}

#[rocket::async_test]
async fn b8_a_3000_byte_path_and_query_logs_in_and_returns_to_root() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    let visited = format!("/auth_route?q={}", "x".repeat(3000 - "/auth_route?q=".len()));
    assert_eq!(visited.len(), 3000);

    let start = visit(&client, &visited).await;
    assert_eq!(start.status(), Status::SeeOther);
    let set_cookie: Vec<&str> = start.headers().get("Set-Cookie").collect();
    assert_eq!(set_cookie.len(), 1);
    assert!(set_cookie[0].len() < 4096, "the transaction cookie is {} bytes", set_cookie[0].len());
    let stored: Value =
        serde_json::from_str(start.cookies().get_private("appid_login").unwrap().value()).unwrap();
    assert_eq!(stored["return_to"], "/", "over the 2 048-byte cap");

    let (status, location) = finish_login(&app, &client, start, |_| {}).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(location.as_deref(), Some("/"));
    // (A 70 000-byte request target is refused by hyper with 414 before Rocket runs: B92.)
}

#[rocket::async_test]
async fn b9_the_callback_and_logout_are_never_a_destination() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;
    for hostile in
        ["/afterauth?code=x", "/afterauth", "/AfterAuth/", "/%61fterauth?code=x", "/logout", "/logout/"]
    {
        assert_eq!(return_to::safe_or_root(hostile), "/", "{hostile:?}");
        assert_eq!(location_after_login_with_stored(&app, &client, hostile).await, "/", "{hostile:?}");
    }
}

#[rocket::async_test]
async fn b12_an_anonymous_head_request_gets_the_same_decision_as_get_with_an_empty_body() {
    let app = spawn_app().await;
    let client = cookieless_client(&app).await;

    let head = client.head("/auth_route?x=1").header(Header::new("Accept", "text/html")).dispatch().await;
    assert_eq!(head.status(), Status::SeeOther, "a browser HEAD starts a login like GET");
    assert!(location(&head).starts_with(&format!("{}/authorization?", app.idp.oauth_server_url)));
    assert!(head.cookies().get("appid_session").is_none());
    let stored: Value =
        serde_json::from_str(head.cookies().get_private("appid_login").unwrap().value()).unwrap();
    assert_eq!(stored["return_to"], "/auth_route?x=1");
    assert!(head.into_bytes().await.unwrap_or_default().is_empty());

    let head = client.head("/auth_route").header(Header::new("Accept", "application/json")).dispatch().await;
    assert_eq!(head.status(), Status::Unauthorized, "an API HEAD gets 401 like GET");
    assert!(head.headers().get_one("Location").is_none());
    assert!(head.cookies().get("appid_login").is_none());
    assert!(head.into_bytes().await.unwrap_or_default().is_empty());
    assert_eq!(app.idp.emulator.calls(appid_emulator::Endpoint::Token), 0);
}
