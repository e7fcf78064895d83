//! The shared emulator handle: configuration, runtime knobs, counters and the grant stores.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::config::{EmulatorConfig, TestUser};
use crate::error::EmulatorError;
use crate::fault::Fault;
use crate::jwt::SigningKey;
use crate::util;

/// The endpoints the emulator counts requests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /oauth/v4/{tenant}/.well-known/openid-configuration`
    Discovery,
    /// `GET|POST /oauth/v4/{tenant}/authorization`
    Authorization,
    /// `POST /oauth/v4/{tenant}/token`
    Token,
    /// `GET /oauth/v4/{tenant}/publickeys`
    PublicKeys,
    /// `POST /oauth/v4/{tenant}/introspect`
    Introspect,
    /// `GET /oauth/v4/{tenant}/userinfo`
    UserInfo,
    /// `POST /oauth/v4/{tenant}/revoke`
    Revoke,
    /// `GET /oauth/v4/{tenant}/cloud_directory/sso/logout`
    SsoLogout,
    /// `POST /identity/token`
    IamToken,
    /// `GET /management/v4/{tenant}/users/{sub}/roles` (and `/roles`)
    ManagementRoles,
}

impl Endpoint {
    /// Every endpoint, in declaration order.
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Discovery,
        Endpoint::Authorization,
        Endpoint::Token,
        Endpoint::PublicKeys,
        Endpoint::Introspect,
        Endpoint::UserInfo,
        Endpoint::Revoke,
        Endpoint::SsoLogout,
        Endpoint::IamToken,
        Endpoint::ManagementRoles,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A pending authorization code and everything it was bound to.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub user: TestUser,
    /// Host-clock expiry (codes are not affected by the simulated clock offset).
    pub expires_at: i64,
}

/// A live refresh token's grant.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub sub: String,
    /// Expiry on the emulator clock.
    pub expires_at: i64,
}

/// Mutable state behind one lock; every operation on it is short.
pub(crate) struct Store {
    pub key: Arc<SigningKey>,
    /// A retired key still published in the JWKS (a rotation's overlap period).
    pub previous_key: Option<Arc<SigningKey>>,
    pub users: Vec<TestUser>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh: HashMap<String, RefreshGrant>,
    /// Fingerprints of revoked access tokens.
    pub revoked: HashSet<String>,
    /// IAM access token fingerprint -> expiry on the emulator clock.
    pub iam_tokens: HashMap<String, i64>,
    /// Single sign-on sessions (cookie value -> user `sub`), when `sso` is on.
    pub sso_sessions: HashMap<String, String>,
}

struct Inner {
    config: EmulatorConfig,
    counters: [AtomicU64; 10],
    clock_offset: AtomicI64,
    access_ttl: AtomicU64,
    refresh_enabled: AtomicBool,
    refresh_ttl: AtomicU64,
    refresh_reuse: AtomicBool,
    base_url: OnceLock<String>,
    store: Mutex<Store>,
    faults: Mutex<HashMap<Endpoint, Fault>>,
}

