//! One contract for every backend of the session store, run against the in-process one and
//! against Redis (plain and TLS): the deny-list, one renewal per refresh token however many
//! requests on however many instances ask, the grace record, and what happens when Redis
//! stops and comes back.
//!
//! The Redis variants read `RAPPID_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6390`),
//! `RAPPID_TEST_REDISS_URL` and `RAPPID_TEST_REDIS_CA_FILE`; without them they print
//! `SKIPPED: ...` and pass, except under `CI=true` (`.ci/run` starts both servers). The
//! outage test starts and stops its own `redis-server` on a free loopback port.

// A test that cannot set up its fixtures has failed: panicking says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket_appid::appid::ProviderError;
use rocket_appid::auth::renewal::Renewal;
use rocket_appid::auth::session::Session;
use rocket_appid::auth::store::{
    Backend, DenyListOnError, Held, InProcess, Redis, RedisSettings, RenewalFuture, StoreUnavailable,
};

#[derive(Clone, Copy, Debug)]
enum Kind {
    InProcess,
    Redis,
    Rediss,
}

/// Skips a Redis variant whose server is not configured, unless this is CI.
fn skip(what: &str) -> Option<()> {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{what} is required under CI=true (.ci/run starts it)");
    }
    println!("SKIPPED: {what} is not set (see tests/store_contract.rs)");
    None
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn settings(url: String, ca_pem: Option<Vec<u8>>, grace: Duration) -> RedisSettings {
    RedisSettings {
        url,
        ca_pem,
        // Each test its own keys, so tests sharing one server do not meet.
        namespace: Some(format!("test-{:016x}", rand::random::<u64>())),
        grace,
        lock_ttl: Duration::from_secs(3),
        deny_list_on_error: DenyListOnError::Open,
    }
}

/// Where the Redis of `kind` is, if it is configured.
fn redis_of(kind: Kind) -> Option<(String, Option<Vec<u8>>)> {
    match kind {
        Kind::InProcess => None,
        Kind::Redis => match env("RAPPID_TEST_REDIS_URL") {
            Some(url) => Some((url, None)),
            None => skip("RAPPID_TEST_REDIS_URL").and(None),
        },
        Kind::Rediss => match (env("RAPPID_TEST_REDISS_URL"), env("RAPPID_TEST_REDIS_CA_FILE")) {
            (Some(url), Some(ca)) => Some((url, Some(std::fs::read(ca).expect("the test CA file")))),
            _ => skip("RAPPID_TEST_REDISS_URL or RAPPID_TEST_REDIS_CA_FILE").and(None),
        },
    }
}

/// Two handles on one store, as two instances of the app see it: for the in-process
/// backend the same store twice, for Redis two backends (two connections) on one server.
async fn two_instances(kind: Kind, grace: Duration) -> Option<(Arc<dyn Backend>, Arc<dyn Backend>)> {
    if let Kind::InProcess = kind {
        let store: Arc<dyn Backend> = Arc::new(InProcess::new(grace));
        return Some((store.clone(), store));
    }
    let (url, ca) = redis_of(kind)?;
    let first = settings(url, ca, grace);
    let second = RedisSettings { namespace: first.namespace.clone(), ..first.clone() };
    let a: Arc<dyn Backend> = Arc::new(Redis::new(first).expect("a Redis backend"));
    let b: Arc<dyn Backend> = Arc::new(Redis::new(second).expect("a Redis backend"));
    Some((a, b))
}

/// A session as its cookie holds it (a verified login is only made by the app itself).
fn session(access_token: &str, refresh_token: &str) -> Session {
    use base64::Engine;
    use sha2::Digest;
    let th = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(access_token));
    serde_json::from_value(serde_json::json!({
        "v": 3, "sid": "sid-1", "sub": "sub-1", "name": null, "email": null,
        "access_token": access_token, "th": th, "expires_at": now() + 3600,
        "created_at": now(), "last_seen": now(), "rt": refresh_token,
    }))
    .expect("a session in the cookie's format")
}

/// A renewal that counts its runs and takes `delay`.
fn counted(calls: &Arc<AtomicUsize>, delay: Duration, outcome: Renewal) -> RenewalFuture {
    let calls = calls.clone();
    Box::pin(async move {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        outcome
    })
}

fn key_of(refresh_token: &str) -> [u8; 32] {
    rocket_appid::appid::token_key(refresh_token)
}

fn unavailable() -> Renewal {
    Renewal::Unavailable(ProviderError::Unreachable { endpoint: "token", kind: "connect" })
}

// --- the contract ------------------------------------------------------------------------

