//! The embedded App ID emulator for `cargo run`: an ignite fairing that runs before the
//! App ID configuration is read, starts the development identity provider when no
//! `oAuthServerUrl` is configured and the `appid.emulator` switch is on, and merges its
//! URLs and credentials into the configuration as if an operator had set them.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::figment::providers::Serialized;
use rocket::{Build, Rocket};
use serde::Deserialize;

use super::EmulatorInUse;

/// Starts the embedded emulator when asked (see the module docs).
#[derive(Debug, Default)]
pub struct EmbeddedEmulator;

/// The settings this fairing reads (a subset of `appid`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct EmulatorSettings {
    emulator: bool,
    emulator_port: u16,
    oauth_server_url: Option<String>,
    redirect_uri: Option<String>,
}

#[rocket::async_trait]
impl Fairing for EmbeddedEmulator {
    fn info(&self) -> Info {
        Info { name: "Embedded App ID emulator", kind: Kind::Ignite }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        // Malformed settings are reported by the App ID configuration that follows.
        let settings: EmulatorSettings = rocket.figment().extract_inner("appid").unwrap_or_default();
        if !settings.emulator || settings.oauth_server_url.as_deref().is_some_and(|u| !u.trim().is_empty()) {
            return Ok(rocket);
        }
        let figment = rocket.figment();
        let profile = figment.profile().to_string();
        let port: u16 = figment.extract_inner("port").unwrap_or(8000);
        let address: std::net::IpAddr =
            figment.extract_inner("address").unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let host = if address.is_unspecified() || address.is_loopback() {
            "127.0.0.1".to_string()
        } else {
            address.to_string()
        };
        let redirect_uri = settings.redirect_uri.unwrap_or_else(|| format!("http://{host}:{port}/afterauth"));
        if profile != "debug" {
            tracing::warn!("!!! APPID_EMULATOR is on in the `{profile}` profile: the development identity provider will sign users in. Never do this in production. !!!");
        }
        // The signed-out page is the default return address after the provider's SSO
        // logout; a real tenant lists it among its logout redirect URIs, so the emulator does too.
        let signed_out = url::Url::parse(&redirect_uri)
            .map(|url| format!("{}/signed_out", url.origin().ascii_serialization()))
            .unwrap_or_else(|_| format!("http://{host}:{port}/signed_out"));
        let config = appid_emulator::EmulatorConfig {
            redirect_uris: vec![redirect_uri.clone()],
            logout_redirect_uris: vec![signed_out],
            // Refresh tokens on, unlike App ID's default token configuration: in
            // development the silent renewal path then runs like on a tenant that enables them.
            refresh_tokens: true,
            port: settings.emulator_port,
            ..appid_emulator::EmulatorConfig::default()
        };
        let running = match appid_emulator::spawn(config).await {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(
                    "App ID configuration: APPID_OAUTH_SERVER_URL is not set and the embedded emulator could not start ({e})"
                );
                return Err(rocket);
            }
        };
        let emulator = running.emulator.config();
        let figment = figment.clone().merge(Serialized::global(
            "appid",
            serde_json::json!({
                "oauth_server_url": running.oauth_server_url,
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
                "ibm_cloud_apikey": emulator.api_key,
                "iam_url": running.iam_token_url,
                "redirect_uri": redirect_uri,
            }),
        ));
        let in_use = EmulatorInUse { base_url: running.base_url.clone() };
        Ok(rocket.configure(figment).manage(in_use))
    }
}
