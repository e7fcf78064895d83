//! The session store's settings (keys of the `appid` table, `APPID_*` variables): which
//! backend holds the deny-list and the renewals. No `store_url`: the in-process backend,
//! right for a single instance. A URL: Redis, shared by every instance.

use std::sync::Arc;
use std::time::Duration;

use rocket::figment::Figment;
use serde::Deserialize;
use url::{Host, Url};

use crate::appid::SharedBudget;
use crate::auth::store::{DenyListOnError, Redis, RedisSettings, RedisSetupError, SessionStore};
use crate::config::{AppIdConfig, ConfigProblems};

/// The lock on a refresh token outlasts the token call by this much.
const LOCK_MARGIN: Duration = Duration::from_secs(2);

/// Text settings as the environment gives them: figment parses `APPID_STORE_NAMESPACE=2024`
/// as a number, which is still meant as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    String(String),
    Integer(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Text::String(text) => text,
            Text::Integer(n) => n.to_string(),
            Text::Unsigned(n) => n.to_string(),
            Text::Float(n) => n.to_string(),
            Text::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize, Default)]
struct Raw {
    store_url: Option<Text>,
    store_ca_file: Option<Text>,
    store_namespace: Option<Text>,
    deny_list_on_store_error: Option<Text>,
}

/// Which backend the settings ask for (the connection settings checked, nothing connected).
#[derive(Debug)]
pub enum StoreChoice {
    InProcess,
    Redis { url: String, ca_pem: Option<Vec<u8>>, namespace: Option<String>, on_error: DenyListOnError },
}

/// Reads and checks the store settings; every problem goes to `problems`, none quotes the
/// URL (it holds the password).
pub fn read(figment: &Figment, problems: &mut ConfigProblems) -> StoreChoice {
    let raw: Raw = match figment.extract_inner("appid") {
        Ok(raw) => raw,
        Err(error) if error.missing() => Raw::default(),
        Err(error) => {
            let name = match error.path.iter().map(String::as_str).find(|part| *part != "appid") {
                Some("store_url") => "APPID_STORE_URL",
                Some("store_ca_file") => "APPID_STORE_CA_FILE",
                Some("store_namespace") => "APPID_STORE_NAMESPACE",
                _ => "APPID_DENY_LIST_ON_STORE_ERROR",
            };
            problems.push(name, "must be text");
            return StoreChoice::InProcess;
        }
    };
    let text = |value: Option<Text>| value.map(Text::into_string).filter(|text| !text.trim().is_empty());
    let (url, ca_file) = (text(raw.store_url), text(raw.store_ca_file));
    let namespace = text(raw.store_namespace);
    let on_error = match text(raw.deny_list_on_store_error).map(|v| v.trim().to_ascii_lowercase()).as_deref()
    {
        None | Some("open") => DenyListOnError::Open,
        Some("closed") => DenyListOnError::Closed,
        Some(_) => {
            problems.push("APPID_DENY_LIST_ON_STORE_ERROR", "must be \"open\" or \"closed\"");
            DenyListOnError::Open
        }
    };
    let Some(url) = url else {
        if ca_file.is_some() {
            problems.push(
                "APPID_STORE_CA_FILE",
                "is set but APPID_STORE_URL is not (is the URL secret missing?)",
            );
        }
        return StoreChoice::InProcess;
    };
    let tls = check_url(url.trim(), problems);
    if let Some(namespace) = &namespace {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if namespace.len() > 64 || !namespace.chars().all(allowed) {
            problems.push("APPID_STORE_NAMESPACE", "must be 1 to 64 letters, digits, '-', '_' or '.'");
        }
    }
    let ca_pem = ca_file.and_then(|path| {
        if tls == Some(false) {
            problems.push("APPID_STORE_CA_FILE", "needs a rediss:// URL (the CA checks the TLS certificate)");
        }
        match std::fs::read(path.trim()) {
            Ok(pem) if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") => Some(pem),
            Ok(_) => {
                problems.push("APPID_STORE_CA_FILE", format!("{path} holds no PEM certificate"));
                None
            }
            Err(error) => {
                problems.push("APPID_STORE_CA_FILE", format!("{path} cannot be read ({})", error.kind()));
                None
            }
        }
    });
    StoreChoice::Redis { url: url.trim().to_string(), ca_pem, namespace, on_error }
}

