//! Shared setup of the benches: the app against an emulator, bench routes, a session.
#![allow(dead_code)]

use appid_emulator::{EmulatorConfig, RunningEmulator};
use rocket::figment::providers::Serialized;
use rocket::http::{Cookie, Header};
use rocket::local::blocking::Client;
use rocket_appid::AuthorizedUser;
use serde_json::json;

#[rocket::get("/bench/guarded")]
fn guarded(_user: &AuthorizedUser) -> &'static str {
    "ok"
}

#[rocket::get("/bench/plain")]
fn plain() -> &'static str {
    "ok"
}

/// The app (introspection `never`) against an emulator, with the bench routes mounted,
/// and a logged-in session cookie (sealed, as a browser sends it).
pub fn app_with_session(runtime: &tokio::runtime::Runtime) -> (Client, Cookie<'static>, RunningEmulator) {
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
    // The cookie as the browser holds it (sealed), so a benchmarked request costs what the
    // server does: `private_cookie` would encrypt it again on the client for every request
    // (about 45k instructions, measured with callgrind), inflating both sides of a comparison.
    let session = client.cookies().get("appid_session").unwrap().clone().into_owned();
    // Warm the caches.
    assert_eq!(client.get("/bench/guarded").dispatch().status().code, 200);
    (client, session, idp)
}