async fn a_logout_is_seen_by_every_instance_until_the_session_ends(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_secs(30)).await else { return };
    a.deny("sid-live", now() + 60).await;
    a.deny("sid-short", now() + 1).await;
    a.deny("sid-ended", now() - 1).await;
    assert!(b.is_denied("sid-live").await && a.is_denied("sid-live").await);
    assert!(b.is_denied("sid-short").await);
    assert!(!b.is_denied("sid-ended").await, "nothing to refuse after the session's own end");
    assert!(!b.is_denied("sid-other").await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!b.is_denied("sid-short").await, "forgotten when the session would have ended");
    assert!(b.is_denied("sid-live").await);
}

async fn twenty_concurrent_requests_on_two_instances_make_one_renewal(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_secs(30)).await else { return };
    let calls = Arc::new(AtomicUsize::new(0));
    let renewed = Renewal::Renewed(Arc::new(session("access-2", "refresh-2")));
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let renew = counted(&calls, Duration::from_millis(300), renewed.clone());
        requests.spawn(async move { store.renew_once(key_of("refresh-1"), "refresh-1", renew).await });
    }
    let mut seen = 0;
    while let Some(outcome) = requests.join_next().await {
        match outcome.expect("no panic") {
            Renewal::Renewed(session) => assert_eq!(session.access_token.secret(), "access-2"),
            _ => panic!("every request gets the one renewal's outcome"),
        }
        seen += 1;
    }
    assert_eq!((seen, calls.load(Ordering::SeqCst)), (20, 1), "the refresh token was presented once");
}

async fn the_outcome_is_kept_for_the_grace_period_only(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_millis(1000)).await else { return };
    let calls = Arc::new(AtomicUsize::new(0));
    let fast = Duration::from_millis(10);
    let renewed = || Renewal::Renewed(Arc::new(session("access-3", "refresh-3")));
    a.renew_once(key_of("rt-grace"), "rt-grace", counted(&calls, fast, renewed())).await;
    match b.renew_once(key_of("rt-grace"), "rt-grace", counted(&calls, fast, unavailable())).await {
        Renewal::Renewed(session) => {
            assert_eq!(session.refresh_token().map(|t| t.secret()), Some("refresh-3"))
        }
        _ => panic!("a late request with the old refresh token gets the renewed session"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let rejected = || Renewal::Rejected("refresh_invalid_grant");
    a.renew_once(key_of("rt-rejected"), "rt-rejected", counted(&calls, fast, rejected())).await;
    let late = b.renew_once(key_of("rt-rejected"), "rt-rejected", counted(&calls, fast, renewed())).await;
    assert!(matches!(late, Renewal::Rejected("refresh_invalid_grant")), "a refusal is kept too");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    b.renew_once(key_of("rt-grace"), "rt-grace", counted(&calls, fast, renewed())).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "after the grace period the renewal runs again");
}

async fn an_outcome_the_provider_could_not_give_is_not_kept(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_secs(30)).await else { return };
    let calls = Arc::new(AtomicUsize::new(0));
    let fast = Duration::from_millis(10);
    let first = a.renew_once(key_of("rt-down"), "rt-down", counted(&calls, fast, unavailable())).await;
    assert!(matches!(first, Renewal::Unavailable(_)));
    let second = b.renew_once(key_of("rt-down"), "rt-down", counted(&calls, fast, unavailable())).await;
    assert!(matches!(second, Renewal::Unavailable(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the next request tries again");
}

async fn a_forgotten_renewal_is_forgotten_everywhere(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_secs(30)).await else { return };
    let calls = Arc::new(AtomicUsize::new(0));
    let fast = Duration::from_millis(10);
    let rejected = || Renewal::Rejected("refresh_refused");
    a.renew_once(key_of("rt-forget"), "rt-forget", counted(&calls, fast, rejected())).await;
    b.forget_renewal(key_of("rt-forget")).await;
    a.renew_once(key_of("rt-forget"), "rt-forget", counted(&calls, fast, rejected())).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "forgotten at logout, on every instance");
}

async fn a_server_side_session_is_read_by_every_instance_until_it_ends_or_is_deleted(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_secs(30)).await else { return };
    assert_eq!(b.session_record("sid-1").await, Ok(Held::Absent));
    a.put_session("sid-1", b"sealed one".to_vec(), now() + 60).await.unwrap();
    a.put_session("sid-short", b"sealed short".to_vec(), now() + 1).await.unwrap();
    assert_eq!(b.session_record("sid-1").await, Ok(Held::Record(b"sealed one".to_vec())));
    b.put_session("sid-1", b"sealed two".to_vec(), now() + 60).await.unwrap();
    assert_eq!(a.session_record("sid-1").await, Ok(Held::Record(b"sealed two".to_vec())), "replaced");
    assert_eq!(b.session_record("sid-short").await, Ok(Held::Record(b"sealed short".to_vec())));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(b.session_record("sid-short").await, Ok(Held::Absent), "gone at its end");
    b.delete_session("sid-1").await;
    assert_eq!(a.session_record("sid-1").await, Ok(Held::Absent), "deleted for every instance");
}

