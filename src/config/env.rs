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
        .merge(Env::prefixed("APPID_").map(|key| format!("appid.{key}").into()))
        .merge(Env::raw().only(&FLASK_NAMES.iter().map(|(env, _)| *env).collect::<Vec<_>>()).map(|key| {
            FLASK_NAMES
                .iter()
                .find(|(env, _)| key.as_str().eq_ignore_ascii_case(env))
                .map(|(_, target)| (*target).into())
                .unwrap_or_else(|| key.into())
        }));
    // Code Engine injects PORT; Rocket only knows ROCKET_PORT. A PORT that is set
    // but not a number is left for Rocket to reject with its own clear message.
    if let Some(port) = Env::var("PORT") {
        figment = figment.merge(Serialized::default("port", port.trim().to_string()));
    }
    figment
}
