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

/// The cached IAM token; one fetch at a time.
#[derive(Debug, Default)]
pub struct IamTokenCache {
    current: Mutex<Option<(Secret, Instant)>>,
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
        let form =
            [("grant_type", "urn:ibm:params:oauth:grant-type:apikey"), ("apikey", config.api_key.expose())];
        let answer: IamAnswer =
            http.post_form("iam_token", config.iam_url.as_str(), Auth::None, &form, false).await?;
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
                Err(error) => return Err(error),
            }
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
