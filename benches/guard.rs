//! Micro-benchmarks of the guard's hot path: what a protected request costs on top of an
//! unprotected one (session cookie decrypt + cached token check + introspection policy +
//! cached roles), and an uncached RS256 verification for comparison.
//!
//! Run: `cargo bench --bench guard` (figures in docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use appid_emulator::{EmulatorConfig, RunningEmulator};
use criterion::{criterion_group, criterion_main, Criterion};
use rocket::figment::providers::Serialized;
use rocket::http::{Cookie, Header};
use rocket::local::blocking::Client;
use rocket_appid::AuthorizedUser;
use serde_json::json;

#[rocket::get("/bench/guarded")]
fn guarded(_user: AuthorizedUser) -> &'static str {
    "ok"
}

#[rocket::get("/bench/plain")]
fn plain() -> &'static str {
    "ok"
}

/// The app (introspection `never`) against an emulator, with the bench routes mounted,
/// and a logged-in session cookie.
fn app_with_session(runtime: &tokio::runtime::Runtime) -> (Client, Cookie<'static>, RunningEmulator) {
    let idp = runtime.block_on(appid_emulator::spawn(EmulatorConfig::default())).unwrap();
    let settings = idp.emulator.config();
    let figment = rocket::Config::figment().merge(Serialized::global(
        "appid",
        json!({
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "oauth_server_url": idp.oauth_server_url,
            "redirect_uri": "http://127.0.0.1:8000/afterauth",
            "ibm_cloud_apikey": settings.api_key,
            "iam_url": idp.iam_token_url,
            "session_secret_key": "a benchmark passphrase that is long enough to be stretched",
            "introspection": "never",
        }),
    ));
    let rocket = rocket_appid::build(figment).mount("/", rocket::routes![guarded, plain]);
    let client = Client::tracked(rocket).unwrap();

    // Log alice in through the emulator, as a browser would.
    let authorization = {
        let login = client.get("/auth_route").header(Header::new("Accept", "text/html")).dispatch();
        url::Url::parse(login.headers().get_one("Location").unwrap()).unwrap()
    };
    let mut form: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
    form.push(("login_hint".into(), "alice@example.com".into()));
    let mut action = authorization.clone();
    action.set_query(None);
    let callback = runtime.block_on(async {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let answer = http.post(action).form(&form).send().await.unwrap();
        url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap()
    });
    let status = client.get(format!("/afterauth?{}", callback.query().unwrap())).dispatch().status();
    assert_eq!(status.code, 303);
    let session = client.cookies().get_private("appid_session").unwrap().into_owned();
    // Warm the caches.
    assert_eq!(client.get("/bench/guarded").dispatch().status().code, 200);
    (client, session, idp)
}

fn guard_hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (client, session, _idp) = app_with_session(&runtime);
    let mut group = c.benchmark_group("request");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("plain route (no guard)", |b| {
        b.iter(|| client.get("/bench/plain").private_cookie(session.clone()).dispatch().into_string())
    });
    group.bench_function("guarded route (AuthorizedUser)", |b| {
        b.iter(|| client.get("/bench/guarded").private_cookie(session.clone()).dispatch().into_string())
    });
    group.finish();
}

fn rs256_verification(c: &mut Criterion) {
    let key = appid_emulator::jwt::SigningKey::generate("tenant").unwrap();
    let keys = rocket_appid::appid::jwks::KeySet::parse(json!({ "keys": [key.jwk()] })).unwrap();
    let now = 1_900_000_000;
    let token = key.sign_claims(&json!({
        "iss": "https://example.com/oauth/v4/tenant", "aud": ["client"], "sub": "user-1",
        "tenant": "tenant", "exp": now + 3600, "iat": now, "scope": "openid"
    }));
    let expected = rocket_appid::appid::verify::Expected {
        issuer: "https://example.com/oauth/v4/tenant",
        client_id: "client",
        tenant: "tenant",
        leeway_secs: 60,
        now,
    };
    c.bench_function("uncached RS256 access-token verification", |b| {
        b.iter(|| rocket_appid::appid::verify::verify_access_token(&token, &keys, &expected).unwrap())
    });
}

criterion_group!(benches, guard_hot_path, rs256_verification);
criterion_main!(benches);
