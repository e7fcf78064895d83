//! The Redis backend: one deny-list and one renewal per refresh token for every instance
//! of the app (design and failure table: `docs/DEPLOYMENT.md`, the issue's scale-out note).
//!
//! Keys (prefix `rappid:` plus the namespace), each with a TTL, none holding a token or a
//! secret in clear:
//! - `deny:{h(sid)}` = `1` until the session would have ended (`EXAT`);
//! - `lock:rt:{h}` = a random owner, `PX` token timeout + 2 s, extended while the renewal
//!   runs and released by compare-and-delete (a late holder never frees a successor's lock);
//! - `rt:{h}` = the renewal's outcome sealed under a key derived from the old refresh
//!   token (see `seal`), `PX` the grace period;
//! - `session:{h(sid)}` = a server-side session sealed under its ticket's key, which only
//!   the session's cookie holds, until the session ends (`EXAT`);
//! - `budget:token:{second}` = token-endpoint calls of every instance in that second.
//!
//! When Redis fails, nobody is signed out because of it: the deny-list is read from this
//! instance's own copy plus Redis, and a failed read counts as "not denied" (unless the
//! deployment chose `closed`); a failed write still denies on this instance and is retried
//! in the background; renewals fall back to this instance's single-flight. After a few
//! errors in a row Redis is not asked for a moment, so an outage costs little latency.

use crate::metrics::Metrics;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, Script};
use sha2::{Digest, Sha256};

use super::{in_process::InProcess, seal, Backend, Held, RenewalFuture, StoreUnavailable};
use crate::appid::ProviderError;
use crate::auth::renewal::Renewal;

/// How long Redis may take to answer one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// How long one connection attempt (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The most one store operation may take, waiting for a reconnection included: past it the
/// operation counts as failed and the request goes on without the store.
const OPERATION_DEADLINE: Duration = Duration::from_millis(500);
/// Errors in a row after which Redis is left alone for [`PAUSE_AFTER_ERRORS`].
const ERRORS_BEFORE_PAUSE: u32 = 3;
const PAUSE_AFTER_ERRORS: Duration = Duration::from_secs(1);
/// How often an instance that waits for another's renewal looks for its outcome.
const POLL_EVERY: Duration = Duration::from_millis(75);
/// Retries of a deny-list write that failed (the instance denies locally at once).
const DENY_RETRIES: [u64; 5] = [1, 2, 4, 8, 16];

/// What `is_denied` answers when Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyListOnError {
    /// Not denied (unless this instance denied it itself): the access token is still
    /// verified on every request, so a store outage does not sign everybody out.
    #[default]
    Open,
    /// Denied: no session counts while the deny-list cannot be read. (`is_denied` can only
    /// say yes or no, so the session code treats this like a logout.)
    Closed,
}

/// What the Redis backend is built from.
#[derive(Clone)]
pub struct RedisSettings {
    /// `rediss://…` (or `redis://` on loopback); holds the password: never logged.
    pub url: String,
    /// PEM CA certificate(s) to trust instead of the system's (IBM Cloud Databases for
    /// Redis signs its certificates with its own CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Separates the keys of several apps or environments in one Redis.
    pub namespace: Option<String>,
    /// How long a renewal's outcome is served to requests with the old refresh token.
    pub grace: Duration,
    /// How long one instance may hold a refresh token's lock before another may take it:
    /// longer than the token call may take.
    pub lock_ttl: Duration,
    pub deny_list_on_error: DenyListOnError,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"[redacted]")
            .field("namespace", &self.namespace)
            .field("grace", &self.grace)
            .field("lock_ttl", &self.lock_ttl)
            .field("deny_list_on_error", &self.deny_list_on_error)
            .finish_non_exhaustive()
    }
}

/// Why the backend could not be built. The messages never quote the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisSetupError {
    #[error("is not a Redis URL the client accepts")]
    Url,
    #[error("the CA certificate or the TLS setup was not accepted")]
    Tls,
    #[error("needs a Tokio runtime")]
    NoRuntime,
}

/// The Redis backend; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct Redis(Arc<Inner>);

