//! Roles from App ID's management API, authorized by an IAM token made from the API key.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::error::ProviderError;
use super::http::{Auth, Http};
use crate::config::{is_safe_segment, AppIdConfig};
use crate::secret::Secret;

/// Most roles we read for one user (App ID allows 50 per instance).
const MAX_ROLES: usize = 100;
/// An IAM token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// After IAM refused the API key (revoked, expired: 400/401), it is not asked again for
/// this long: every request would get the same answer, and each would log it (F10).
const AUTH_FAILURE_HOLD: Duration = Duration::from_secs(30);

/// The cached IAM token; one fetch at a time.
#[derive(Debug, Default)]
pub struct IamTokenCache {
    current: Mutex<Option<(Secret, Instant)>>,
    /// Until when an IAM refusal of the API key is repeated without asking, and its status.
    /// This and `last_logged` are plain copies that a panic cannot leave half-written, so
    /// their locks need no poisoning.
    refused: parking_lot::Mutex<Option<(Instant, u16)>>,
    /// Which configuration error was last logged, and when (each at most once per
    /// [`AUTH_FAILURE_HOLD`]).
    last_logged: parking_lot::Mutex<Option<(&'static str, Instant)>>,
    /// The configuration error the last management call showed (reason code), until a
    /// call succeeds: for `/ready`.
    problem: parking_lot::Mutex<Option<&'static str>>,
}

/// A management API answer that only the operator can fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misconfigured {
    /// IAM refused the API key, or the management API refused a fresh IAM token (401).
    ApiKey,
    /// A 404 that is not App ID's JSON answer: wrong region, tenant or path.
    NotFound,
    /// 403: the API key's identity lacks the Reader role on the App ID instance.
    Forbidden,
}

impl Misconfigured {
    /// The reason code in the log and in `/ready`.
    fn reason(self) -> &'static str {
        match self {
            Misconfigured::ApiKey => "mgmt_auth_failed",
            Misconfigured::NotFound => "mgmt_not_found",
            Misconfigured::Forbidden => "mgmt_forbidden",
        }
    }

    /// What the operator should do.
    fn fix(self) -> &'static str {
        match self {
            Misconfigured::ApiKey => {
                "IAM refused the API key or the management API refused its token: check IBM_CLOUD_APIKEY"
            }
            Misconfigured::NotFound => {
                "the management API answered a plain 404 (not App ID's JSON): the region, tenant or \
                 path is wrong; check APPID_MANAGEMENT_URL, or APPID_OAUTH_SERVER_URL it is derived from"
            }
            Misconfigured::Forbidden => {
                "the management API refused the API key's IAM token (403): give the identity of \
                 IBM_CLOUD_APIKEY the Reader service role on this App ID instance"
            }
        }
    }
}

#[derive(Deserialize)]
struct IamAnswer {
    access_token: String,
    expires_in: Option<u64>,
    expiration: Option<i64>,
}

/// `{"roles":[{"id","name"}]}`. App ID's API definition marks every member optional, so
/// it is read leniently: no `roles` is no role, and an entry without a name is skipped.
#[derive(Deserialize)]
struct RolesAnswer {
    #[serde(default)]
    roles: Option<Vec<serde_json::Value>>,
}

