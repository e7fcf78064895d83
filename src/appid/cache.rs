//! The client's caches. [`Cached`]: one value fetched from the provider, kept for a
//! while, refreshed by one caller at a time, and served stale when a refresh fails (the
//! provider may be down). [`KeyedCache`]: values by key (tokens, users), each kept until
//! its own deadline, bounded in number; with [`KeyedCache::get_or_refresh`] an answer is
//! kept past its freshness, so that its caller may serve it while the provider cannot be
//! asked (stale-if-error).

use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use tokio::sync::{Mutex, RwLock};

use super::error::ProviderError;

/// A single-flight cache of one value.
#[derive(Debug)]
pub struct Cached<T> {
    current: RwLock<Option<(Arc<T>, Instant)>>,
    /// Held while fetching; remembers when a fetch was last forced.
    refreshing: Mutex<Option<Instant>>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached { current: RwLock::new(None), refreshing: Mutex::new(None) }
    }
}

impl<T> Cached<T> {
    /// The value if it is younger than `max_age`; otherwise fetch it (one fetch at a
    /// time). If the fetch fails, an older value is still served; with none, the error.
    pub async fn get<F, Fut>(&self, max_age: Duration, fetch: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        if let Some(value) = self.fresh(max_age).await {
            return Ok(value);
        }
        let _only_one = self.refreshing.lock().await;
        // Someone else may have refreshed while we waited for the lock.
        if let Some(value) = self.fresh(max_age).await {
            return Ok(value);
        }
        self.store(fetch().await).await
    }

    /// Fetch again now, unless a forced fetch already happened within `cooldown` (used
    /// when a token names a key we do not know: a rotation is picked up at once, but a
    /// stream of made-up key ids causes at most one fetch per cooldown).
    pub async fn force_refresh<F, Fut>(&self, cooldown: Duration, fetch: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut last_forced = self.refreshing.lock().await;
        if last_forced.is_some_and(|at| at.elapsed() < cooldown) {
            return self.stale_or(ProviderError::Untrusted("no keys yet")).await;
        }
        *last_forced = Some(Instant::now());
        self.store(fetch().await).await
    }

    /// The current value, however old, without fetching.
    pub async fn peek(&self) -> Option<Arc<T>> {
        self.current.read().await.as_ref().map(|(value, _)| value.clone())
    }

    async fn fresh(&self, max_age: Duration) -> Option<Arc<T>> {
        let current = self.current.read().await;
        current.as_ref().filter(|(_, fetched)| fetched.elapsed() < max_age).map(|(value, _)| value.clone())
    }

    /// Keeps a fetched value; after a failed fetch, serves the previous one if any.
    async fn store(&self, fetched: Result<T, ProviderError>) -> Result<Arc<T>, ProviderError> {
        match fetched {
            Ok(value) => {
                let value = Arc::new(value);
                *self.current.write().await = Some((value.clone(), Instant::now()));
                Ok(value)
            }
            Err(error) => self.stale_or(error).await,
        }
    }

    async fn stale_or(&self, error: ProviderError) -> Result<Arc<T>, ProviderError> {
        match self.current.read().await.as_ref() {
            Some((stale, _)) => Ok(stale.clone()),
            None => Err(error),
        }
    }
}

/// Values by key, each kept until its own deadline; at most `capacity` of them. A full
/// cache evicts the entries least likely to be asked for again (moka: TinyLFU admission,
/// least recently used first), never all at once. Concurrent misses on one key share a
/// single fetch, so "at most one provider call per key per TTL" holds under load.
pub struct KeyedCache<K, V> {
    entries: moka::future::Cache<K, Timed<V>>,
    /// The cache's name in the metrics.
    name: crate::metrics::Cache,
    metrics: crate::metrics::Metrics,
}