struct Inner {
    connection: ConnectionManager,
    prefix: String,
    grace: Duration,
    lock_ttl: Duration,
    on_error: DenyListOnError,
    /// This instance's own deny-list (every deny is mirrored here, so a logout works on
    /// this instance whatever Redis does) and single-flight (concurrent requests of this
    /// instance make one round of Redis calls; the fallback when Redis fails).
    local: InProcess,
    health: Health,
    /// Store calls and their time, by operation and outcome (`/metrics`).
    metrics: Option<Metrics>,
    release: Script,
    extend: Script,
}

/// Frees a lock only for its owner.
const RELEASE: &str =
    r"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/// Extends a lock only for its owner.
const EXTEND: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

impl Redis {
    /// The backend for `settings`. Connects in the background: the app starts, and serves
    /// with the fallbacks, while Redis is unreachable. Must be called within a Tokio runtime.
    pub fn new(settings: RedisSettings) -> Result<Self, RedisSetupError> {
        Redis::new_counted(settings, None)
    }

    /// [`Redis::new`], counting every store call (by operation and outcome) and its time in
    /// `metrics`.
    pub fn new_counted(settings: RedisSettings, metrics: Option<Metrics>) -> Result<Self, RedisSetupError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisSetupError::NoRuntime);
        }
        let client = match &settings.ca_pem {
            Some(pem) => {
                let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) };
                redis::Client::build_with_tls(settings.url.as_str(), certificates).map_err(|error| {
                    if error.kind() == redis::ErrorKind::InvalidClientConfig {
                        RedisSetupError::Url
                    } else {
                        RedisSetupError::Tls
                    }
                })?
            }
            None => redis::Client::open(settings.url.as_str()).map_err(|_| RedisSetupError::Url)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|_| RedisSetupError::Url)?;
        let prefix = match settings.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            Some(namespace) => format!("rappid:{namespace}:"),
            None => "rappid:".to_string(),
        };
        let inner = Arc::new(Inner {
            connection,
            prefix,
            grace: settings.grace,
            lock_ttl: settings.lock_ttl,
            on_error: settings.deny_list_on_error,
            local: InProcess::new(settings.grace),
            health: Health::new(),
            release: Script::new(RELEASE),
            extend: Script::new(EXTEND),
            metrics,
        });
        // The first connection (TLS to a remote service may take longer than a request
        // should wait) is made now rather than by the first request.
        let warm = inner.clone();
        tokio::spawn(async move {
            let mut connection = warm.connection.clone();
            match redis::cmd("PING").query_async::<()>(&mut connection).await {
                Ok(()) => tracing::info!(event = "store_connected", store = "redis"),
                Err(error) => warm.health.failed("connect", &error),
            }
        });
        Ok(Redis(inner))
    }

    /// Store operations that failed or were skipped since the start (also logged).
    pub fn errors(&self) -> u64 {
        self.0.health.errors.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}{id}", self.prefix)
    }

    /// The key of session `sid`'s entry of `kind`: named by the id's SHA-256, so the store
    /// never shows a session id.
    fn session_key(&self, kind: &str, sid: &str) -> String {
        self.key(kind, &hex(&Sha256::digest(sid.as_bytes())))
    }

    /// Runs one store operation within [`OPERATION_DEADLINE`], unless the store is being
    /// left alone after errors. `Err(())`: it failed (already logged and counted).
    async fn call<T>(
        &self,
        op: &'static str,
        operation: impl std::future::Future<Output = RedisResult<T>>,
    ) -> Result<T, ()> {
        if self.health.paused() {
            self.health.errors.fetch_add(1, Ordering::Relaxed);
            if let Some(metrics) = &self.metrics {
                metrics.store_call(op, "skipped", Duration::ZERO);
            }
            return Err(());
        }
        let started = std::time::Instant::now();
        let (result, outcome) = match tokio::time::timeout(OPERATION_DEADLINE, operation).await {
            Ok(Ok(value)) => {
                self.health.succeeded();
                (Ok(value), "ok")
            }
            Ok(Err(error)) => {
                self.health.failed(op, &error);
                (Err(()), "error")
            }
            Err(_) => {
                self.health.timed_out(op);
                (Err(()), "timeout")
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.store_call(op, outcome, started.elapsed());
        }
        result
    }

    async fn set_deny(&self, key: &str, until: i64) -> Result<(), ()> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("SET").arg(key).arg(1).arg("EXAT").arg(until).clone();
        self.call("deny", async move { command.query_async::<()>(&mut connection).await }).await
    }

    async fn grace_record(&self, key: &str, refresh_token: &str) -> Result<Option<Renewal>, ()> {
        let mut connection = self.connection.clone();
        let sealed: Option<Vec<u8>> =
            self.call("grace_read", redis::cmd("GET").arg(key).query_async(&mut connection)).await?;
        Ok(sealed.and_then(|sealed| seal::open(&sealed, refresh_token, key)))
    }

    /// The renewal for `refresh_token` across instances (see the module comment).
    async fn renew_across(
        self: Arc<Self>,
        h: String,
        refresh_token: String,
        renew: RenewalFuture,
    ) -> Renewal {
        let grace_key = self.key("rt:", &h);
        match self.grace_record(&grace_key, &refresh_token).await {
            Ok(Some(outcome)) => return outcome,
            Ok(None) => {}
            Err(()) => return renew.await,
        }
        let lock_key = self.key("lock:rt:", &h);
        let owner = hex(&random_bytes());
        let lock_ms = millis(self.lock_ttl);
        let mut connection = self.connection.clone();
        let command = redis::cmd("SET").arg(&lock_key).arg(&owner).arg("NX").arg("PX").arg(lock_ms).clone();
        let won: Option<String> =
            match self.call("lock", async { command.query_async(&mut connection).await }).await {
                Ok(won) => won,
                Err(()) => return renew.await,
            };
        if won.is_some() {
            self.renew_holding_lock(&grace_key, &lock_key, &owner, &refresh_token, renew).await
        } else {
            self.await_other_instance(&grace_key, &lock_key, &refresh_token).await
        }
    }

    async fn renew_holding_lock(
        &self,
        grace_key: &str,
        lock_key: &str,
        owner: &str,
        refresh_token: &str,
        renew: RenewalFuture,
    ) -> Renewal {
        // Another instance may have finished between the first look and the lock.
        if let Ok(Some(outcome)) = self.grace_record(grace_key, refresh_token).await {
            self.release_lock(lock_key, owner).await;
            return outcome;
        }
        // The lock outlives a renewal slower than its TTL (a slow token call, a key fetch
        // on top): it is extended while the renewal runs, so no other instance ever
        // presents this refresh token meanwhile.
        let extend_lock = async {
            let every = self.lock_ttl / 3;
            loop {
                tokio::time::sleep(every).await;
                let mut connection = self.connection.clone();
                let mut invocation = self.extend.key(lock_key);
                invocation.arg(owner).arg(millis(self.lock_ttl));
                let _ = self.call("lock_extend", invocation.invoke_async::<i64>(&mut connection)).await;
            }
        };
        let outcome = tokio::select! {
            outcome = renew => outcome,
            () = extend_lock => elsewhere(),
        };
        if let Some(sealed) = seal::seal(&outcome, refresh_token, grace_key) {
            let mut connection = self.connection.clone();
            let command =
                redis::cmd("SET").arg(grace_key).arg(sealed).arg("PX").arg(millis(self.grace)).clone();
            let _ =
                self.call("grace_write", async { command.query_async::<()>(&mut connection).await }).await;
        }
        self.release_lock(lock_key, owner).await;
        outcome
    }

    async fn release_lock(&self, lock_key: &str, owner: &str) {
        let mut connection = self.connection.clone();
        let mut invocation = self.release.key(lock_key);
        invocation.arg(owner);
        // If this fails the lock ends with its TTL.
        let _ = self.call("lock_release", invocation.invoke_async::<i64>(&mut connection)).await;
    }

    /// Another instance is renewing with this refresh token: its outcome, once it is kept.
    async fn await_other_instance(&self, grace_key: &str, lock_key: &str, refresh_token: &str) -> Renewal {
        let deadline = Instant::now() + self.lock_ttl;
        while Instant::now() < deadline {
            tokio::time::sleep(POLL_EVERY).await;
            let mut connection = self.connection.clone();
            // The lock first: the winner keeps its outcome before it frees the lock, so a
            // free lock and no record mean there is no outcome to wait for.
            let pipeline = redis::pipe().exists(lock_key).get(grace_key).clone();
            let looked = self.call("grace_wait", async { pipeline.query_async(&mut connection).await }).await;
            // On an error the other instance may be presenting the token right now: never
            // present it a second time, keep waiting.
            if let Ok((locked, sealed)) = looked {
                let (locked, sealed): (bool, Option<Vec<u8>>) = (locked, sealed);
                if let Some(outcome) = sealed.and_then(|sealed| seal::open(&sealed, refresh_token, grace_key))
                {
                    return outcome;
                }
                if !locked {
                    // The other instance could not ask the provider (such outcomes are not
                    // kept) or stopped: this request gets a 503, the next one tries.
                    break;
                }
            }
        }
        elsewhere()
    }
}

