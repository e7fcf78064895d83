//! The App ID client: configuration, provider metadata, keys, caches, and the calls the
//! web layer needs. Plain async Rust; only [`fairing`] knows about Rocket.

mod breaker;
mod cache;
pub mod discovery;
pub mod error;
pub mod fairing;
mod http;
mod introspect;
pub mod jwks;
mod management;
mod token;
mod ttl_cache;
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
use sha2::{Digest, Sha256};
use ttl_cache::TtlCache;
use verify::Expected;

use crate::config::{AppIdConfig, IntrospectionPolicy};

/// Provider metadata is fetched again after this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(24 * 3600);
/// The background task fetches the signing keys this often.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// On the request path, keys older than this are fetched again (only if the background
/// refresh has stopped working).
const JWKS_MAX_AGE: Duration = Duration::from_secs(6 * 3600);
/// An unknown `kid` triggers at most one key refetch in this period.
const JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(60);
/// A verified access token is remembered this long (its `exp` is still checked on every use).
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Most tokens, introspection answers and users remembered at once.
const CACHE_CAPACITY: usize = 10_000;

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
            http: Http::new(
                config.timeouts,
                config.breaker.failures,
                config.breaker.open_for,
                config.breaker.max_concurrent,
            )?,
            config,
            metadata: Cached::default(),
            keys: Cached::default(),
            iam: IamTokenCache::default(),
            verified: TtlCache::new("verified_tokens", CACHE_CAPACITY),
            introspections: TtlCache::new("introspection", CACHE_CAPACITY),
            roles: TtlCache::new("roles", CACHE_CAPACITY),
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
    /// Access tokens whose signature and claims were verified, by SHA-256 of the token.
    verified: TtlCache<[u8; 32], AccessClaims>,
    /// `/introspect` answers, by SHA-256 of the token.
    introspections: TtlCache<[u8; 32], bool>,
    /// Role names by subject.
    roles: TtlCache<String, Vec<String>>,
}

/// SHA-256 of a token: the cache key (tokens themselves are never kept as keys). The
/// session stores it, so the guard need not hash the token on every request.
pub fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
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
        let keys = KeySet::parse(body)?;
        crate::metrics::METRICS.jwks_fetched();
        // A key may have been withdrawn: tokens are verified again against the new set.
        self.verified.clear();
        Ok(keys)
    }

    /// The signing keys that can verify `token`: the cached set, refetched once (rate
    /// limited) when the token names a key the set does not have (key rotation).
    async fn keys_for(&self, token: &str) -> Result<Arc<KeySet>, VerifyError> {
        let kid = verify::key_id(token)?;
        let keys = self.keys.get(JWKS_MAX_AGE, || self.fetch_keys()).await?;
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
    /// A token verified before is not verified again; its expiry is checked every time.
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_access_token_keyed(token, token_key(token)).await
    }

    /// [`Self::verify_access_token`] with the token's [`token_key`] already known.
    pub async fn verify_access_token_keyed(
        &self,
        token: &str,
        key: [u8; 32],
    ) -> Result<AccessClaims, VerifyError> {
        let claims = self
            .verified
            .get_or_fetch(key, VERIFIED_TTL, || async {
                let keys = self.keys_for(token).await?;
                Ok::<_, VerifyError>(verify::verify_access_token(token, &keys, &self.expected())?)
            })
            .await?;
        if claims.exp + (self.config.clock_leeway_secs as i64) < crate::clock::now() {
            return Err(TokenError::Expired.into());
        }
        Ok(claims)
    }

    /// Whether the access token is still active, by the configured policy: `never` asks
    /// nobody, `cached` asks `/introspect` at most once per token per TTL (never past the
    /// token's expiry), `always` asks on every call.
    pub async fn is_active(&self, token: &str, key: [u8; 32], exp: i64) -> Result<bool, ProviderError> {
        match self.config.introspection {
            IntrospectionPolicy::Never => Ok(true),
            IntrospectionPolicy::Always => self.introspect(token).await,
            IntrospectionPolicy::Cached => {
                let left = u64::try_from(exp - crate::clock::now()).unwrap_or(0).max(1);
                let ttl = Duration::from_secs(self.config.introspection_ttl_secs.min(left));
                self.introspections.get_or_fetch(key, ttl, || self.introspect(token)).await
            }
        }
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

    /// Asks `/introspect` whether an access token is still active (no cache).
    pub async fn introspect(&self, token: &str) -> Result<bool, ProviderError> {
        let metadata = self.metadata().await?;
        introspect::is_active(&self.http, &self.config, &metadata, token).await
    }

    /// The user's App ID role names from the management API (no cache).
    pub async fn user_roles(&self, sub: &str) -> Result<Vec<String>, ProviderError> {
        let metadata = self.metadata().await?;
        self.iam.user_roles(&self.http, &self.config, &metadata.management_url, sub).await
    }

    /// The user's roles, at most `roles_ttl_secs` old (so a role removed in App ID stops
    /// working within that time), fetched once per user per TTL.
    pub async fn roles(&self, sub: &str) -> Result<Vec<String>, ProviderError> {
        let ttl = Duration::from_secs(self.config.roles_ttl_secs);
        self.roles.get_or_fetch(sub.to_string(), ttl, || self.user_roles(sub)).await
    }

    /// Remembers roles just read at login, so the first protected page needs no call.
    pub fn remember_roles(&self, sub: &str, roles: Vec<String>) {
        self.roles.insert(sub.to_string(), roles, Duration::from_secs(self.config.roles_ttl_secs));
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

    /// The provider endpoints whose circuit breaker is open now: calls to them fail at
    /// once with 503 until a trial call succeeds. Empty when all is well. For `/ready`
    /// (to report "degraded" while cached keys still serve existing sessions).
    pub fn degraded_endpoints(&self) -> Vec<&'static str> {
        self.http.breakers().open_endpoints()
    }

    /// Fetches discovery and keys now (at launch, then every [`JWKS_REFRESH_INTERVAL`] from
    /// a background task), so no request waits for them. Failures keep the last good keys.
    pub async fn refresh_keys(&self) -> Result<usize, ProviderError> {
        Ok(self.keys.get(Duration::ZERO, || self.fetch_keys()).await?.len())
    }
}