/// Shared, clonable handle to the running emulator's state (Arc inside): knobs and counters for tests.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("tenant_id", &self.inner.config.tenant_id)
            .field("base_url", &self.inner.base_url.get())
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Creates the state for one emulator, generating its first signing key (RSA-2048).
    pub fn new(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let key = Arc::new(SigningKey::generate(&config.tenant_id)?);
        let store = Store {
            key,
            previous_key: None,
            users: config.users.clone(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            revoked: HashSet::new(),
            iam_tokens: HashMap::new(),
            sso_sessions: HashMap::new(),
        };
        let base_url = OnceLock::new();
        if let Some(url) = &config.public_base_url {
            let _ = base_url.set(url.trim_end_matches('/').to_owned());
        }
        Ok(Emulator {
            inner: Arc::new(Inner {
                access_ttl: AtomicU64::new(config.access_token_ttl),
                refresh_enabled: AtomicBool::new(config.refresh_tokens),
                refresh_ttl: AtomicU64::new(config.refresh_token_ttl),
                refresh_reuse: AtomicBool::new(config.refresh_token_reuse),
                config,
                counters: Default::default(),
                clock_offset: AtomicI64::new(0),
                base_url,
                store: Mutex::new(store),
                faults: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration the emulator was started with. Runtime changes made through the
    /// setters below are read back with [`Emulator::users`] and [`Emulator::access_token_ttl`].
    pub fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    /// How many requests `endpoint` has received.
    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        self.inner.counters[endpoint.index()].load(Ordering::Relaxed)
    }

    /// Requests received by all counted endpoints together.
    pub fn total_calls(&self) -> u64 {
        Endpoint::ALL.iter().map(|e| self.calls(*e)).sum()
    }

    /// Shifts the emulator clock (iat/exp of issued tokens, expiry checks of introspection,
    /// userinfo and IAM tokens, the `Date` header) by `secs`, to simulate skew or expired
    /// tokens.
    pub fn set_clock_offset(&self, secs: i64) {
        self.inner.clock_offset.store(secs, Ordering::Relaxed);
    }

    /// Replaces the roles of the user with this `sub` (no effect if there is none).
    pub fn set_user_roles(&self, sub: &str, roles: Vec<String>) {
        let mut store = self.store();
        if let Some(user) = store.users.iter_mut().find(|u| u.sub == sub) {
            user.roles = roles;
        }
    }

    /// Generates a new signing key with a new kid; the old key disappears from the JWKS, so
    /// tokens signed with it no longer verify (also not at introspection).
    pub fn rotate_signing_key(&self) {
        // Keygen takes a noticeable time in debug builds; do it outside the lock. A failure
        // keeps the old key, which a test notices through the unchanged kid.
        if let Ok(key) = SigningKey::generate(&self.inner.config.tenant_id) {
            self.store().key = Arc::new(key);
        }
    }

    /// Like [`Emulator::rotate_signing_key`], but the old key stays in the JWKS (an overlap
    /// period) until [`Emulator::retire_previous_key`]; tokens are signed with the new one.
    pub fn rotate_signing_key_with_overlap(&self) {
        if let Ok(key) = SigningKey::generate(&self.inner.config.tenant_id) {
            let mut store = self.store();
            let old = std::mem::replace(&mut store.key, Arc::new(key));
            store.previous_key = Some(old);
        }
    }

    /// Ends the overlap: the previous key disappears from the JWKS.
    pub fn retire_previous_key(&self) {
        self.store().previous_key = None;
    }

    /// The keys published in the JWKS: the current one, then a previous one in overlap.
    pub fn published_keys(&self) -> Vec<Arc<SigningKey>> {
        let store = self.store();
        std::iter::once(Arc::clone(&store.key)).chain(store.previous_key.clone()).collect()
    }

    /// Makes `endpoint` misbehave (slow, failing, hostile answer) until cleared or until
    /// the fault's `times` are used up. Replaces a fault already set there.
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        self.faults().insert(endpoint, fault);
    }

    /// `endpoint` answers normally again.
    pub fn clear_fault(&self, endpoint: Endpoint) {
        self.faults().remove(&endpoint);
    }

    /// The fault for one request to `endpoint`, counting down its `times`.
    pub(crate) fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut faults = self.faults();
        let fault = faults.get_mut(&endpoint)?;
        let taken = fault.clone();
        match &mut fault.times {
            Some(0) => {
                faults.remove(&endpoint);
                return None;
            }
            Some(1) => {
                faults.remove(&endpoint);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(taken)
    }

    fn faults(&self) -> MutexGuard<'_, HashMap<Endpoint, Fault>> {
        self.inner.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks an access token revoked: introspection reports `active:false`, userinfo rejects it.
    pub fn revoke_access_token(&self, token: &str) {
        self.store().revoked.insert(util::fingerprint(token));
    }

    /// Changes the lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, secs: u64) {
        self.inner.access_ttl.store(secs, Ordering::Relaxed);
    }

    /// Current access-token lifetime in seconds.
    pub fn access_token_ttl(&self) -> u64 {
        self.inner.access_ttl.load(Ordering::Relaxed)
    }

    /// Turns refresh tokens on or off for tokens issued from now on; while off, the
    /// refresh grant is refused (`unauthorized_client`), as in a tenant without them.
    pub fn set_refresh_tokens(&self, enabled: bool) {
        self.inner.refresh_enabled.store(enabled, Ordering::Relaxed);
    }

    /// Whether refresh tokens are issued and accepted now.
    pub fn refresh_tokens(&self) -> bool {
        self.inner.refresh_enabled.load(Ordering::Relaxed)
    }

    /// Changes the lifetime of refresh tokens issued from now on (seconds).
    pub fn set_refresh_token_ttl(&self, secs: u64) {
        self.inner.refresh_ttl.store(secs, Ordering::Relaxed);
    }

    /// Current refresh-token lifetime in seconds.
    pub fn refresh_token_ttl(&self) -> u64 {
        self.inner.refresh_ttl.load(Ordering::Relaxed)
    }

    /// Whether a refresh token stays usable after it has been exchanged (see
    /// [`EmulatorConfig::refresh_token_reuse`]).
    pub fn set_refresh_token_reuse(&self, allowed: bool) {
        self.inner.refresh_reuse.store(allowed, Ordering::Relaxed);
    }

    /// Whether used refresh tokens are still accepted.
    pub fn refresh_token_reuse(&self) -> bool {
        self.inner.refresh_reuse.load(Ordering::Relaxed)
    }

    /// Whether `token` is a refresh token the grant would accept now (not revoked, not
    /// used up, not expired).
    pub fn refresh_token_active(&self, token: &str) -> bool {
        let now = self.now();
        self.store().refresh.get(token).is_some_and(|g| g.expires_at > now)
    }

    /// Ends every refresh token at once (as if they had all been revoked).
    pub fn revoke_all_refresh_tokens(&self) {
        self.store().refresh.clear();
    }

    /// How many single sign-on sessions are open.
    pub fn sso_sessions(&self) -> usize {
        self.store().sso_sessions.len()
    }

    /// The user with this e-mail (case-insensitive), including users created at login.
    pub fn user_by_email(&self, email: &str) -> Option<TestUser> {
        self.store().users.iter().find(|u| u.email.eq_ignore_ascii_case(email)).cloned()
    }

    /// The user with this `sub`.
    pub fn user_by_sub(&self, sub: &str) -> Option<TestUser> {
        self.store().users.iter().find(|u| u.sub == sub).cloned()
    }

    /// All users as they are now (roles as changed by [`Emulator::set_user_roles`]).
    pub fn users(&self) -> Vec<TestUser> {
        self.store().users.clone()
    }

    /// The current signing key (the only one in the JWKS).
    pub fn signing_key(&self) -> Arc<SigningKey> {
        Arc::clone(&self.store().key)
    }

    /// Seconds since the epoch on the emulator clock (host clock plus the offset).
    pub fn now(&self) -> i64 {
        util::unix_now().saturating_add(self.inner.clock_offset.load(Ordering::Relaxed))
    }

    /// The public base URL (`http://127.0.0.1:PORT`), known once the server has bound.
    pub fn base_url(&self) -> String {
        self.inner.base_url.get().cloned().unwrap_or_default()
    }

    /// `{base_url}/oauth/v4/{tenant}`: App ID's oAuthServerUrl and the token issuer.
    pub fn oauth_server_url(&self) -> String {
        format!("{}/oauth/v4/{}", self.base_url(), self.inner.config.tenant_id)
    }

    /// `{base_url}/management/v4/{tenant}`.
    pub fn management_url(&self) -> String {
        format!("{}/management/v4/{}", self.base_url(), self.inner.config.tenant_id)
    }

    pub(crate) fn set_base_url(&self, url: String) {
        // Only the first value sticks: a configured public URL wins over the bound address.
        let _ = self.inner.base_url.set(url);
    }

    pub(crate) fn count(&self, endpoint: Endpoint) {
        self.inner.counters[endpoint.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for a test double, so keep serving.
        self.inner.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks up a user by e-mail, creating a role-less one for an unknown address.
    pub(crate) fn user_for_login(&self, email: &str) -> TestUser {
        let mut store = self.store();
        if let Some(u) = store.users.iter().find(|u| u.email.eq_ignore_ascii_case(email)) {
            return u.clone();
        }
        let user = TestUser::from_email(email);
        store.users.push(user.clone());
        user
    }
}