/// No outcome to share: another instance's renewal could not be awaited.
fn elsewhere() -> Renewal {
    Renewal::Unavailable(ProviderError::Unreachable { endpoint: "token", kind: "renewal_elsewhere" })
}

#[rocket::async_trait]
impl Backend for Redis {
    async fn deny(&self, sid: &str, until: i64) {
        self.0.local.deny(sid, until).await;
        if until <= crate::clock::now() {
            return;
        }
        let key = self.0.session_key("deny:", sid);
        if self.0.set_deny(&key, until).await.is_ok() {
            return;
        }
        tracing::warn!(
            event = "store_deny_deferred",
            "logout recorded on this instance only for now; retrying"
        );
        let inner = self.0.clone();
        tokio::spawn(async move {
            for wait in DENY_RETRIES {
                tokio::time::sleep(Duration::from_secs(wait)).await;
                if until <= crate::clock::now() || inner.set_deny(&key, until).await.is_ok() {
                    return;
                }
            }
            tracing::error!(
                event = "store_deny_lost",
                "a logout could not be shared with the other instances"
            );
        });
    }

    async fn is_denied(&self, sid: &str) -> bool {
        self.check_denied(sid).await.unwrap_or(true)
    }

    fn degraded(&self) -> bool {
        self.0.health.in_a_row.load(Ordering::Relaxed) >= ERRORS_BEFORE_PAUSE
    }

