//! The App ID client: configuration, provider metadata, keys, and the calls the web layer
//! needs. Plain async Rust; only [`fairing`] knows about Rocket.

mod cache;
pub mod discovery;
pub mod error;
pub mod fairing;
mod http;
mod introspect;
pub mod jwks;
mod management;
mod token;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

pub use discovery::ProviderMetadata;
pub use error::{ProviderError, TokenError, VerifyError};
pub use token::Tokens;
pub use verify::{AccessClaims, IdClaims};

use cache::Cached;
use http::{Auth, Http};
use jwks::KeySet;
use management::IamTokenCache;
use verify::Expected;

use crate::config::AppIdConfig;

/// Provider metadata is fetched again after this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Signing keys are fetched again after this long.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` triggers at most one key refetch in this period.
const JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(60);

/// A ready App ID client, managed by Rocket as state; cheap to clone (shared inside).
#[derive(Clone)]
pub struct AppId(Arc<AppIdClient>);

impl std::ops::Deref for AppId {
    type Target = AppIdClient;

    fn deref(&self) -> &AppIdClient {
        &self.0
    }
}

impl AppId {
    /// A client for a validated configuration; no network traffic until first use.
    pub fn new(config: AppIdConfig) -> Result<Self, reqwest::Error> {
        Ok(AppId(Arc::new(AppIdClient {
            http: Http::new(config.timeouts)?,
            config,
            metadata: Cached::default(),
            keys: Cached::default(),
            iam: IamTokenCache::default(),
        })))
    }
}

/// The client's state and calls (reached through [`AppId`]).
pub struct AppIdClient {
    config: AppIdConfig,
    http: Http,
    metadata: Cached<ProviderMetadata>,
    keys: Cached<KeySet>,
    iam: IamTokenCache,
}

impl AppIdClient {
    /// The validated configuration.
    pub fn config(&self) -> &AppIdConfig {
        &self.config
    }

    /// Provider endpoints from discovery (cached; the last good copy survives outages).
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, ProviderError> {
        self.metadata
            .get(DISCOVERY_TTL, || async {
                let url = discovery::discovery_url(&self.config);
                let doc = self.http.get_json("discovery", &url, Auth::None).await?;
                discovery::interpret(doc, &self.config)
            })
            .await
    }

    async fn fetch_keys(&self) -> Result<KeySet, ProviderError> {
        let metadata = self.metadata().await?;
        let body = self.http.get_json("publickeys", metadata.jwks_uri.as_str(), Auth::None).await?;
        KeySet::parse(body)
    }

    /// The signing keys that can verify `token`: the cached set, refetched once (rate
    /// limited) when the token names a key the set does not have (key rotation).
    async fn keys_for(&self, token: &str) -> Result<Arc<KeySet>, VerifyError> {
        let kid = verify::key_id(token)?;
        let keys = self.keys.get(JWKS_TTL, || self.fetch_keys()).await?;
        if keys.find(kid.as_deref()).is_err() {
            return Ok(self.keys.force_refresh(JWKS_REFETCH_COOLDOWN, || self.fetch_keys()).await?);
        }
        Ok(keys)
    }

    fn expected(&self) -> Expected<'_> {
        Expected {
            issuer: self.config.issuer(),
            client_id: &self.config.client_id,
            tenant: &self.config.tenant_id,
            leeway_secs: self.config.clock_leeway_secs,
            now: crate::clock::now(),
        }
    }

    /// Verifies an id_token from the token endpoint against our keys and the login's nonce.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<IdClaims, VerifyError> {
        let keys = self.keys_for(token).await?;
        Ok(verify::verify_id_token(token, &keys, &self.expected(), nonce)?)
    }

    /// Verifies an access token locally (signature, issuer, audience, tenant, expiry).
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let keys = self.keys_for(token).await?;
        Ok(verify::verify_access_token(token, &keys, &self.expected())?)
    }

    /// Exchanges an authorization code at the token endpoint.
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<Tokens, ProviderError> {
        let metadata = self.metadata().await?;
        token::exchange_code(&self.http, &self.config, &metadata, code, code_verifier).await
    }

    /// Asks `/introspect` whether an access token is still active.
    pub async fn introspect(&self, token: &str) -> Result<bool, ProviderError> {
        let metadata = self.metadata().await?;
        introspect::is_active(&self.http, &self.config, &metadata, token).await
    }

    /// The user's App ID role names from the management API.
    pub async fn user_roles(&self, sub: &str) -> Result<Vec<String>, ProviderError> {
        let metadata = self.metadata().await?;
        self.iam.user_roles(&self.http, &self.config, &metadata.management_url, sub).await
    }

    /// Readiness without network traffic: `Err(reason)` until discovery and signing keys
    /// have been fetched once (they are then served from cache, even while App ID is down).
    pub async fn readiness(&self) -> Result<(), &'static str> {
        if self.metadata.peek().await.is_none() {
            return Err("discovery_not_loaded");
        }
        match self.keys.peek().await {
            Some(keys) if !keys.is_empty() => Ok(()),
            Some(_) => Err("no_usable_signing_keys"),
            None => Err("signing_keys_not_loaded"),
        }
    }

    /// Fetches discovery and keys ahead of the first login, so it is not slowed down.
    pub async fn warm_up(&self) {
        match self.keys.get(JWKS_TTL, || self.fetch_keys()).await {
            Ok(keys) => tracing::info!(event = "provider_ready", keys = keys.len()),
            Err(error) => {
                tracing::warn!(event = "provider_not_ready", %error, "will retry on first use")
            }
        }
    }
}
