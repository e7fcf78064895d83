//! Where settings come from: Rocket.toml profiles, `ROCKET_*` variables, and the
//! environment variable names of the Flask pattern (so its deployments keep working).

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::Figment;

/// The Flask pattern's variable names and the `appid` keys they set.
const FLASK_NAMES: &[(&str, &str)] = &[
    ("SESSION_SECRET_KEY", "appid.session_secret_key"),
    ("IBM_CLOUD_APIKEY", "appid.ibm_cloud_apikey"),
    ("IBM_CLOUD_IAM_URL", "appid.iam_url"),
];

/// Rocket's default figment plus our environment variables:
/// `APPID_*` → `appid.*` (e.g. `APPID_CLIENT_ID` → `appid.client_id`),
/// `SESSION_SECRET_KEY`, `IBM_CLOUD_APIKEY`, `IBM_CLOUD_IAM_URL`, and `PORT` (Code Engine).
pub fn figment() -> Figment {
    let mut figment = rocket::Config::figment()
        // `.global()`: a variable must win over every profile's Rocket.toml value, e.g.
        // APPID_EMULATOR over `[release.appid] emulator = false`.
        .merge(Env::prefixed("APPID_").map(|key| format!("appid.{key}").into()).global())
        .merge(Env::raw().only(&FLASK_NAMES.iter().map(|(env, _)| *env).collect::<Vec<_>>()).map(|key| {
            FLASK_NAMES
                .iter()
                .find(|(env, _)| key.as_str().eq_ignore_ascii_case(env))
                .map(|(_, target)| (*target).into())
                .unwrap_or_else(|| key.into())
        }));
    // Code Engine injects PORT; Rocket only knows ROCKET_PORT. It wins over every profile.
    // A PORT that is not a number is passed on as text for Rocket to reject by name.
    if let Some(port) = Env::var("PORT") {
        figment = match port.trim().parse::<u16>() {
            Ok(number) => figment.merge(Serialized::global("port", number)),
            Err(_) => figment.merge(Serialized::global("port", port)),
        };
    }
    figment
}