    async fn check_denied(&self, sid: &str) -> Option<bool> {
        if self.0.local.is_denied(sid).await {
            return Some(true);
        }
        let key = self.0.session_key("deny:", sid);
        let mut connection = self.0.connection.clone();
        match self
            .0
            .call("is_denied", redis::cmd("EXISTS").arg(&key).query_async::<bool>(&mut connection))
            .await
        {
            Ok(denied) => Some(denied),
            Err(()) if self.0.on_error == DenyListOnError::Closed => None,
            Err(()) => Some(false),
        }
    }

    async fn renew_once(&self, key: [u8; 32], refresh_token: &str, renew: RenewalFuture) -> Renewal {
        let inner = self.0.clone();
        let refresh_token = refresh_token.to_string();
        // Its own task, like the refresh itself: a request that goes away half-way must
        // not leave the lock held without the outcome being kept.
        // (Built lazily: only the one caller of this instance that runs it spawns it.)
        let secret = refresh_token.clone();
        let across = Box::pin(async move {
            tokio::spawn(inner.renew_across(hex(&key), secret, renew)).await.unwrap_or(Renewal::Unavailable(
                ProviderError::Unreachable { endpoint: "token", kind: "request" },
            ))
        });
        let outcome = self.0.local.renew_once(key, &refresh_token, across).await;
        // While Redis works it keeps the outcome, where a logout on any instance forgets it;
        // this instance's copy is kept only when Redis could not be used.
        if !self.0.health.failing() {
            self.0.local.forget_renewal(key).await;
        }
        outcome
    }

    async fn put_session(&self, sid: &str, record: Vec<u8>, until: i64) -> Result<(), StoreUnavailable> {
        let key = self.0.session_key("session:", sid);
        let mut connection = self.0.connection.clone();
        let command = redis::cmd("SET").arg(&key).arg(record).arg("EXAT").arg(until).clone();
        self.0
            .call("session_write", async { command.query_async::<()>(&mut connection).await })
            .await
            .map_err(|()| StoreUnavailable)
    }

