//! The emulator embedded in a host Rocket app, as the app's dev mode does it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use appid_emulator::{spawn, EmulatorConfig, RunningEmulator};
use rocket::fairing::AdHoc;
use rocket::local::asynchronous::Client;

#[rocket::get("/where")]
fn where_is_appid(emu: &rocket::State<RunningEmulator>) -> String {
    emu.oauth_server_url.clone()
}

#[rocket::async_test]
async fn an_emulator_spawned_in_a_host_ignite_fairing_serves_requests() {
    let host = rocket::build().mount("/", rocket::routes![where_is_appid]).attach(AdHoc::try_on_ignite(
        "emulator",
        |rocket| async move {
            match spawn(EmulatorConfig::default()).await {
                Ok(emu) => Ok(rocket.manage(emu)),
                Err(_) => Err(rocket),
            }
        },
    ));
    let client = Client::tracked(host).await.unwrap();
    let url = client.get("/where").dispatch().await.into_string().await.unwrap();
    assert!(url.starts_with("http://127.0.0.1:"));
    let discovery = reqwest::get(format!("{url}/.well-known/openid-configuration")).await.unwrap();
    assert_eq!(discovery.status(), 200);
}
