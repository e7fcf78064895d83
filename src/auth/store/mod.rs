//! The state that decides who is signed in beyond the cookie itself: the logout deny-list,
//! the silent renewals in flight (with their grace records) and, in the server-side
//! session mode, the sessions themselves (sealed under their ticket's key). Owned by the app (Rocket
//! managed state, built by the composition root), behind one interface so that another
//! backend, shared by several instances, can take the in-process one's place: [`InProcess`]
//! (one instance; the default) or [`Redis`] (several instances, one truth).

mod in_process;
mod redis;
pub(crate) mod seal;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::renewal::Renewal;
use crate::config::AppIdConfig;

pub use in_process::InProcess;
pub use redis::{DenyListOnError, Redis, RedisSettings, RedisSetupError};

/// Most logged-out sessions and renewals remembered at once per backend.
const CAPACITY: u64 = 10_000;

/// The store could not be asked (unreachable, timed out, or left alone after errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUnavailable;

/// What the store holds for a server-side session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The sealed record.
    Record(Vec<u8>),
    /// Nothing: never stored, expired, evicted or deleted at logout.
    Absent,
    /// The session was logged out.
    LoggedOut,
}

/// A renewal to run at most once per refresh token.
pub type RenewalFuture = Pin<Box<dyn Future<Output = Renewal> + Send>>;

/// What a backend of the session store does. Every method is a question to or an update of
/// state that may live in another process.
#[rocket::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Remembers that session `sid` was logged out; its cookies would have worked until
    /// `until` (seconds since the epoch), so it is remembered that long.
    async fn deny(&self, sid: &str, until: i64);

    /// True if session `sid` was logged out.
    async fn is_denied(&self, sid: &str) -> bool;

    /// Whether session `sid` was logged out, or `None` when the deny-list cannot be read and
    /// the store is set to fail closed: then no one's session can be vouched for, and the
    /// request gets the 503 page while the cookie is kept (a store failure ends no session).
    async fn check_denied(&self, sid: &str) -> Option<bool> {
        Some(self.is_denied(sid).await)
    }

    /// Runs `renew` for `refresh_token` (`key` names the session state being renewed: a
    /// digest of the refresh token and the access token it replaces), unless a renewal with it is in
    /// flight (then its outcome is awaited) or finished within the grace period (then its
    /// outcome is returned): a refresh token is presented to the provider once. Outcomes
    /// that say the provider could not be asked are not kept, so the next request tries again.
    /// The token itself is what a shared backend seals the kept outcome with, so that only
    /// a holder of the old session can read the renewed one.
    async fn renew_once(&self, key: [u8; 32], refresh_token: &str, renew: RenewalFuture) -> Renewal;

    /// Forgets the renewal kept under `key` (at logout).
    async fn forget_renewal(&self, key: [u8; 32]);

    /// Keeps the sealed record of server-side session `sid` until `until` (seconds since
    /// the epoch), replacing an earlier one.
    async fn put_session(&self, sid: &str, record: Vec<u8>, until: i64) -> Result<(), StoreUnavailable>;

    /// The record of server-side session `sid`, and whether it was logged out, in one
    /// question to the store.
    async fn session_record(&self, sid: &str) -> Result<Held, StoreUnavailable>;

    /// Deletes the record of server-side session `sid` (at logout).
    async fn delete_session(&self, sid: &str);

    /// True while a shared store keeps failing and each instance uses its own state (for
    /// `/ready`, which stays ready: the fallbacks serve).
    fn degraded(&self) -> bool {
        false
    }
}

/// The app's session store (managed state); cheap to clone.
#[derive(Clone)]
pub struct SessionStore(Arc<dyn Backend>);

impl std::ops::Deref for SessionStore {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl SessionStore {
    /// The in-process backend: correct for one instance; with several, each has its own.
    pub fn in_process(config: &AppIdConfig) -> Self {
        SessionStore::with_backend(InProcess::new(Duration::from_secs(config.refresh_grace_secs)))
    }

    /// A store with another backend.
    pub fn with_backend(backend: impl Backend) -> Self {
        SessionStore(Arc::new(backend))
    }
}
