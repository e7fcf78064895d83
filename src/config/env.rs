//! Where settings come from: Rocket.toml profiles, `ROCKET_*` variables, and the
//! environment variable names of the Flask pattern (so its deployments keep working).

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::Figment;

/// The Flask pattern's variable names and the `appid` keys they set.
const FLASK_NAMES: &[(&str, &str)] = &[
    ("SESSION_SECRET_KEY", "appid.session_secret_key"),
    ("SESSION_SECRET_KEY_PREVIOUS", "appid.previous_session_secret_key"),
    ("IBM_CLOUD_APIKEY", "appid.ibm_cloud_apikey"),
    ("IBM_CLOUD_IAM_URL", "appid.iam_url"),
];

/// Settings that are text whatever they look like, with the variables that set them.
/// Figment's `Env` parses values, so a secret that happens to read `12345`, `true` or `[x]`
/// would become a number, a bool or an array, fail to deserialize as text, and figment's
/// error message would quote it (security.md R-E1, R-E6). These are re-read as plain strings.
const TEXT_SETTINGS: &[(&str, &str)] = &[
    ("APPID_CLIENT_ID", "client_id"),
    ("APPID_CLIENT_SECRET", "client_secret"),
    ("APPID_OAUTH_SERVER_URL", "oauth_server_url"),
    ("APPID_REDIRECT_URI", "redirect_uri"),
    ("APPID_MANAGEMENT_URL", "management_url"),
    ("APPID_METRICS_TOKEN", "metrics_token"),
    ("APPID_SESSION_SECRET_KEY", "session_secret_key"),
    ("APPID_PREVIOUS_SESSION_SECRET_KEY", "previous_session_secret_key"),
    ("APPID_IBM_CLOUD_APIKEY", "ibm_cloud_apikey"),
    ("APPID_IAM_URL", "iam_url"),
    ("APPID_ROLES_CLAIM", "roles_claim"),
    ("APPID_TRUSTED_AUDIENCES", "trusted_audiences"),
    ("APPID_SCOPES", "scopes"),
    ("SESSION_SECRET_KEY", "session_secret_key"),
    ("SESSION_SECRET_KEY_PREVIOUS", "previous_session_secret_key"),
    ("IBM_CLOUD_APIKEY", "ibm_cloud_apikey"),
    ("IBM_CLOUD_IAM_URL", "iam_url"),
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
    // In the same order as above, so the same variable wins when two name one setting.
    for (variable, key) in TEXT_SETTINGS {
        if let Some(value) = Env::var(variable) {
            figment = figment.merge(Serialized::global(&format!("appid.{key}"), value));
        }
    }
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

/// The environment variables that set `appid.{key}`, in the order `figment()` merges them
/// (the last one set wins): `APPID_{KEY}`, then the Flask pattern's name, if any.
pub fn variables_for(key: &str) -> Vec<String> {
    let mut names = vec![format!("APPID_{}", key.to_ascii_uppercase())];
    let target = format!("appid.{key}");
    let flask = FLASK_NAMES.iter().filter(|(_, t)| *t == target).map(|(env, _)| *env);
    let text = TEXT_SETTINGS.iter().filter(|(_, k)| *k == key).map(|(env, _)| *env);
    for name in flask.chain(text) {
        names.retain(|n| n != name);
        names.push(name.to_string());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::variables_for;

    #[test]
    fn the_flask_name_of_a_setting_wins_over_its_appid_name() {
        assert_eq!(variables_for("client_id"), ["APPID_CLIENT_ID"]);
        assert_eq!(variables_for("session_secret_key"), ["APPID_SESSION_SECRET_KEY", "SESSION_SECRET_KEY"]);
        assert_eq!(variables_for("iam_url"), ["APPID_IAM_URL", "IBM_CLOUD_IAM_URL"]);
    }
}
