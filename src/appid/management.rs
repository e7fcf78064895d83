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
    /// When `mgmt_auth_failed` was last logged (at most once per [`AUTH_FAILURE_HOLD`]).
    last_logged: parking_lot::Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct IamAnswer {
    access_token: String,
    expires_in: Option<u64>,
    expiration: Option<i64>,
}

#[derive(Deserialize)]
struct RolesAnswer {
    roles: Vec<RoleEntry>,
}

#[derive(Deserialize)]
struct RoleEntry {
    name: String,
}

impl IamTokenCache {
    /// A valid IAM token: the cached one, or a new one when it is near expiry or `renew`.
    async fn token(&self, http: &Http, config: &AppIdConfig, renew: bool) -> Result<Secret, ProviderError> {
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
                    self.auth_failed();
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
    /// once; an unknown user (404) has no roles.
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
        let mut url = management_url.clone();
        url.path_segments_mut()
            .map_err(|_| ProviderError::Untrusted("management URL cannot take a path"))?
            .pop_if_empty()
            .extend(["users", sub, "roles"]);
        let mut renew = false;
        loop {
            let token = self.token(http, config, renew).await?;
            let result: Result<RolesAnswer, _> =
                http.get_json("management_roles", url.as_str(), Auth::Bearer(token.expose())).await;
            match result {
                Ok(answer) => return roles_of(answer),
                Err(ProviderError::Status { status: 401, .. }) if !renew => renew = true,
                Err(ProviderError::Status { status: 404, .. }) => return Ok(Vec::new()),
                Err(error @ ProviderError::Status { status: 401, .. }) => {
                    self.auth_failed();
                    return Err(error);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Logs that the management API cannot be used with our API key (revoked or expired
    /// IAM key, or a fresh IAM token refused): an operator must act. Once per
    /// [`AUTH_FAILURE_HOLD`], so an outage does not flood the log; the key is never logged.
    fn auth_failed(&self) {
        let now = Instant::now();
        let mut last = self.last_logged.lock();
        if last.is_none_or(|at| now.duration_since(at) >= AUTH_FAILURE_HOLD) {
            *last = Some(now);
            tracing::error!(
                event = "provider_unavailable",
                reason = "mgmt_auth_failed",
                "IAM refused the API key or the management API refused its token: check IBM_CLOUD_APIKEY"
            );
        }
    }
}

fn roles_of(answer: RolesAnswer) -> Result<Vec<String>, ProviderError> {
    if answer.roles.len() > MAX_ROLES {
        return Err(ProviderError::Malformed { endpoint: "management_roles", what: "too many roles" });
    }
    let mut names: Vec<String> =
        answer.roles.into_iter().map(|r| r.name).filter(|n| !n.is_empty() && n.len() <= 100).collect();
    names.sort();
    names.dedup();
    Ok(names)
}