    async fn session_record(&self, sid: &str) -> Result<Held, StoreUnavailable> {
        if self.0.local.is_denied(sid).await {
            return Ok(Held::LoggedOut);
        }
        // One digest for both keys: this runs on every request of a server-side session.
        let h = hex(&Sha256::digest(sid.as_bytes()));
        let (session_key, deny_key) = (self.0.key("session:", &h), self.0.key("deny:", &h));
        let mut connection = self.0.connection.clone();
        // One round trip: the record and the deny-list entry, pipelined.
        let pipeline = redis::pipe().get(&session_key).exists(&deny_key).clone();
        let (record, denied): (Option<Vec<u8>>, bool) = self
            .0
            .call("session_read", async { pipeline.query_async(&mut connection).await })
            .await
            .map_err(|()| StoreUnavailable)?;
        Ok(match (record, denied) {
            (_, true) => Held::LoggedOut,
            (Some(record), false) => Held::Record(record),
            (None, false) => Held::Absent,
        })
    }

    async fn delete_session(&self, sid: &str) {
        let key = self.0.session_key("session:", sid);
        let mut connection = self.0.connection.clone();
        // If this fails the deny-list entry (written and retried by the logout) still
        // refuses the session, and the record ends with its TTL.
        let _ = self
            .0
            .call("session_delete", redis::cmd("DEL").arg(&key).query_async::<i64>(&mut connection))
            .await;
    }

    async fn forget_renewal(&self, key: [u8; 32]) {
        self.0.local.forget_renewal(key).await;
        let grace_key = self.0.key("rt:", &hex(&key));
        let mut connection = self.0.connection.clone();
        let _ = self
            .0
            .call("forget_renewal", redis::cmd("DEL").arg(&grace_key).query_async::<i64>(&mut connection))
            .await;
    }
}

/// Token-endpoint calls of every instance, counted per second of the clock in Redis.
#[rocket::async_trait]
impl crate::appid::SharedBudget for Redis {
    async fn take(&self, per_sec: u32) -> Option<bool> {
        let key = self.0.key("budget:token:", &crate::clock::now().to_string());
        let mut connection = self.0.connection.clone();
        // The counter outlives its second a little, for instances whose clocks lag.
        let pipeline = redis::pipe().incr(&key, 1).expire(&key, 5).ignore().clone();
        let (count,): (u64,) =
            self.0.call("budget", async { pipeline.query_async(&mut connection).await }).await.ok()?;
        Some(count <= u64::from(per_sec))
    }
}

/// Errors in a row, and the pause after too many (a small circuit breaker).
struct Health {
    started: Instant,
    in_a_row: AtomicU32,
    paused_until_ms: AtomicU64,
    errors: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Health {
            started: Instant::now(),
            in_a_row: AtomicU32::new(0),
            paused_until_ms: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.started.elapsed())
    }

    fn paused(&self) -> bool {
        self.now_ms() < self.paused_until_ms.load(Ordering::Relaxed)
    }

    /// True while the last store operation failed.
    fn failing(&self) -> bool {
        self.in_a_row.load(Ordering::Relaxed) > 0
    }

    fn succeeded(&self) {
        if self.in_a_row.swap(0, Ordering::Relaxed) >= ERRORS_BEFORE_PAUSE {
            tracing::info!(event = "store_recovered", store = "redis");
        }
    }

    fn failed(&self, op: &'static str, error: &RedisError) {
        // The kind only: a server's message may quote what it was sent.
        let kind = if error.is_timeout() {
            "timeout"
        } else if error.is_connection_refusal() {
            "refused"
        } else if error.is_connection_dropped() || error.is_io_error() {
            "connection"
        } else {
            "error"
        };
        self.note_failure(op, kind);
    }

    fn timed_out(&self, op: &'static str) {
        self.note_failure(op, "deadline");
    }

    fn note_failure(&self, op: &'static str, kind: &'static str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let in_a_row = self.in_a_row.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if in_a_row < ERRORS_BEFORE_PAUSE {
            tracing::warn!(event = "store_error", store = "redis", op, kind);
        } else {
            if in_a_row == ERRORS_BEFORE_PAUSE {
                tracing::error!(
                    event = "store_degraded",
                    store = "redis",
                    op,
                    kind,
                    "Redis is failing: deny-list and renewals use this instance's own state"
                );
            }
            self.paused_until_ms
                .store(self.now_ms().saturating_add(millis(PAUSE_AFTER_ERRORS)), Ordering::Relaxed);
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn random_bytes() -> [u8; 16] {
    rand::random()
}

/// Lowercase hex; by table, as it names a key on every request.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}
