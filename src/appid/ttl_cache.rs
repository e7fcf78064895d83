//! A bounded map of values that expire, where concurrent misses on one key share a
//! single fetch (so "at most one provider call per key per TTL" holds under load).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

struct Slot<V> {
    value: OnceCell<V>,
    expires_at: Instant,
}

/// Values by key, each kept until its own expiry; at most `capacity` keys.
pub struct TtlCache<K, V> {
    slots: Mutex<HashMap<K, Arc<Slot<V>>>>,
    capacity: usize,
    /// The cache's name in the metrics.
    name: crate::metrics::Cache,
    metrics: crate::metrics::Metrics,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// An empty cache holding at most `capacity` keys, named `name` in the metrics.
    pub fn new(name: crate::metrics::Cache, capacity: usize, metrics: crate::metrics::Metrics) -> Self {
        TtlCache { slots: Mutex::new(HashMap::new()), capacity, name, metrics }
    }

    /// The cached value for `key`, or the result of `fetch`, kept for `ttl`. Callers that
    /// miss at the same time wait for one fetch; a failed fetch is not kept. The key is
    /// borrowed (e.g. `&str` for `String` keys) and copied only when it is not held yet:
    /// a hit, the case on every request, allocates nothing.
    pub async fn get_or_fetch<Q, E, F, Fut>(&self, key: &Q, ttl: Duration, fetch: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key, ttl);
        self.metrics.cache_lookup(self.name, slot.value.initialized());
        slot.value.get_or_try_init(fetch).await.cloned()
    }

    /// Stores a value fetched elsewhere (e.g. roles read during login).
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        let slot =
            Arc::new(Slot { value: OnceCell::new_with(Some(value)), expires_at: Instant::now() + ttl });
        let mut slots = self.lock();
        self.make_room(&mut slots);
        slots.insert(key, slot);
    }

    /// The value for `key` if one is held and not expired (no fetch).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        let slots = self.lock();
        slots.get(key).filter(|s| s.expires_at > now).and_then(|s| s.value.get().cloned())
    }

    /// Forgets every value (e.g. after the signing keys changed).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many keys are held (expired ones included until they are swept).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn slot<Q>(&self, key: &Q, ttl: Duration) -> Arc<Slot<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = Instant::now();
        let mut slots = self.lock();
        if let Some(slot) = slots.get(key).filter(|s| s.expires_at > now) {
            return slot.clone();
        }
        self.make_room(&mut slots);
        let slot = Arc::new(Slot { value: OnceCell::new(), expires_at: now + ttl });
        slots.insert(key.to_owned(), slot.clone());
        slot
    }

    /// Keeps the map bounded: sweep expired entries, and if that is not enough, start over
    /// (a full cache only costs fresh fetches, never a wrong answer).
    fn make_room(&self, slots: &mut HashMap<K, Arc<Slot<V>>>) {
        if slots.len() < self.capacity {
            return;
        }
        let now = Instant::now();
        slots.retain(|_, slot| slot.expires_at > now);
        if slots.len() >= self.capacity {
            slots.clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<Slot<V>>>> {
        // A panic while holding this lock cannot leave the map inconsistent (each
        // operation is a single insert, retain or clear), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let cache: TtlCache<&str, u32> = TtlCache::new(crate::metrics::Cache::Roles, 10, Default::default());
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
        let cache: TtlCache<&str, u32> = TtlCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        assert_eq!(
            cache.get_or_fetch(&"k", Duration::from_millis(30), || async { Err::<u32, _>("down") }).await,
            Err("down")
        );
        assert_eq!(
            cache.get_or_fetch(&"k", Duration::from_millis(30), || async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            cache.get_or_fetch(&"k", Duration::from_millis(30), || async { Ok::<_, ()>(2) }).await,
            Ok(1)
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            cache.get_or_fetch(&"k", Duration::from_millis(30), || async { Ok::<_, ()>(3) }).await,
            Ok(3)
        );
    }

    #[tokio::test]
    async fn a_borrowed_key_finds_the_value_of_its_owned_key() {
        let cache: TtlCache<String, u32> =
            TtlCache::new(crate::metrics::Cache::Roles, 10, Default::default());
        let ttl = Duration::from_secs(60);
        cache.insert("alice".to_string(), 1, ttl);
        let fetched = cache.get_or_fetch("alice", ttl, || async { Ok::<_, ()>(2) }).await;
        assert_eq!(fetched, Ok(1), "a hit: no fetch");
        assert_eq!(cache.get("alice"), Some(1));
        let fetched = cache.get_or_fetch("bob", ttl, || async { Ok::<_, ()>(3) }).await;
        assert_eq!(fetched, Ok(3), "a miss stores the value under an owned copy of the key");
        assert_eq!(cache.get("bob"), Some(3));
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn the_cache_never_grows_past_its_capacity() {
        let cache: TtlCache<u32, u32> = TtlCache::new(crate::metrics::Cache::Roles, 100, Default::default());
        for key in 0..1_000 {
            cache.insert(key, key, Duration::from_secs(60));
            assert!(cache.len() <= 100);
        }
    }
}
