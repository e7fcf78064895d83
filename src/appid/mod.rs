//! The App ID client: configuration, provider metadata, keys, caches, and the calls the
//! web layer needs, and the background refresh of its keys. Plain async Rust: the
//! composition root (`crate::setup`) builds it from configuration.

mod background;
mod breaker;
mod cache;
pub mod discovery;
pub mod error;
mod http;
mod introspect;
pub mod jwks;
mod management;
mod probe;
pub mod refresh;
mod token;
mod userinfo;
pub mod verify;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use discovery::ProviderMetadata;
pub use error::{ProviderError, TokenError, VerifyError};
pub use refresh::Renewed;
pub use token::Tokens;
pub use verify::{AccessClaims, IdClaims, Verified};

use cache::{Cached, KeyedCache, Refreshed};
pub use http::SharedBudget;
use http::{Auth, Http};
use jwks::KeySet;
use management::IamTokenCache;
use sha2::{Digest, Sha256};
use verify::Expected;

use crate::config::AppIdConfig;
use crate::metrics::{Cache, Metrics};
use crate::secret::{AccessToken, Nonce, PkceVerifier, RefreshToken};

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
const CACHE_CAPACITY: u64 = 10_000;
/// A token or user served from a stale answer is logged at most once in this period, so a
/// long outage does not write a line per request.
const STALE_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// `/ready` says a cache is serving stale answers for this long after the last one.
const STALE_REPORT_FOR_SECS: i64 = 60;

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
    pub fn new(config: AppIdConfig, metrics: Metrics) -> Result<Self, reqwest::Error> {
        AppId::sharing_budget(config, metrics, None)
    }

    /// [`AppId::new`], with the token-endpoint budget also counted in `shared` (across the
    /// instances of the app).
    pub fn sharing_budget(
        config: AppIdConfig,
        metrics: Metrics,
        shared: Option<Arc<dyn SharedBudget>>,
    ) -> Result<Self, reqwest::Error> {
        Ok(AppId(Arc::new(AppIdClient {
            http: Http::new(
                config.timeouts,
                config.breaker.failures,
                config.breaker.open_for,
                config.breaker.max_concurrent,
                config.breaker.token_calls_per_sec,
                metrics.clone(),
            )?
            .sharing_budget(shared),
            config,
            metadata: Cached::default(),
            keys: Cached::default(),
            iam: IamTokenCache::default(),
            verified: KeyedCache::new(Cache::VerifiedTokens, CACHE_CAPACITY, metrics.clone()),
            introspections: KeyedCache::new(Cache::Introspection, CACHE_CAPACITY, metrics.clone()),
            roles: KeyedCache::new(Cache::Roles, CACHE_CAPACITY, metrics.clone()),
            application_roles: KeyedCache::new(Cache::Roles, 1, metrics.clone()),
            id_token_roles: KeyedCache::new(Cache::IdTokenRoles, CACHE_CAPACITY, metrics.clone()),
            opaque_tokens: KeyedCache::new(Cache::OpaqueTokens, CACHE_CAPACITY, metrics.clone()),
            no_introspection_logged: AtomicBool::new(false),
            stale_logged: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(STALE_LOG_INTERVAL)
                .build(),
            stale_served_at: [AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN)],
            metrics,
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
    /// Shared (`Arc`): every request of a token gets the cached claims without a copy.
    verified: KeyedCache<[u8; 32], Arc<AccessClaims>>,
    /// `/introspect` answers, by SHA-256 of the token.
    introspections: KeyedCache<[u8; 32], bool>,
    /// Role names by subject (management API).
    roles: KeyedCache<String, Arc<[String]>>,
    /// With `roles_this_app_only`: the names of the tenant's roles whose access includes
    /// this application (one entry, under the client id; counted as the roles cache).
    application_roles: KeyedCache<String, Arc<[String]>>,
    /// Role names from the roles claim of the last verified id_token, by subject (roles
    /// source `token`/`both`): the session keeps the access token only, so roles that the
    /// provider puts into the id_token alone are remembered here for the session's life.
    id_token_roles: KeyedCache<String, Vec<String>>,
    /// `oidc` only: access tokens that are not JWTs for us and could not be introspected,
    /// accepted on the strength of the id_token verified at login, by SHA-256 of the token,
    /// for at most the session lifetime.
    opaque_tokens: KeyedCache<[u8; 32], AccessClaims>,
    /// The "no introspection endpoint, policy forced to never" notice was logged.
    no_introspection_logged: AtomicBool,
    /// Tokens (by key) and users (by SHA-256 of the subject) whose stale serving was logged
    /// within the last [`STALE_LOG_INTERVAL`]; bounded like the caches.
    stale_logged: moka::sync::Cache<(&'static str, [u8; 32]), ()>,
    /// When an introspection answer ([0]) and a role list ([1]) were last served stale
    /// (seconds since the epoch), for `/ready`.
    stale_served_at: [AtomicI64; 2],
    metrics: Metrics,
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

    /// The app's counters, shared with this client.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
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
        self.metrics.jwks_fetched();
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
            trusted_audiences: &self.config.trusted_audiences,
            tenant: &self.config.tenant_id,
            leeway_secs: self.config.clock_leeway_secs,
            now: crate::clock::now(),
        }
    }

    /// Verifies an id_token from the token endpoint against our keys and the login's nonce.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: &Nonce,
    ) -> Result<Verified<IdClaims>, VerifyError> {
        let keys = self.keys_for(token).await?;
        let roles_claim = self.config.roles_source.uses_token().then_some(self.config.roles_claim.as_str());
        Ok(verify::verify_id_token(token, &keys, &self.expected(), nonce, roles_claim)?)
    }

    /// Verifies the access token that came with a login whose id_token is `id`.
    ///
    /// App ID, and `oidc` providers that issue JWT access tokens for us: as
    /// [`Self::verify_access_token`]. An `oidc` provider's access token may also be opaque,
    /// or a JWT for another audience (a resource server): then it is introspected when the
    /// provider lists an introspection endpoint, and otherwise accepted on the strength of
    /// the id_token verified just before, until the token's `expires_in` (at most the session
    /// lifetime, `session_max_age_secs`), remembered by this process only.
    pub async fn verify_login_access_token(
        &self,
        token: &AccessToken,
        id: &Verified<IdClaims>,
        expires_in: Option<u64>,
    ) -> Result<Arc<AccessClaims>, VerifyError> {
        let token = token.secret();
        let key = token_key(token);
        match self.verify_access_token_keyed(token, key).await {
            Err(VerifyError::Token(error)) if self.opaque_allowed(error) => {
                let metadata = self.metadata().await?;
                if metadata.introspection_endpoint.is_some() {
                    // verify_access_token_keyed introspected it already and failed.
                    return Err(VerifyError::Token(error));
                }
                let lifetime = expires_in.unwrap_or(u64::MAX).min(self.config.session_max_age_secs);
                let exp = crate::clock::now() + lifetime as i64;
                // No claims of its own: no roles from it either (the id_token's count).
                let claims = AccessClaims::vouched(id.sub.clone(), exp, None, Vec::new())
                    .ok_or(VerifyError::Token(error))?;
                tracing::info!(event = "opaque_access_token", via = "id_token");
                self.opaque_tokens.insert(key, claims.clone(), Duration::from_secs(lifetime.max(1))).await;
                Ok(Arc::new(claims))
            }
            other => other,
        }
    }

    /// `oidc` only: the access token cannot be verified as a JWT for us, and may be checked
    /// another way (not a JWT at all, or a JWT for another audience).
    fn opaque_allowed(&self, error: TokenError) -> bool {
        !self.config.is_app_id() && matches!(error, TokenError::Malformed | TokenError::AudienceMismatch)
    }

    /// Verifies an access token locally (signature, issuer, audience, tenant, expiry).
    /// A token verified before is not verified again; its expiry is checked every time.
    pub async fn verify_access_token(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        self.verify_access_token_keyed(token, token_key(token)).await
    }

    /// [`Self::verify_access_token`] with the token's [`token_key`] already known.
    pub async fn verify_access_token_keyed(
        &self,
        token: &str,
        key: [u8; 32],
    ) -> Result<Arc<AccessClaims>, VerifyError> {
        let claims = self
            .verified
            .get_or_fetch(&key, VERIFIED_TTL, || async {
                let roles_claim =
                    self.config.roles_source.uses_token().then_some(self.config.roles_claim.as_str());
                let verified = self.keys_for(token).await.and_then(|keys| {
                    verify::verify_access_token(token, &keys, &self.expected(), roles_claim)
                        .map_err(VerifyError::from)
                });
                match verified {
                    Ok(claims) => Ok(Arc::new(claims)),
                    Err(VerifyError::Token(error)) if self.opaque_allowed(error) => {
                        self.verify_opaque(token, key, error).await.map(Arc::new)
                    }
                    Err(error) => Err(error),
                }
            })
            .await?;
        if claims.exp + (self.config.clock_leeway_secs as i64) < crate::clock::now() {
            return Err(TokenError::Expired.into());
        }
        Ok(claims)
    }

    /// Exchanges an authorization code at the token endpoint.
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: Option<&PkceVerifier>,
    ) -> Result<Tokens, ProviderError> {
        let metadata = self.metadata().await?;
        token::exchange_code(&self.http, &self.config, &metadata, code, code_verifier).await
    }

    /// Renews the tokens with a refresh token (no retry: see [`refresh::refresh`]).
    pub async fn refresh_tokens(&self, refresh_token: &RefreshToken) -> Result<Renewed, ProviderError> {
        let metadata = self.metadata().await?;
        refresh::refresh(&self.http, &self.config, &metadata, refresh_token).await
    }

    /// Revokes a refresh token at the provider (RFC 7009).
    pub async fn revoke_refresh_token(&self, refresh_token: &RefreshToken) -> Result<(), ProviderError> {
        let metadata = self.metadata().await?;
        refresh::revoke(&self.http, &self.config, &metadata, refresh_token).await
    }

    /// Verifies an id_token that came with a refresh: as at login, without a nonce, and
    /// for the session's `sub`.
    pub async fn verify_refreshed_id_token(
        &self,
        token: &str,
        sub: &str,
    ) -> Result<Verified<IdClaims>, VerifyError> {
        let keys = self.keys_for(token).await?;
        let roles_claim = self.config.roles_source.uses_token().then_some(self.config.roles_claim.as_str());
        let claims = verify::verify_refreshed_id_token(token, &keys, &self.expected(), sub, roles_claim)?;
        // The renewed id_token's roles replace those from login (renewal is when token
        // roles change without a new login).
        if self.config.roles_source.uses_token() {
            self.remember_id_token_roles(sub, claims.token_roles.clone()).await;
        }
        Ok(claims)
    }

    /// The id_token's claims, with the name and e-mail it lacks read from the provider's
    /// UserInfo endpoint (OIDC Core §5.3), when discovery lists one: asked once, at login,
    /// with the access token. An answer about another subject is not used (§5.3.2), and a
    /// failed call only leaves them out (they are shown, never trusted for access).
    pub async fn with_userinfo(
        &self,
        id: Verified<IdClaims>,
        access_token: &AccessToken,
    ) -> Verified<IdClaims> {
        if !id.lacks_profile() {
            return id;
        }
        let Some(url) = self.metadata.peek().await.and_then(|m| m.userinfo_endpoint.clone()) else {
            return id;
        };
        let profile = match userinfo::profile(&self.http, &url, access_token).await {
            Ok(profile) => profile,
            Err(error) => {
                tracing::warn!(event = "userinfo_failed", %error);
                return id;
            }
        };
        let refused = id.clone();
        id.with_profile(&profile.sub, profile.name, profile.email).unwrap_or_else(|error| {
            tracing::warn!(event = "userinfo_refused", reason = error.reason());
            refused
        })
    }

    /// Verifies the id_token an API caller sent after its access token, for the access
    /// token's subject `sub` (see [`verify::verify_api_id_token`]).
    pub async fn verify_api_id_token(
        &self,
        token: &str,
        sub: &str,
    ) -> Result<Verified<IdClaims>, VerifyError> {
        let keys = self.keys_for(token).await?;
        Ok(verify::verify_api_id_token(token, &keys, &self.expected(), sub)?)
    }

    /// Where the browser ends the provider's session, when discovery lists one (App ID
    /// does not). Taken from cached metadata only: logout never waits for discovery.
    pub async fn end_session_endpoint(&self) -> Option<url::Url> {
        self.metadata.peek().await.and_then(|m| m.end_session_endpoint.clone())
    }

    /// The user's App ID role names from the management API (no cache).
    pub async fn user_roles(&self, sub: &str) -> Result<Vec<String>, ProviderError> {
        let management_url = self.management_url().await?;
        self.iam.user_roles(&self.http, &self.config, &management_url, sub).await
    }

    /// The tenant's management API (App ID only: a generic provider has none).
    async fn management_url(&self) -> Result<url::Url, ProviderError> {
        self.metadata()
            .await?
            .management_url
            .clone()
            .ok_or(ProviderError::Untrusted("no management API with APPID_PROVIDER=oidc"))
    }

    /// The roles of a user signing in now, by the configured source: the management API
    /// (`management_api`), the roles claim of the verified id_token and access token
    /// (`token`), or the union (`both`). Remembered, so the first protected page needs no
    /// further call.
    pub async fn login_roles(
        &self,
        id: &Verified<IdClaims>,
        access: &AccessClaims,
    ) -> Result<Vec<String>, ProviderError> {
        let source = self.config.roles_source;
        let mut roles = Vec::new();
        if source.uses_management_api() {
            roles = self.user_roles(&id.sub).await?;
            self.remember_roles(&id.sub, roles.clone()).await;
        }
        if source.uses_token() {
            self.remember_id_token_roles(&id.sub, id.token_roles.clone()).await;
            roles.extend(id.token_roles.iter().cloned());
            roles.extend(access.token_roles.iter().cloned());
        }
        roles.sort();
        roles.dedup();
        self.for_this_application(roles).await
    }

    /// The roles for a request whose access token was verified into `access`, by the
    /// configured source. Staleness is bounded either way: management API roles are at most
    /// `roles_ttl_secs` old; token roles are those of the current tokens, so they change at
    /// the next login or token renewal (at the latest when the access token expires).
    pub async fn roles_for(&self, sub: &str, access: &AccessClaims) -> Result<Arc<[String]>, ProviderError> {
        let source = self.config.roles_source;
        if !source.uses_token() && !self.config.roles_this_app_only {
            // The default: the cached list itself, shared (no copy per request).
            return self.roles(sub).await;
        }
        let mut roles =
            if source.uses_management_api() { self.roles(sub).await?.to_vec() } else { Vec::new() };
        if source.uses_token() {
            roles.extend(access.token_roles.iter().cloned());
            if let Some(from_id_token) = self.id_token_roles.get(sub).await {
                roles.extend(from_id_token);
            }
        }
        roles.sort();
        roles.dedup();
        Ok(self.for_this_application(roles).await?.into())
    }

    /// `roles` as they are, or with `roles_this_app_only` only those whose access includes
    /// this application: App ID's roles are tenant-wide, and a role meant for another
    /// application of the tenant would otherwise open this one's pages too.
    async fn for_this_application(&self, mut roles: Vec<String>) -> Result<Vec<String>, ProviderError> {
        if !self.config.roles_this_app_only {
            return Ok(roles);
        }
        let ours = self.application_roles().await?;
        roles.retain(|role| ours.contains(role));
        Ok(roles)
    }

    /// The names of the tenant's roles whose access includes this application, at most
    /// `roles_ttl_secs` old (a role's access changed in App ID takes effect within that),
    /// and during an outage the last list for the outage window, like a user's roles.
    async fn application_roles(&self) -> Result<Arc<[String]>, ProviderError> {
        let client_id = &self.config.client_id;
        let fetch = || async {
            let management_url = self.management_url().await?;
            self.iam
                .roles_of_application(&self.http, &self.config, &management_url, client_id)
                .await
                .map(Arc::from)
        };
        self.roles_or_last(&self.application_roles, client_id, None, fetch).await
    }

    /// Roles from `cache` under `key`, at most `roles_ttl_secs` old, else fetched; while
    /// the provider cannot be asked, the last ones read, for the outage window after they
    /// were read (counted, and logged naming `sub` when they are a user's).
    async fn roles_or_last<F, Fut>(
        &self,
        cache: &KeyedCache<String, Arc<[String]>>,
        key: &str,
        sub: Option<&str>,
        fetch: F,
    ) -> Result<Arc<[String]>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Arc<[String]>, ProviderError>>,
    {
        let ttl = Duration::from_secs(self.config.roles_ttl_secs);
        match cache.get_or_refresh(key, ttl, self.outage_window(), fetch).await {
            Refreshed::Fresh(roles) => Ok(roles),
            Refreshed::Failed { error, last: Some((roles, age)) } if self.may_serve_stale(&error, age) => {
                self.served_stale(Cache::Roles, Sha256::digest(key.as_bytes()).into(), age, &error, sub);
                Ok(roles)
            }
            Refreshed::Failed { error, .. } => Err(error),
        }
    }

    async fn remember_id_token_roles(&self, sub: &str, roles: Vec<String>) {
        let ttl = Duration::from_secs(self.config.session_max_age_secs);
        self.id_token_roles.insert(sub.to_string(), roles, ttl).await;
    }

    /// The user's roles, at most `roles_ttl_secs` old (so a role removed in App ID stops
    /// working within that time), fetched once per user per TTL. While the management API
    /// (or IAM) cannot be asked, the last roles read are used for the outage window after
    /// they were read; a user with none known gets the error.
    pub async fn roles(&self, sub: &str) -> Result<Arc<[String]>, ProviderError> {
        let fetch = || async { self.user_roles(sub).await.map(Arc::from) };
        self.roles_or_last(&self.roles, sub, Some(sub), fetch).await
    }

    /// Remembers roles just read at login, so the first protected page needs no call.
    pub async fn remember_roles(&self, sub: &str, roles: Vec<String>) {
        let ttl = Duration::from_secs(self.config.roles_ttl_secs);
        self.roles.insert_kept(sub.to_string(), roles.into(), ttl, self.outage_window()).await;
    }

    /// How long after it was read an answer may be served while the provider cannot be asked.
    fn outage_window(&self) -> Duration {
        Duration::from_secs(self.config.outage_window_secs)
    }

    /// Whether an answer `age` old may stand in for one the provider could not give.
    fn may_serve_stale(&self, error: &ProviderError, age: Duration) -> bool {
        error.cannot_be_asked() && age < self.outage_window()
    }

    /// Counts a request served from `cache`'s last answer, and logs it once per token or
    /// user (`key`) per [`STALE_LOG_INTERVAL`] (the token itself is never logged).
    fn served_stale(
        &self,
        cache: Cache,
        key: [u8; 32],
        age: Duration,
        error: &ProviderError,
        sub: Option<&str>,
    ) {
        self.metrics.served_stale(cache);
        let slot = usize::from(cache == Cache::Roles);
        self.stale_served_at[slot].store(crate::clock::now(), Ordering::Relaxed);
        if self.stale_logged.entry((cache.name(), key)).or_insert(()).is_fresh() {
            tracing::warn!(
                event = "served_stale",
                cache = cache.name(),
                sub,
                age_secs = age.as_secs(),
                reason = %error,
                "the provider cannot be asked: served the last answer (outage window)"
            );
        }
    }

    /// The caches that served a stale answer within the last minute, for `/ready`: signed-in
    /// users are being let in on answers the provider could not confirm.
    pub fn serving_stale(&self) -> Vec<&'static str> {
        let now = crate::clock::now();
        [Cache::Introspection, Cache::Roles]
            .into_iter()
            .zip(&self.stale_served_at)
            .filter(|(_, at)| now.saturating_sub(at.load(Ordering::Relaxed)) < STALE_REPORT_FOR_SECS)
            .map(|(cache, _)| cache.name())
            .collect()
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

    /// A configuration error the management API showed (`mgmt_not_found`, `mgmt_forbidden`,
    /// `mgmt_auth_failed`) and no call has cleared since, for `/ready`.
    pub fn configuration_problem(&self) -> Option<&'static str> {
        self.iam.problem()
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