/// A cached value with the moments it stops being fresh and stops being held.
#[derive(Clone)]
struct Timed<V> {
    value: V,
    /// When the value was asked for (its age is measured from here, so never understated).
    asked_at: Instant,
    /// Until then the value is served without asking again.
    fresh_until: Instant,
    /// Until then the value is held: `fresh_until`, or later when the caller may serve it
    /// stale while the provider cannot be asked.
    expires_at: Instant,
    /// The last refresh of this stale value failed, when and why: callers that waited for
    /// that refresh share its outcome instead of each asking the provider in turn.
    failed: Option<Arc<(Instant, ProviderError)>>,
}

impl<V> Timed<V> {
    fn new(value: V, asked_at: Instant, fresh_for: Duration, keep_for: Duration) -> Self {
        let fresh_until = asked_at + fresh_for;
        Timed { value, asked_at, fresh_until, expires_at: fresh_until.max(asked_at + keep_for), failed: None }
    }
}

/// The outcome of [`KeyedCache::get_or_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed<V> {
    /// Within its freshness, or just fetched.
    Fresh(V),
    /// The value was missing or stale and fetching it failed; `last` is the value still
    /// held, with its age, for the caller to decide whether to serve it.
    Failed { error: ProviderError, last: Option<(V, Duration)> },
}

/// Each entry expires at its own `expires_at`, fixed when it was looked up or inserted
/// (so an introspection answer is never served past the token's expiry, however long the
/// fetch took); a replaced entry takes the new value's deadline.
struct AtDeadline;

impl<K, V> moka::Expiry<K, Timed<V>> for AtDeadline {
    fn expire_after_create(&self, _: &K, entry: &Timed<V>, created_at: Instant) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _: &K,
        entry: &Timed<V>,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(updated_at))
    }
}

