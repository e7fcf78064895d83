//! Helpers shared by the integration tests: an HTTP client, the browser part of the code
//! flow, and JWT verification against the published JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use appid_emulator::{spawn, EmulatorConfig, RunningEmulator};
use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

pub const REDIRECT: &str = "http://127.0.0.1:8000/afterauth";

/// A client that never follows redirects, like the tests of a real RP.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub async fn start() -> RunningEmulator {
    spawn(EmulatorConfig::default()).await.unwrap()
}

pub async fn start_with(config: EmulatorConfig) -> RunningEmulator {
    spawn(config).await.unwrap()
}

pub fn basic(emu: &RunningEmulator) -> String {
    let cfg = emu.emulator.config();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", cfg.client_id, cfg.client_secret)))
}

/// Authorization parameters for the default client and redirect URI.
pub fn auth_params(emu: &RunningEmulator) -> Vec<(String, String)> {
    vec![
        ("client_id".into(), emu.emulator.config().client_id.clone()),
        ("response_type".into(), "code".into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("scope".into(), "openid".into()),
        ("state".into(), "st4te".into()),
        ("nonce".into(), "n0nce".into()),
    ]
}

/// Loads the login page, then submits it for `email`; returns the redirect Location.
pub async fn login_location(emu: &RunningEmulator, params: &[(String, String)], email: &str) -> String {
    let c = client();
    let url = format!("{}/authorization", emu.oauth_server_url);
    let page = c.get(with_params(&url, params)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form = params.to_vec();
    form.push(("login_hint".into(), email.into()));
    let resp = c.post(&url).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// Runs the browser part of the flow and returns the authorization code.
pub async fn login_code(emu: &RunningEmulator, params: &[(String, String)], email: &str) -> String {
    let location = login_location(emu, params, email).await;
    let url = url::Url::parse(&location).unwrap();
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("code in redirect")
}

/// Posts a form to the token endpoint with Basic client auth.
pub async fn token_form(emu: &RunningEmulator, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}/token", emu.oauth_server_url))
        .header("Authorization", basic(emu))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// GET a JSON document from the emulator.
pub async fn get_json(url: impl reqwest::IntoUrl) -> Value {
    client().get(url).send().await.unwrap().json().await.unwrap()
}

/// Verifies an RS256 JWT against the emulator's JWKS and returns (header, claims).
pub async fn verify(emu: &RunningEmulator, token: &str) -> (Value, Value) {
    let jwks: Value = get_json(format!("{}/publickeys", emu.oauth_server_url)).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid published in JWKS");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("valid RS256 signature");
    (header, claims)
}

/// Unix time now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `url` with `params` appended as a query string (reqwest's `query` needs an extra feature).
pub fn with_params(url: &str, params: &[(String, String)]) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.query_pairs_mut().extend_pairs(params.iter());
    u.to_string()
}