/// Checks the store URL; `Some(true)` for TLS, `Some(false)` for plain loopback, `None`
/// when it was refused.
fn check_url(url: &str, problems: &mut ConfigProblems) -> Option<bool> {
    const NAME: &str = "APPID_STORE_URL";
    let Ok(parsed) = Url::parse(url) else {
        problems.push(NAME, "is not a URL (expected rediss://user:password@host:port/0)");
        return None;
    };
    if parsed.fragment().is_some() {
        // The client reads `#insecure` as "do not check the certificate".
        problems.push(NAME, "must not have a #fragment (certificate checks cannot be turned off)");
        return None;
    }
    let loopback = match parsed.host() {
        // `redis` is not a scheme the URL standard knows, so an IPv4 host stays a "domain".
        Some(Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain.parse::<std::net::Ipv4Addr>().is_ok_and(|address| address.is_loopback())
        }
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => {
            problems.push(NAME, "names no host");
            return None;
        }
    };
    match parsed.scheme() {
        "rediss" => Some(true),
        "redis" if loopback => Some(false),
        "redis" => {
            problems.push(NAME, "uses redis:// (no TLS) to another machine: use rediss://");
            None
        }
        _ => {
            problems.push(NAME, "must start with rediss:// (or redis:// for this machine)");
            None
        }
    }
}

/// The session store `choice` asks for, with the renewal timing of `config`, and the
/// token-endpoint budget shared through it (Redis only).
pub fn build(
    choice: StoreChoice,
    config: &AppIdConfig,
    metrics: &crate::metrics::Metrics,
) -> Result<(SessionStore, Option<Arc<dyn SharedBudget>>), RedisSetupError> {
    let StoreChoice::Redis { url, ca_pem, namespace, on_error } = choice else {
        tracing::info!(event = "session_store", backend = "in_process");
        return Ok((SessionStore::in_process(config), None));
    };
    let settings = RedisSettings {
        url,
        ca_pem,
        namespace,
        grace: Duration::from_secs(config.refresh_grace_secs),
        lock_ttl: config.timeouts.token.saturating_add(LOCK_MARGIN),
        deny_list_on_error: on_error,
    };
    tracing::info!(
        event = "session_store",
        backend = "redis",
        namespace = settings.namespace.as_deref().unwrap_or(""),
        deny_list_on_store_error = ?settings.deny_list_on_error,
    );
    let redis = Redis::new_counted(settings, Some(metrics.clone()))?;
    let budget: Arc<dyn SharedBudget> = Arc::new(redis.clone());
    Ok((SessionStore::with_backend(redis), Some(budget)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::figment::providers::Serialized;

    fn read_with(settings: serde_json::Value) -> (StoreChoice, Vec<String>) {
        let figment = Figment::new().merge(Serialized::defaults(serde_json::json!({ "appid": settings })));
        let mut problems = ConfigProblems::default();
        let choice = read(&figment, &mut problems);
        (choice, problems.0.iter().map(|p| format!("{p:?}")).collect())
    }

    #[test]
    fn no_url_is_the_in_process_store() {
        let (choice, problems) = read_with(serde_json::json!({}));
        assert!(matches!(choice, StoreChoice::InProcess) && problems.is_empty());
    }

    #[test]
    fn tls_urls_and_plain_loopback_urls_are_accepted() {
        for url in
            ["rediss://app:pw@redis.example.com:32371/0", "redis://127.0.0.1:6390", "redis://localhost"]
        {
            let (choice, problems) =
                read_with(serde_json::json!({ "store_url": url, "store_namespace": 2024 }));
            assert!(problems.is_empty(), "{url}: {problems:?}");
            match choice {
                StoreChoice::Redis { namespace, on_error, .. } => {
                    assert_eq!((namespace.as_deref(), on_error), (Some("2024"), DenyListOnError::Open))
                }
                StoreChoice::InProcess => panic!("{url}"),
            }
        }
    }

    #[test]
    fn plain_remote_urls_insecure_fragments_and_junk_are_refused_without_quoting_the_url() {
        for url in [
            "redis://app:s3cret@redis.example.com:6379",
            "rediss://app:s3cret@redis.example.com:6379/#insecure",
            "http://app:s3cret@redis.example.com",
            "app:s3cret",
        ] {
            let (_, problems) = read_with(serde_json::json!({ "store_url": url }));
            assert_eq!(problems.len(), 1, "{url}: {problems:?}");
            assert!(
                problems[0].contains("APPID_STORE_URL") && !problems[0].contains("s3cret"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn the_other_settings_are_checked() {
        let (choice, problems) = read_with(serde_json::json!({
            "store_url": "rediss://redis.example.com", "deny_list_on_store_error": "Closed",
        }));
        assert!(problems.is_empty());
        assert!(matches!(choice, StoreChoice::Redis { on_error: DenyListOnError::Closed, .. }));
        let (_, problems) = read_with(serde_json::json!({
            "store_url": "rediss://redis.example.com", "deny_list_on_store_error": "maybe",
            "store_namespace": "a b", "store_ca_file": "/nonexistent/ca.pem",
        }));
        assert_eq!(problems.len(), 3, "{problems:?}");
        let (_, problems) = read_with(serde_json::json!({ "store_ca_file": "/nonexistent/ca.pem" }));
        assert_eq!(problems.len(), 1, "a CA without a URL: {problems:?}");
    }
}