impl<K, V> KeyedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty cache holding at most `capacity` entries, named `name` in the metrics.
    pub fn new(name: crate::metrics::Cache, capacity: u64, metrics: crate::metrics::Metrics) -> Self {
        let entries = moka::future::Cache::builder().max_capacity(capacity).expire_after(AtDeadline).build();
        KeyedCache { entries, name, metrics }
    }

    /// The cached value for `key`, or the result of `fetch`, kept for `ttl`. Callers that
    /// miss at the same time wait for one fetch and share its result, an error included;
    /// an error is not kept. The key is borrowed (e.g. `&str` for `String` keys) and
    /// copied only on a miss: a hit, the case on every request, allocates nothing.
    pub async fn get_or_fetch<Q, E, F, Fut>(&self, key: &Q, ttl: Duration, fetch: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        if let Some(hit) = self.entries.get(key).await {
            self.metrics.cache_lookup(self.name, true);
            return Ok(hit.value);
        }
        self.metrics.cache_lookup(self.name, false);
        // Measured from the lookup, not from the end of the fetch.
        let asked_at = Instant::now();
        let fetched = async { fetch().await.map(|value| Timed::new(value, asked_at, ttl, ttl)) };
        // Boxed: moka's fetch future is large, and this one sits inside every guard's
        // future, which is moved (copied) whole on each request, hit or miss.
        match Box::pin(self.entries.try_get_with_by_ref(key, fetched)).await {
            Ok(entry) => Ok(entry.value),
            Err(shared) => Err(Arc::unwrap_or_clone(shared)),
        }
    }

    /// Stores a value fetched elsewhere (e.g. roles read during login), replacing any.
    pub async fn insert(&self, key: K, value: V, ttl: Duration) {
        self.insert_kept(key, value, ttl, ttl).await;
    }

    /// [`Self::insert`] for a cache read with [`Self::get_or_refresh`]: fresh for
    /// `fresh_for`, held for `keep_for`.
    pub async fn insert_kept(&self, key: K, value: V, fresh_for: Duration, keep_for: Duration) {
        self.entries.insert(key, Timed::new(value, Instant::now(), fresh_for, keep_for)).await;
    }

    /// The value for `key` if one is held and fresh (no fetch).
    pub async fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .await
            .filter(|entry| Instant::now() < entry.fresh_until)
            .map(|entry| entry.value)
    }

    /// The value for `key` however stale, with its age, if one is still held (no fetch).
    pub async fn last<Q>(&self, key: &Q) -> Option<(V, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).await.map(|entry| (entry.value, entry.asked_at.elapsed()))
    }

    /// The fresh value for `key`, or the result of `fetch`, fresh for `fresh_for` and held
    /// for `keep_for` (at least `fresh_for`). When the fetch fails, the value still held is
    /// handed back with the error ([`Refreshed::Failed`]): the caller decides whether it may
    /// be served. A hit allocates nothing, as with [`Self::get_or_fetch`]. Concurrent
    /// callers share one fetch, a failed one included, whether the value was missing (as
    /// in `get_or_fetch`) or stale (then under the key's lock: each caller that waited for
    /// a refresh takes its outcome, so a provider that hangs costs one timeout, not one
    /// per waiting request). Use either this or `get_or_fetch` on one cache, not both.
    pub async fn get_or_refresh<Q, F, Fut>(
        &self,
        key: &Q,
        fresh_for: Duration,
        keep_for: Duration,
        fetch: F,
    ) -> Refreshed<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ProviderError>>,
    {
        let asked_at = Instant::now();
        let held = self.entries.get(key).await;
        if let Some(entry) = held.as_ref().filter(|entry| asked_at < entry.fresh_until) {
            self.metrics.cache_lookup(self.name, true);
            return Refreshed::Fresh(entry.value.clone());
        }
        self.metrics.cache_lookup(self.name, false);
        if held.is_none() {
            let fetched =
                async { fetch().await.map(|value| Timed::new(value, asked_at, fresh_for, keep_for)) };
            return match Box::pin(self.entries.try_get_with_by_ref(key, fetched)).await {
                Ok(entry) => Refreshed::Fresh(entry.value),
                Err(shared) => Refreshed::Failed { error: Arc::unwrap_or_clone(shared), last: None },
            };
        }
        let refresh = |current: Option<moka::Entry<K, Timed<V>>>| async move {
            let current = current.map(moka::Entry::into_value);
            if let Some(entry) = &current {
                let failed_meanwhile = entry.failed.as_ref().is_some_and(|failed| failed.0 >= asked_at);
                if asked_at < entry.fresh_until || failed_meanwhile {
                    return Ok(Op::Nop);
                }
            }
            let started = Instant::now();
            match (fetch().await, current) {
                (Ok(value), _) => Ok(Op::Put(Timed::new(value, started, fresh_for, keep_for))),
                (Err(error), Some(mut stale)) => {
                    stale.failed = Some(Arc::new((Instant::now(), error)));
                    Ok(Op::Put(stale))
                }
                // Dropped while we waited: nothing to serve, nothing to record.
                (Err(error), None) => Err(error),
            }
        };
        match Box::pin(self.entries.entry_by_ref(key).and_try_compute_with(refresh)).await {
            Ok(done) => match done.into_entry().map(moka::Entry::into_value) {
                Some(Timed { value, asked_at: answered, failed: Some(failed), .. })
                    if failed.0 >= asked_at =>
                {
                    Refreshed::Failed { error: failed.1.clone(), last: Some((value, answered.elapsed())) }
                }
                Some(entry) => Refreshed::Fresh(entry.value),
                // Not reached: every path of `refresh` leaves an entry or returns an error.
                None => Refreshed::Failed {
                    error: ProviderError::Unreachable { endpoint: "cache", kind: "entry_lost" },
                    last: None,
                },
            },
            Err(error) => Refreshed::Failed { error, last: None },
        }
    }

    /// Forgets every value (e.g. after the signing keys changed); takes effect at once.
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }

    /// Does the eviction and expiry work moka otherwise does in passing, so that
    /// `len` is exact.
    #[cfg(test)]
    async fn settle(&self) {
        self.entries.run_pending_tasks().await;
    }

    /// How many entries are held (exact after [`Self::settle`]).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_fresh_value_is_not_fetched_again() {
        let cache = Cached::default();
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            let v = cache
                .get(Duration::from_secs(60), || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ProviderError>(7)
                })
                .await
                .unwrap();
            assert_eq!(*v, 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_last_good_value_is_served_when_a_refresh_fails() {
        let cache = Cached::default();
        cache.get(Duration::ZERO, || async { Ok::<_, ProviderError>(1) }).await.unwrap();
        let down = ProviderError::Unreachable { endpoint: "jwks", kind: "connect" };
        let v = cache.get(Duration::ZERO, || async { Err(down.clone()) }).await.unwrap();
        assert_eq!(*v, 1);
        let empty: Cached<u8> = Cached::default();
        assert_eq!(empty.get(Duration::ZERO, || async { Err(down.clone()) }).await.unwrap_err(), down);
    }

    #[tokio::test]
    async fn forced_refreshes_happen_at_most_once_per_cooldown() {
        let cache = Cached::default();
        let calls = AtomicUsize::new(0);
        let fetch = || async { Ok::<_, ProviderError>(calls.fetch_add(1, Ordering::SeqCst)) };
        cache.get(Duration::from_secs(60), fetch).await.unwrap();
        // A forced refresh right after a normal fetch still happens (a key rotation)...
        assert_eq!(*cache.force_refresh(Duration::from_secs(60), fetch).await.unwrap(), 1);
        // ...but a second one within the cooldown does not.
        assert_eq!(*cache.force_refresh(Duration::from_secs(60), fetch).await.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let cache: KeyedCache<&str, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, ()>(7)
        };
        let ttl = Duration::from_secs(60);
        let (a, b, c) = tokio::join!(
            cache.get_or_fetch(&"k", ttl, fetch),
            cache.get_or_fetch(&"k", ttl, fetch),
            cache.get_or_fetch(&"k", ttl, fetch)
        );
        assert_eq!((a, b, c), (Ok(7), Ok(7), Ok(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn values_expire_and_failures_are_not_kept() {
        let cache: KeyedCache<&str, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let ttl = Duration::from_millis(30);
        assert_eq!(cache.get_or_fetch(&"k", ttl, || async { Err::<u32, _>("down") }).await, Err("down"));
        assert_eq!(cache.get_or_fetch(&"k", ttl, || async { Ok::<_, ()>(1) }).await, Ok(1));
        assert_eq!(cache.get_or_fetch(&"k", ttl, || async { Ok::<_, ()>(2) }).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get(&"k").await, None, "expired, though not swept yet");
        assert_eq!(cache.get_or_fetch(&"k", ttl, || async { Ok::<_, ()>(3) }).await, Ok(3));
    }

    #[tokio::test]
    async fn each_entry_keeps_its_own_ttl_and_an_insert_replaces_it() {
        let cache: KeyedCache<&str, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        cache.insert("short", 1, Duration::from_millis(30)).await;
        cache.insert("long", 2, Duration::from_secs(60)).await;
        cache.insert("renewed", 3, Duration::from_millis(30)).await;
        cache.insert("renewed", 4, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get(&"short").await, None);
        assert_eq!(cache.get(&"long").await, Some(2));
        assert_eq!(cache.get(&"renewed").await, Some(4));
    }

    #[tokio::test]
    async fn a_borrowed_key_finds_the_value_of_its_owned_key() {
        let cache: KeyedCache<String, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let ttl = Duration::from_secs(60);
        cache.insert("alice".to_string(), 1, ttl).await;
        let fetched = cache.get_or_fetch("alice", ttl, || async { Ok::<_, ()>(2) }).await;
        assert_eq!(fetched, Ok(1), "a hit: no fetch");
        assert_eq!(cache.get("alice").await, Some(1));
        let fetched = cache.get_or_fetch("bob", ttl, || async { Ok::<_, ()>(3) }).await;
        assert_eq!(fetched, Ok(3), "a miss stores the value under an owned copy of the key");
        assert_eq!(cache.get("bob").await, Some(3));
        cache.settle().await;
        assert_eq!(cache.len(), 2);
    }

    fn down() -> ProviderError {
        ProviderError::Unreachable { endpoint: "introspect", kind: "connect" }
    }

    #[tokio::test]
    async fn a_stale_value_is_fetched_again_and_handed_back_when_that_fails() {
        let cache: KeyedCache<&str, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let (fresh, keep) = (Duration::from_millis(30), Duration::from_secs(60));
        let ok = |v| move || async move { Ok::<_, ProviderError>(v) };
        assert_eq!(cache.get_or_refresh(&"k", fresh, keep, ok(1)).await, Refreshed::Fresh(1));
        assert_eq!(cache.get_or_refresh(&"k", fresh, keep, ok(2)).await, Refreshed::Fresh(1), "fresh: a hit");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get(&"k").await, None, "stale is not fresh");
        let failed = cache.get_or_refresh(&"k", fresh, keep, || async { Err(down()) }).await;
        let Refreshed::Failed { error, last: Some((1, age)) } = failed else { panic!("{failed:?}") };
        assert_eq!(error, down());
        assert!(age >= Duration::from_millis(40), "{age:?}");
        assert_eq!(cache.get_or_refresh(&"k", fresh, keep, ok(3)).await, Refreshed::Fresh(3), "asked again");
        assert_eq!(cache.last(&"k").await.map(|(v, _)| v), Some(3));
        // Nothing held: the error alone, and nothing kept.
        let failed = cache.get_or_refresh(&"new", fresh, keep, || async { Err(down()) }).await;
        assert_eq!(failed, Refreshed::Failed { error: down(), last: None });
        assert_eq!(cache.last(&"new").await, None);
    }

    #[tokio::test]
    async fn a_value_is_dropped_once_it_has_been_held_for_keep_for() {
        let cache: KeyedCache<&str, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let ok = || async { Ok::<_, ProviderError>(1) };
        cache.get_or_refresh(&"k", Duration::from_millis(10), Duration::from_millis(30), ok).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.last(&"k").await, None);
        let failed =
            cache.get_or_refresh(&"k", Duration::ZERO, Duration::ZERO, || async { Err(down()) }).await;
        assert_eq!(failed, Refreshed::Failed { error: down(), last: None });
    }

    #[tokio::test]
    async fn callers_waiting_for_a_failing_refresh_share_it() {
        let cache: KeyedCache<&str, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let (fresh, keep) = (Duration::from_millis(10), Duration::from_secs(60));
        cache.insert_kept("k", 1, fresh, keep).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let calls = AtomicUsize::new(0);
        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<u32, _>(down())
        };
        let (a, b, c) = tokio::join!(
            cache.get_or_refresh(&"k", fresh, keep, failing),
            cache.get_or_refresh(&"k", fresh, keep, failing),
            cache.get_or_refresh(&"k", fresh, keep, failing)
        );
        for outcome in [a, b, c] {
            assert!(matches!(outcome, Refreshed::Failed { last: Some((1, _)), .. }), "{outcome:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one call for all three");
        // A caller that comes later asks again.
        let failed = cache.get_or_refresh(&"k", fresh, keep, failing).await;
        assert!(matches!(failed, Refreshed::Failed { last: Some((1, _)), .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_full_cache_evicts_a_few_entries_and_keeps_the_ones_in_use() {
        let cache: KeyedCache<u32, u32> =
            KeyedCache::new(crate::metrics::Cache::Roles, 100, Default::default());
        let ttl = Duration::from_secs(60);
        for key in 0..100 {
            cache.insert(key, key, ttl).await;
        }
        cache.settle().await;
        assert_eq!(cache.len(), 100);
        // Ten users keep coming back while a thousand others pass through once each.
        for newcomer in 100..1_100 {
            for user in 0..10 {
                assert_eq!(cache.get(&user).await, Some(user));
            }
            cache.insert(newcomer, newcomer, ttl).await;
            if newcomer % 50 == 0 {
                cache.settle().await;
                assert!(cache.len() <= 100, "bounded: {} entries", cache.len());
            }
        }
        cache.settle().await;
        assert!((90..=100).contains(&cache.len()), "evicted by size, not emptied: {}", cache.len());
        for user in 0..10 {
            assert_eq!(cache.get(&user).await, Some(user), "user {user} in use survived");
        }
    }
}