async fn a_logged_out_server_side_session_reads_as_logged_out_everywhere(kind: Kind) {
    let Some((a, b)) = two_instances(kind, Duration::from_secs(30)).await else { return };
    a.put_session("sid-out", b"sealed".to_vec(), now() + 60).await.unwrap();
    a.deny("sid-out", now() + 60).await;
    assert_eq!(b.session_record("sid-out").await, Ok(Held::LoggedOut));
    assert_eq!(a.session_record("sid-out").await, Ok(Held::LoggedOut));
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Kind::InProcess).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Kind::Redis).await })*
        }
        mod rediss {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Kind::Rediss).await })*
        }
    };
}

contract!(
    a_logout_is_seen_by_every_instance_until_the_session_ends,
    twenty_concurrent_requests_on_two_instances_make_one_renewal,
    the_outcome_is_kept_for_the_grace_period_only,
    an_outcome_the_provider_could_not_give_is_not_kept,
    a_forgotten_renewal_is_forgotten_everywhere,
    a_server_side_session_is_read_by_every_instance_until_it_ends_or_is_deleted,
    a_logged_out_server_side_session_reads_as_logged_out_everywhere,
);

// --- Redis only: the lock's lease and failures ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_slower_than_the_lock_ttl_still_runs_once() {
    let Some((url, ca)) = redis_of(Kind::Redis) else { return };
    let short =
        RedisSettings { lock_ttl: Duration::from_millis(300), ..settings(url, ca, Duration::from_secs(30)) };
    let a = Redis::new(short.clone()).expect("backend");
    let b = Redis::new(short).expect("backend");
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = Duration::from_millis(1000);
    let renewed = || Renewal::Renewed(Arc::new(session("access-4", "refresh-4")));
    let first = a.renew_once(key_of("rt-slow"), "rt-slow", counted(&calls, slow, renewed()));
    let second = async {
        // Well after the first took the lock, and after its TTL would have run out.
        tokio::time::sleep(Duration::from_millis(600)).await;
        b.renew_once(key_of("rt-slow"), "rt-slow", counted(&calls, slow, renewed())).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(matches!(first, Renewal::Renewed(_)));
    // The second waits up to the lock's TTL: then it answers 503 rather than present the
    // refresh token a second time.
    assert!(matches!(second, Renewal::Renewed(_) | Renewal::Unavailable(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the lock was extended while the renewal ran");
    let late = b.renew_once(key_of("rt-slow"), "rt-slow", counted(&calls, slow, renewed())).await;
    assert!(matches!(late, Renewal::Renewed(_)) && calls.load(Ordering::SeqCst) == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_has_a_ttl_and_nothing_usable_is_stored_in_clear() {
    let Some((url, ca)) = redis_of(Kind::Redis) else { return };
    let settings = settings(url.clone(), ca, Duration::from_secs(30));
    let prefix = format!("rappid:{}:", settings.namespace.as_deref().unwrap_or_default());
    let store = Redis::new(settings).expect("backend");
    store.deny("sid-secret-value", now() + 60).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let renewed = Renewal::Renewed(Arc::new(session("access-secret", "refresh-secret-new")));
    store
        .renew_once(
            key_of("refresh-secret-old"),
            "refresh-secret-old",
            counted(&calls, Duration::ZERO, renewed),
        )
        .await;
    let ticket = rocket_appid::auth::ticket::Ticket::new();
    let record = ticket.seal("sid-secret-value", b"{\"access_token\":\"access-secret\"}".to_vec());
    store.put_session("sid-secret-value", record.expect("sealed"), now() + 60).await.expect("stored");
    let mut connection = ::redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let keys: Vec<String> =
        ::redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut connection).await.expect("KEYS");
    assert_eq!(
        keys.len(),
        3,
        "the deny entry, the grace record (the lock is released) and the session: {keys:?}"
    );
    for key in keys {
        let ttl: i64 = ::redis::cmd("PTTL").arg(&key).query_async(&mut connection).await.expect("PTTL");
        assert!(ttl > 0, "{key} has a TTL");
        let value: Vec<u8> = ::redis::cmd("GET").arg(&key).query_async(&mut connection).await.expect("GET");
        let text = format!("{key} {}", String::from_utf8_lossy(&value));
        assert!(!text.contains("secret") && !text.contains("sub-1"), "nothing in clear: {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_cannot_be_reached_fails_open_and_falls_back_fast() {
    // A loopback port nobody listens on: connection refused at once.
    let port = free_port();
    for on_error in [DenyListOnError::Open, DenyListOnError::Closed] {
        let settings = RedisSettings {
            deny_list_on_error: on_error,
            ..settings(format!("redis://127.0.0.1:{port}"), None, Duration::from_secs(30))
        };
        let store = Redis::new(settings).expect("built without connecting");
        let started = Instant::now();
        store.deny("sid-here", now() + 60).await;
        assert!(store.is_denied("sid-here").await, "a logout on this instance always holds");
        let elsewhere = store.is_denied("sid-elsewhere").await;
        assert_eq!(elsewhere, on_error == DenyListOnError::Closed, "{on_error:?}");
        let unknown = store.check_denied("sid-elsewhere").await;
        assert_eq!(
            unknown,
            (on_error == DenyListOnError::Open).then_some(false),
            "closed: no answer, not a logout"
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let renewed = Renewal::Renewed(Arc::new(session("access-5", "refresh-5")));
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (store, renew) =
                (store.clone(), counted(&calls, Duration::from_millis(200), renewed.clone()));
            requests
                .spawn(async move { store.renew_once(key_of("rt-fallback"), "rt-fallback", renew).await });
        }
        while let Some(outcome) = requests.join_next().await {
            assert!(matches!(outcome.expect("no panic"), Renewal::Renewed(_)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the per-process single-flight still holds");
        // Server-side sessions fail closed whatever the deny-list setting: the store is
        // the only place they are.
        assert_eq!(store.put_session("sid-new", b"sealed".to_vec(), now() + 60).await, Err(StoreUnavailable));
        assert_eq!(store.session_record("sid-elsewhere").await, Err(StoreUnavailable));
        assert!(started.elapsed() < Duration::from_secs(3), "failed fast: {:?}", started.elapsed());
        assert!(store.errors() > 0, "counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_then_back_recovers_without_a_restart() {
    if env("RAPPID_TEST_REDIS_URL").is_none() {
        skip("RAPPID_TEST_REDIS_URL (the outage test also needs redis-server and redis-cli)");
        return;
    }
    let port = free_port();
    let mut server = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let settings = settings(url, None, Duration::from_secs(30));
    let a = Redis::new(settings.clone()).expect("backend");
    let b = Redis::new(settings).expect("backend");
    a.deny("sid-before", now() + 60).await;
    assert!(b.is_denied("sid-before").await);

    server.stop();
    a.deny("sid-during", now() + 60).await;
    assert!(a.is_denied("sid-during").await, "the logout holds on its own instance");
    assert!(!b.is_denied("sid-during").await, "fail open elsewhere while Redis is down");
    let calls = Arc::new(AtomicUsize::new(0));
    let renewed = || Renewal::Renewed(Arc::new(session("access-6", "refresh-6")));
    let outcome =
        b.renew_once(key_of("rt-outage"), "rt-outage", counted(&calls, Duration::ZERO, renewed())).await;
    assert!(matches!(outcome, Renewal::Renewed(_)), "renewal falls back to this instance");

    server = OwnRedis::start(port);
    // The logout made during the outage reaches the other instance by the background
    // retry (1 s, 2 s, 4 s, ...), without anybody restarting anything.
    let deadline = Instant::now() + Duration::from_secs(12);
    while !b.is_denied("sid-during").await {
        assert!(Instant::now() < deadline, "the deferred logout never reached Redis");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.deny("sid-after", now() + 60).await;
    assert!(b.is_denied("sid-after").await, "shared again");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_down_at_start_is_used_once_it_comes_up() {
    if env("RAPPID_TEST_REDIS_URL").is_none() {
        skip("RAPPID_TEST_REDIS_URL (this test also needs redis-server and redis-cli)");
        return;
    }
    let port = free_port();
    let settings = settings(format!("redis://127.0.0.1:{port}"), None, Duration::from_secs(30));
    let (a, b) = (Redis::new(settings.clone()).expect("backend"), Redis::new(settings).expect("backend"));
    assert!(!b.is_denied("sid-early").await, "fails open while Redis is not there");
    let mut server = OwnRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.deny("sid-late", now() + 60).await;
        if b.is_denied("sid-late").await {
            break;
        }
        assert!(Instant::now() < deadline, "never connected after Redis came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `redis-server` of the test's own, stopped (by its port) when dropped.
struct OwnRedis {
    port: u16,
    running: bool,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let status = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "yes", "--logfile", ""])
            .status()
            .expect("redis-server runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { port, running: true }
    }

    fn stop(&mut self) {
        if self.running {
            let _ =
                Command::new("redis-cli").args(["-p", &self.port.to_string(), "shutdown", "nosave"]).status();
            self.running = false;
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
