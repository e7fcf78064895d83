//! Micro-benchmarks of the guard's hot path: what a protected request costs on top of an
//! unprotected one (session cookie decrypt + cached token check + introspection policy +
//! cached roles), and an uncached RS256 verification for comparison.
//!
//! Run: `cargo bench --bench guard` (figures in docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

mod common;
use common::app_with_session;

fn guard_hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (client, session, _idp) = app_with_session(&runtime);
    let mut group = c.benchmark_group("request");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("plain route (no guard)", |b| {
        b.iter(|| client.get("/bench/plain").cookie(session.clone()).dispatch().into_string())
    });
    group.bench_function("guarded route (AuthorizedUser)", |b| {
        b.iter(|| client.get("/bench/guarded").cookie(session.clone()).dispatch().into_string())
    });
    // The two pages the load test compares (both with the session cookie, as wrk sends it).
    group.bench_function("open page /noauth_route", |b| {
        b.iter(|| client.get("/noauth_route").cookie(session.clone()).dispatch().into_string())
    });
    group.bench_function("protected page /auth_route", |b| {
        b.iter(|| client.get("/auth_route").cookie(session.clone()).dispatch().into_string())
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
        trusted_audiences: &[],
        tenant: "tenant",
        leeway_secs: 60,
        now,
    };
    c.bench_function("uncached RS256 access-token verification", |b| {
        b.iter(|| rocket_appid::appid::verify::verify_access_token(&token, &keys, &expected, None).unwrap())
    });
}

criterion_group!(benches, guard_hot_path, rs256_verification);
criterion_main!(benches);
