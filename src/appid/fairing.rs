//! The fairing that turns configuration into a ready [`AppId`] at ignite: it reads the
//! `appid` settings, derives the session key, starts the embedded emulator when asked,
//! and refuses to launch with a list of every problem.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::figment::providers::Serialized;
use rocket::{Build, Orbit, Rocket};

use super::AppId;
use crate::config::{derive_secret_key, validate, ConfigProblems, RawSettings};

/// Loads and validates App ID configuration at ignite and manages an [`AppId`].
#[derive(Debug, Default)]
pub struct AppIdFairing;

/// Marks that the embedded development identity provider serves this app.
#[derive(Debug, Clone)]
pub struct EmulatorInUse {
    /// Where it listens.
    pub base_url: String,
}

/// The example `secret_key` printed in Rocket's documentation: public, so never a key.
const PUBLISHED_EXAMPLE_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";

const PUBLISHED_KEY_PROBLEM: &str =
    "is a published example key (generate your own with `openssl rand -base64 64`)";

fn is_published_example_key(key: &[u8]) -> bool {
    STANDARD.decode(PUBLISHED_EXAMPLE_KEY).is_ok_and(|example| example == key) || key.iter().all(|b| *b == 0)
}

/// 8 hex digits derived from the session key (HKDF-SHA256 with a fixed label), to compare
/// instances' keys in their logs without showing the key.
fn key_fingerprint(key: &[u8]) -> String {
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"rocket-appid key fingerprint"), key);
    let mut out = [0u8; 4];
    match hkdf.expand(b"fingerprint v1", &mut out) {
        Ok(()) => out.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => String::from("unknown"),
    }
}

#[rocket::async_trait]
impl Fairing for AppIdFairing {
    fn info(&self) -> Info {
        Info { name: "App ID configuration", kind: Kind::Ignite | Kind::Liftoff }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        let mut problems = ConfigProblems::default();
        let mut raw: RawSettings = match rocket.figment().extract_inner("appid") {
            Ok(raw) => raw,
            Err(e) if e.missing() => RawSettings::default(),
            Err(e) => {
                // figment's message quotes the value (`found string "…"`), which may be a
                // secret: name the variable and the expected type only (R-E6).
                let field = e.path.iter().map(String::as_str).find(|p| *p != "appid").unwrap_or("appid");
                let expected = match &e.kind {
                    rocket::figment::error::Kind::InvalidType(_, expected) => format!("must be {expected}"),
                    _ => "has a value of the wrong type".to_string(),
                };
                tracing::error!("App ID configuration: APPID_{} {expected}", field.to_ascii_uppercase());
                return Err(rocket);
            }
        };
        let profile = rocket.figment().profile().to_string();
        let mut figment = rocket.figment().clone();

        // Only `cargo run` against the embedded development provider may go without a key
        // (a random one per process); anything talking to a real provider needs one (R-C8).
        let embedded_provider = raw.emulator && raw.oauth_server_url.is_none();
        let mut fingerprint = None;
        match raw.session_secret_key.as_deref().filter(|v| !v.trim().is_empty()) {
            Some(value) => match derive_secret_key(value) {
                Ok(key) if is_published_example_key(&key) => {
                    problems.push("SESSION_SECRET_KEY", PUBLISHED_KEY_PROBLEM)
                }
                Ok(key) => {
                    fingerprint = Some(key_fingerprint(&key));
                    // Global: SESSION_SECRET_KEY wins over any profile's `secret_key`.
                    figment = figment.merge(Serialized::global("secret_key", STANDARD.encode(key)));
                }
                Err(why) => problems.push("SESSION_SECRET_KEY", why.to_string()),
            },
            None if figment
                .extract_inner::<rocket::config::SecretKey>("secret_key")
                .is_ok_and(|key| key.is_provided()) =>
            {
                let text: String = figment.extract_inner("secret_key").unwrap_or_default();
                let bytes = STANDARD.decode(text.trim()).unwrap_or_else(|_| text.trim().as_bytes().to_vec());
                if is_published_example_key(&bytes) {
                    problems.push("ROCKET_SECRET_KEY", PUBLISHED_KEY_PROBLEM);
                } else {
                    fingerprint = Some(key_fingerprint(&bytes));
                }
            }
            None if profile == "debug" && embedded_provider => tracing::warn!(
                "SESSION_SECRET_KEY is not set: using a random key, so sessions end when the process stops"
            ),
            None => problems
                .push("SESSION_SECRET_KEY", "is missing (generate one with `openssl rand -base64 64`)"),
        }
        if let Some(fingerprint) = fingerprint {
            // Instances behind one load balancer must share the key (F8): their logs show
            // the same fingerprint. It reveals nothing usable about the key.
            tracing::info!(event = "session_key", fingerprint = %fingerprint);
        }

        let emulator = if embedded_provider {
            match start_emulator(&rocket, &mut raw, &profile).await {
                Ok(emulator) => Some(emulator),
                Err(why) => {
                    problems.push("APPID_OAUTH_SERVER_URL", why);
                    None
                }
            }
        } else {
            None
        };

        let config = validate(&raw);
        let config = match config {
            Ok(config) if problems.0.is_empty() => config,
            Ok(_) => {
                tracing::error!("{problems}");
                return Err(rocket);
            }
            Err(mut more) => {
                problems.0.append(&mut more.0);
                tracing::error!("{problems}");
                return Err(rocket);
            }
        };
        let appid = match AppId::new(config) {
            Ok(appid) => appid,
            Err(_) => {
                tracing::error!("the HTTP client for App ID could not be built (TLS setup failed)");
                return Err(rocket);
            }
        };
        let csrf_key = crate::auth::logout::CsrfKey::from_figment(&figment);
        let rocket = rocket.configure(figment).manage(appid).manage(csrf_key);
        Ok(match emulator {
            Some(emulator) => rocket.manage(emulator),
            None => rocket,
        })
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let config = rocket.config();
        if let Some(appid) = rocket.state::<AppId>() {
            let origin = appid.config().redirect_uri.origin().ascii_serialization();
            tracing::info!(
                event = "launched",
                "rocket-appid is listening on {}:{}; open {origin}/ in a browser",
                config.address,
                config.port
            );
        }
        if let Some(emulator) = rocket.state::<EmulatorInUse>() {
            tracing::warn!(
                event = "emulator_in_use",
                "signing in through the DEVELOPMENT identity provider at {} (not App ID; never use this in production)",
                emulator.base_url
            );
        }
        // Fetch provider metadata and keys in the background, now and then every hour, so
        // no request waits for them; launch never does either. While the provider cannot
        // be reached, retry with exponential backoff (1 s, 2 s, 4 s … at most 60 s, plus
        // jitter so a fleet restarted together does not retry in step).
        if let Some(appid) = rocket.state::<AppId>() {
            let appid = appid.clone();
            let mut shutdown = rocket.shutdown();
            rocket::tokio::spawn(async move {
                let mut failures: u32 = 0;
                loop {
                    let next = match appid.refresh_keys().await {
                        Ok(keys) => {
                            tracing::info!(event = "provider_keys_loaded", keys);
                            failures = 0;
                            super::JWKS_REFRESH_INTERVAL
                        }
                        Err(error) => {
                            let delay = refresh_backoff(failures);
                            failures = failures.saturating_add(1);
                            tracing::warn!(
                                event = "provider_not_ready",
                                %error,
                                retry_in_ms = delay.as_millis() as u64
                            );
                            delay
                        }
                    };
                    rocket::tokio::select! {
                        _ = rocket::tokio::time::sleep(next) => {}
                        _ = &mut shutdown => break,
                    }
                }
            });
        }
    }
}

