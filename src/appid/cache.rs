//! A value fetched from the provider, kept for a while, refreshed by one caller at a
//! time, and served stale when a refresh fails (the provider may be down).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
}
