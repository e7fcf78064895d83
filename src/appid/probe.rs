//! Calls that check a configuration against the live provider (`rocket-appid doctor`),
//! made through the app's own client: the same timeouts, size caps, refusal of redirects
//! and IAM token handling as the calls users depend on.

use super::discovery::{self, DiscoveryDocument};
use super::error::ProviderError;
use super::http::Auth;
use super::AppIdClient;

impl AppIdClient {
    /// The discovery document as the provider serves it, before any of our checks (so a
    /// mismatched issuer can be shown next to the configured one).
    pub async fn discovery_document(&self) -> Result<DiscoveryDocument, ProviderError> {
        self.http.get_json("discovery", &discovery::discovery_url(&self.config), Auth::None).await
    }

    /// The provider's clock: the `Date` header of an answer from its discovery URL, in
    /// seconds since the epoch; `None` when there is no readable one.
    pub async fn provider_time(&self) -> Result<Option<i64>, ProviderError> {
        self.http.server_date("discovery", &discovery::discovery_url(&self.config)).await
    }

    /// Asks IAM for a token with the configured API key (`IBM_CLOUD_APIKEY`).
    pub async fn check_api_key(&self) -> Result<(), ProviderError> {
        self.iam.token(&self.http, &self.config, false).await.map(drop)
    }

    /// A resource of App ID's management API below the tenant (`path` segments, e.g.
    /// `["config", "tokens"]`), read with the API key's IAM token, as JSON.
    pub async fn management_json(
        &self,
        endpoint: &'static str,
        path: &[&str],
    ) -> Result<serde_json::Value, ProviderError> {
        let base = self.management_url().await?;
        self.iam.get_json(&self.http, &self.config, &base, endpoint, path).await
    }
}