/// The pause before background retry number `failures + 1` of discovery and keys.
fn refresh_backoff(failures: u32) -> std::time::Duration {
    use rand::Rng;
    let base = 1u64 << failures.min(6);
    let jitter = rand::thread_rng().gen_range(0..250);
    std::time::Duration::from_secs(base.min(60)) + std::time::Duration::from_millis(jitter)
}

#[cfg(feature = "emulator")]
async fn start_emulator(
    rocket: &Rocket<Build>,
    raw: &mut RawSettings,
    profile: &str,
) -> Result<EmulatorInUse, String> {
    let figment = rocket.figment();
    let port: u16 = figment.extract_inner("port").unwrap_or(8000);
    let address: std::net::IpAddr =
        figment.extract_inner("address").unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let host = if address.is_unspecified() || address.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        address.to_string()
    };
    let redirect_uri = raw.redirect_uri.clone().unwrap_or_else(|| format!("http://{host}:{port}/afterauth"));
    if profile != "debug" {
        tracing::warn!("!!! APPID_EMULATOR is on in the `{profile}` profile: the development identity provider will sign users in. Never do this in production. !!!");
    }
    // The signed-out page is the default return address after the provider's SSO logout;
    // a real tenant lists it among its logout redirect URIs, so the emulator does too.
    let signed_out = url::Url::parse(&redirect_uri)
        .map(|url| format!("{}/signed_out", url.origin().ascii_serialization()))
        .unwrap_or_else(|_| format!("http://{host}:{port}/signed_out"));
    let config = appid_emulator::EmulatorConfig {
        redirect_uris: vec![redirect_uri.clone()],
        logout_redirect_uris: vec![signed_out],
        // Refresh tokens on, unlike App ID's default token configuration: in development
        // the silent renewal path then runs like on a tenant that enables them.
        refresh_tokens: true,
        port: raw.emulator_port,
        ..appid_emulator::EmulatorConfig::default()
    };
    let running = appid_emulator::spawn(config)
        .await
        .map_err(|e| format!("is not set and the embedded emulator could not start ({e})"))?;
    let settings = running.emulator.config();
    raw.oauth_server_url = Some(running.oauth_server_url.clone());
    raw.client_id = Some(settings.client_id.clone());
    raw.client_secret = Some(settings.client_secret.clone());
    raw.ibm_cloud_apikey = Some(settings.api_key.clone());
    raw.iam_url = Some(running.iam_token_url.clone());
    raw.redirect_uri = Some(redirect_uri);
    Ok(EmulatorInUse { base_url: running.base_url.clone() })
}

#[cfg(not(feature = "emulator"))]
async fn start_emulator(_: &Rocket<Build>, _: &mut RawSettings, _: &str) -> Result<EmulatorInUse, String> {
    Err("is missing (this build has no embedded emulator)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn background_retries_back_off_exponentially_up_to_a_minute() {
        assert!(refresh_backoff(0) >= Duration::from_secs(1) && refresh_backoff(0) < Duration::from_secs(2));
        assert!(refresh_backoff(2) >= Duration::from_secs(4));
        assert!(refresh_backoff(30) <= Duration::from_millis(60_250));
    }
}