impl IamTokenCache {
    /// A valid IAM token: the cached one, or a new one when it is near expiry or `renew`.
    pub(super) async fn token(
        &self,
        http: &Http,
        config: &AppIdConfig,
        renew: bool,
    ) -> Result<Secret, ProviderError> {
        let mut current = self.current.lock().await;
        if let Some((token, renew_at)) = current.as_ref() {
            if !renew && Instant::now() < *renew_at {
                return Ok(token.clone());
            }
        }
        if let Some((until, status)) = *self.refused.lock() {
            if Instant::now() < until {
                return Err(ProviderError::Status { endpoint: "iam_token", status, error: None });
            }
        }
        // Validation requires both whenever the roles source uses the management API, the
        // only caller; without them there is nothing to ask IAM with.
        let (Some(api_key), Some(iam_url)) = (&config.api_key, &config.iam_url) else {
            return Err(ProviderError::Untrusted("management API not configured (roles source is token)"));
        };
        let form = [("grant_type", "urn:ibm:params:oauth:grant-type:apikey"), ("apikey", api_key.expose())];
        let answer: IamAnswer =
            match http.post_form("iam_token", iam_url.as_str(), Auth::None, &form, false).await {
                Ok(answer) => answer,
                Err(error @ ProviderError::Status { status: 400 | 401, .. }) => {
                    if let ProviderError::Status { status, .. } = &error {
                        *self.refused.lock() = Some((Instant::now() + AUTH_FAILURE_HOLD, *status));
                    }
                    self.misconfigured(Misconfigured::ApiKey);
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
        let lifetime = match (answer.expiration, answer.expires_in) {
            (Some(at), _) => Duration::from_secs(u64::try_from(at - crate::clock::now()).unwrap_or(0)),
            (None, Some(secs)) => Duration::from_secs(secs),
            (None, None) => Duration::from_secs(600),
        };
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        let token = Secret::new(answer.access_token);
        *current = Some((token.clone(), renew_at));
        Ok(token)
    }

    /// The names of the App ID roles of user `sub`. A 401 renews the IAM token and retries
    /// once; an unknown user (App ID's JSON 404) has no roles; any other 404 and a 403 are
    /// configuration errors (logged with the fix, and kept for `/ready`).
    pub async fn user_roles(
        &self,
        http: &Http,
        config: &AppIdConfig,
        management_url: &Url,
        sub: &str,
    ) -> Result<Vec<String>, ProviderError> {
        // The subject was checked when its token was verified; check again, it goes into a URL.
        if !is_safe_segment(sub) {
            return Err(ProviderError::Malformed { endpoint: "management_roles", what: "unsafe subject" });
        }
        let url = management_path(management_url, &["users", sub, "roles"])?;
        // App ID's JSON 404: a user it does not know has no roles.
        self.fetch_roles(http, config, &url).await?.map_or(Ok(Vec::new()), roles_of)
    }

    /// The names of the tenant's roles whose access includes application `client_id`
    /// (`GET {mgmt}/roles`, each role with `access: [{application_id, scopes}]`). App ID's
    /// roles are tenant-wide; this tells the ones meant for this application.
    pub async fn roles_of_application(
        &self,
        http: &Http,
        config: &AppIdConfig,
        management_url: &Url,
        client_id: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let url = management_path(management_url, &["roles"])?;
        match self.fetch_roles(http, config, &url).await? {
            Some(answer) => roles_for_application(answer, client_id),
            // The tenant's role list always exists: a 404, even App ID's JSON one, means
            // the URL is wrong.
            None => {
                self.misconfigured(Misconfigured::NotFound);
                Err(ProviderError::Status { endpoint: "management_roles", status: 404, error: None })
            }
        }
    }

    /// A roles answer of the management API at `url` (`None`: App ID's JSON 404). A 401
    /// renews the IAM token and retries once; any other 404 and a 403 are configuration
    /// errors (logged with the fix, and kept for `/ready`).
    async fn fetch_roles(
        &self,
        http: &Http,
        config: &AppIdConfig,
        url: &Url,
    ) -> Result<Option<RolesAnswer>, ProviderError> {
        let mut renew = false;
        loop {
            let token = self.token(http, config, renew).await?;
            let result: Result<Option<RolesAnswer>, _> = http
                .get_json_or_json_404("management_roles", url.as_str(), Auth::Bearer(token.expose()))
                .await;
            let misconfigured = match &result {
                Err(ProviderError::Status { status: 401, .. }) if !renew => {
                    renew = true;
                    continue;
                }
                Err(ProviderError::Status { status: 401, .. }) => Some(Misconfigured::ApiKey),
                Err(ProviderError::Status { status: 403, .. }) => Some(Misconfigured::Forbidden),
                Err(ProviderError::Status { status: 404, .. }) => Some(Misconfigured::NotFound),
                Ok(_) => {
                    *self.problem.lock() = None;
                    None
                }
                Err(_) => None,
            };
            if let Some(kind) = misconfigured {
                self.misconfigured(kind);
            }
            return result;
        }
    }

    /// The JSON of a management resource below `management_url` (`path` segments). A 401
    /// renews the IAM token and retries once, as for roles; any other refusal is returned.
    pub(super) async fn get_json(
        &self,
        http: &Http,
        config: &AppIdConfig,
        management_url: &Url,
        endpoint: &'static str,
        path: &[&str],
    ) -> Result<serde_json::Value, ProviderError> {
        let mut url = management_url.clone();
        url.path_segments_mut()
            .map_err(|_| ProviderError::Untrusted("management URL cannot take a path"))?
            .pop_if_empty()
            .extend(path);
        let mut renew = false;
        loop {
            let token = self.token(http, config, renew).await?;
            match http.get_json(endpoint, url.as_str(), Auth::Bearer(token.expose())).await {
                Err(ProviderError::Status { status: 401, .. }) if !renew => renew = true,
                result => return result,
            }
        }
    }

    /// The configuration error the last management call showed (its reason code), if no
    /// call has succeeded since.
    pub fn problem(&self) -> Option<&'static str> {
        *self.problem.lock()
    }

    /// Records and logs that the management API cannot be used as configured: an operator
    /// must act. Each kind is logged once per [`AUTH_FAILURE_HOLD`], so every user's login
    /// does not write it again; the key is never logged.
    fn misconfigured(&self, kind: Misconfigured) {
        *self.problem.lock() = Some(kind.reason());
        let now = Instant::now();
        let mut last = self.last_logged.lock();
        let repeated = last.is_some_and(|(reason, at)| {
            reason == kind.reason() && now.duration_since(at) < AUTH_FAILURE_HOLD
        });
        if !repeated {
            *last = Some((kind.reason(), now));
            tracing::error!(event = "configuration_error", reason = kind.reason(), "{}", kind.fix());
        }
    }
}

/// `management_url` with `segments` appended (each escaped as one path segment).
fn management_path(management_url: &Url, segments: &[&str]) -> Result<Url, ProviderError> {
    let mut url = management_url.clone();
    url.path_segments_mut()
        .map_err(|_| ProviderError::Untrusted("management URL cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// The names of the roles in `answer` with an `access` entry for `client_id`. Read as
/// leniently as a user's roles: a role without a name or without `access` is skipped.
fn roles_for_application(answer: RolesAnswer, client_id: &str) -> Result<Vec<String>, ProviderError> {
    let entries = answer.roles.unwrap_or_default();
    if entries.len() > MAX_ROLES {
        return Err(ProviderError::Malformed { endpoint: "management_roles", what: "too many roles" });
    }
    let for_us = |entry: &&serde_json::Value| {
        entry.get("access").and_then(serde_json::Value::as_array).is_some_and(|access| {
            access
                .iter()
                .any(|a| a.get("application_id").and_then(serde_json::Value::as_str) == Some(client_id))
        })
    };
    let kept = entries.iter().filter(for_us).cloned().collect();
    roles_of(RolesAnswer { roles: Some(kept) })
}

fn roles_of(answer: RolesAnswer) -> Result<Vec<String>, ProviderError> {
    let entries = answer.roles.unwrap_or_default();
    if entries.len() > MAX_ROLES {
        return Err(ProviderError::Malformed { endpoint: "management_roles", what: "too many roles" });
    }
    let mut names: Vec<String> = entries
        .iter()
        .filter_map(|entry| entry.get("name")?.as_str())
        .filter(|n| !n.is_empty() && n.len() <= 100)
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roles_with_access_for_the_application_are_kept_and_odd_entries_skipped() {
        let answer: RolesAnswer = serde_json::from_value(serde_json::json!({ "roles": [
            { "id": "1", "name": "user", "access": [{ "application_id": "us", "scopes": ["read"] }] },
            { "id": "2", "name": "both", "access": [
                { "application_id": "other" }, { "application_id": "us" } ] },
            { "id": "3", "name": "reports", "access": [{ "application_id": "other" }] },
            { "id": "4", "name": "no-access" },
            { "id": "5", "access": [{ "application_id": "us" }] },
            { "id": "6", "name": "odd", "access": "us" },
        ]}))
        .unwrap();
        assert_eq!(roles_for_application(answer, "us").unwrap(), ["both", "user"]);
        let empty: RolesAnswer = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(roles_for_application(empty, "us").unwrap().is_empty());
    }
}
