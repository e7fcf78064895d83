//! The effective configuration of the active profile, each value with where it came from:
//! a `Rocket.toml` profile table, an environment variable, or the built-in default.
//! Secrets are shown as set or unset only.

use rocket::figment::{Figment, Profile, Provider, Source};
use serde_json::Value;

use crate::config::{variables_for, RawSettings};

/// Settings whose values are never printed.
const SECRETS: &[&str] = &[
    "client_secret",
    "ibm_cloud_apikey",
    "session_secret_key",
    "previous_session_secret_key",
    "metrics_token",
    // A Redis URL carries its password.
    "store_url",
];

/// Prints every `appid` setting: those the app knows with their defaults, and any other
/// key the configuration sets (read elsewhere, e.g. the session store's, or misspelt).
pub(super) fn print(figment: &Figment, raw: &RawSettings) {
    println!("Effective configuration (profile \"{}\"):", figment.profile());
    let mut settings = match serde_json::to_value(raw) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Ok(Value::Object(set)) = figment.extract_inner::<Value>("appid") {
        for (key, value) in set {
            settings.entry(key).or_insert(value);
        }
    }
    let known: Vec<String> = match serde_json::to_value(RawSettings::default()) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    for (key, value) in &settings {
        // A key this version does not know may still hold a secret (a misspelt name, a
        // newer setting): by its name, it is treated as one.
        let unknown_secret = !known.contains(key)
            && ["secret", "password", "apikey", "token", "key"].iter().any(|word| key.contains(word));
        let shown = if SECRETS.contains(&key.as_str()) || unknown_secret {
            if is_unset(value) { "unset" } else { "set" }.to_string()
        } else {
            display(value)
        };
        println!("  appid.{key:<30} = {shown:<40} ({})", source(figment, key));
    }
    println!();
}

fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::Null => "unset".to_string(),
        Value::String(s) => without_credentials(s),
        other => other.to_string(),
    }
}

/// A URL with a user or password (which validation refuses) is shown without them.
fn without_credentials(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            format!("{url} (credentials removed)")
        }
        _ => text.to_string(),
    }
}

/// The profile table a file value was read from: figment merges the active profile over
/// `default`, and `global` over both, so the first of those that holds the key. (A value's
/// tag names the profile it was merged into, not the table it was written in.)
fn file_table(figment: &Figment, key: &str) -> String {
    let data = figment.data().unwrap_or_default();
    let holds = |profile: &Profile| {
        data.get(profile)
            .and_then(|dict| dict.get("appid"))
            .and_then(|appid| appid.as_dict())
            .is_some_and(|appid| appid.contains_key(key))
    };
    [Profile::Global, figment.profile().clone(), Profile::Default]
        .into_iter()
        .find(holds)
        .map_or_else(|| "default".to_string(), |profile| profile.to_string())
}

/// Where `appid.{key}` came from. Figment tags each value with its provider and profile:
/// a value read from a file names the file and its table, anything else came from the
/// environment, by the variable that is set (the last of its names to be merged wins).
fn source(figment: &Figment, key: &str) -> String {
    let Ok(value) = figment.find_value(&format!("appid.{key}")) else {
        return "default".to_string();
    };
    let tag = value.tag();
    let metadata = figment.get_metadata(tag);
    if let Some(Source::File(path)) = metadata.and_then(|m| m.source.as_ref()) {
        let file =
            path.file_name().map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into());
        return format!("{file} [{}.appid]", file_table(figment, key));
    }
    let set = variables_for(key)
        .into_iter()
        .rev()
        .find(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    match (set, metadata) {
        (Some(name), _) => format!("environment variable {name}"),
        (None, Some(metadata)) => metadata.name.to_string(),
        (None, None) => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn credentials_in_a_url_are_never_shown() {
        let shown = without_credentials("https://user:s3cret@appid.example.com/oauth/v4/t");
        assert!(!shown.contains("s3cret") && !shown.contains("user"), "{shown}");
        assert_eq!(without_credentials("https://appid.example.com/x"), "https://appid.example.com/x");
        assert_eq!(without_credentials("auto"), "auto");
    }
}
