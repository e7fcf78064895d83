//! The in-process backend: one instance's own deny-list and renewals.

use std::time::{Duration, Instant};

use super::{Backend, Held, RenewalFuture, StoreUnavailable, CAPACITY};
use crate::auth::renewal::Renewal;

/// Bytes of server-side session records kept at most (the least recently used go first):
/// about 50,000 sessions of 4 KB.
const SESSION_BYTES: u64 = 200 * 1024 * 1024;

/// A server-side session record and when it ends.
#[derive(Clone)]
struct Record {
    sealed: std::sync::Arc<[u8]>,
    until: i64,
}

impl moka::Expiry<String, Record> for UntilTheirEnd {
    fn expire_after_create(&self, key: &String, record: &Record, at: Instant) -> Option<Duration> {
        <Self as moka::Expiry<String, i64>>::expire_after_create(self, key, &record.until, at)
    }

    fn expire_after_update(
        &self,
        key: &String,
        record: &Record,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        <Self as moka::Expiry<String, i64>>::expire_after_create(self, key, &record.until, at)
    }
}

/// Entries that live until their own end (a logged-out session until it would have ended).
struct UntilTheirEnd;

impl moka::Expiry<String, i64> for UntilTheirEnd {
    fn expire_after_create(&self, _: &String, until: &i64, _: Instant) -> Option<Duration> {
        let left = until.saturating_sub(crate::clock::now());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// The in-process backend: bounded caches that evict the least useful entries when full.
pub struct InProcess {
    /// Logged-out session ids, each until its session would have ended (R-L2).
    denied: moka::sync::Cache<String, i64>,
    /// Renewal outcomes by renewal key (refresh and access token): shared while in flight, kept for
    /// the grace period once decided.
    renewals: moka::future::Cache<[u8; 32], Renewal>,
    /// Server-side sessions by id, each until its end.
    sessions: moka::sync::Cache<String, Record>,
}

impl InProcess {
    /// An empty store whose renewal outcomes are served for `grace` after they are known.
    pub fn new(grace: Duration) -> Self {
        InProcess {
            denied: moka::sync::Cache::builder().max_capacity(CAPACITY).expire_after(UntilTheirEnd).build(),
            renewals: moka::future::Cache::builder().max_capacity(CAPACITY).time_to_live(grace).build(),
            sessions: moka::sync::Cache::builder()
                .max_capacity(SESSION_BYTES)
                .weigher(|sid: &String, record: &Record| {
                    u32::try_from(sid.len() + record.sealed.len()).unwrap_or(u32::MAX)
                })
                .expire_after(UntilTheirEnd)
                .build(),
        }
    }
}

#[rocket::async_trait]
impl Backend for InProcess {
    async fn deny(&self, sid: &str, until: i64) {
        self.denied.insert(sid.to_string(), until);
    }

    async fn is_denied(&self, sid: &str) -> bool {
        self.denied.contains_key(sid)
    }

    async fn renew_once(&self, key: [u8; 32], _refresh_token: &str, renew: RenewalFuture) -> Renewal {
        let shared = self
            .renewals
            .try_get_with(key, async move {
                match renew.await {
                    Renewal::Unavailable(error) => Err(error),
                    decided => Ok(decided),
                }
            })
            .await;
        shared.unwrap_or_else(|error| Renewal::Unavailable((*error).clone()))
    }

    async fn forget_renewal(&self, key: [u8; 32]) {
        self.renewals.invalidate(&key).await;
    }

    async fn put_session(&self, sid: &str, record: Vec<u8>, until: i64) -> Result<(), StoreUnavailable> {
        self.sessions.insert(sid.to_string(), Record { sealed: record.into(), until });
        Ok(())
    }

    async fn session_record(&self, sid: &str) -> Result<Held, StoreUnavailable> {
        if self.denied.contains_key(sid) {
            return Ok(Held::LoggedOut);
        }
        Ok(match self.sessions.get(sid) {
            Some(record) => Held::Record(record.sealed.to_vec()),
            None => Held::Absent,
        })
    }

    async fn delete_session(&self, sid: &str) {
        self.sessions.invalidate(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appid::ProviderError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn store() -> InProcess {
        InProcess::new(Duration::from_secs(30))
    }

    #[tokio::test]
    async fn the_deny_list_remembers_logged_out_sessions_until_they_end() {
        let store = store();
        store.deny("live", crate::clock::now() + 60).await;
        store.deny("ended", crate::clock::now() - 1).await;
        assert!(store.is_denied("live").await);
        assert!(!store.is_denied("ended").await, "nothing to refuse after the session's own end");
        assert!(!store.is_denied("other").await);
    }

    #[tokio::test]
    async fn two_stores_do_not_share_their_deny_lists_or_renewals() {
        let (one, other) = (store(), store());
        one.deny("sid", crate::clock::now() + 60).await;
        assert!(one.is_denied("sid").await && !other.is_denied("sid").await);
        let calls = Arc::new(AtomicUsize::new(0));
        let rejected = || Renewal::Rejected("refresh_refused");
        one.renew_once([9; 32], "rt", counted(&calls, rejected())).await;
        other.renew_once([9; 32], "rt", counted(&calls, rejected())).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "each app renews for itself");
    }

    fn counted(calls: &Arc<AtomicUsize>, outcome: Renewal) -> RenewalFuture {
        let calls = calls.clone();
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            outcome
        })
    }

    #[tokio::test]
    async fn concurrent_renewals_with_one_refresh_token_make_one_call_and_the_outcome_is_kept() {
        let store = store();
        let calls = Arc::new(AtomicUsize::new(0));
        let rejected = || Renewal::Rejected("refresh_invalid_grant");
        let (a, b) = tokio::join!(
            store.renew_once([1; 32], "rt", counted(&calls, rejected())),
            store.renew_once([1; 32], "rt", counted(&calls, rejected())),
        );
        assert!(matches!((a, b), (Renewal::Rejected(_), Renewal::Rejected(_))));
        assert!(matches!(
            store.renew_once([1; 32], "rt", counted(&calls, rejected())).await,
            Renewal::Rejected(_)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "in flight and within the grace period: shared");
        store.forget_renewal([1; 32]).await;
        store.renew_once([1; 32], "rt", counted(&calls, rejected())).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "forgotten at logout");
    }

    #[tokio::test]
    async fn a_renewal_the_provider_could_not_answer_is_not_kept() {
        let store = store();
        let calls = Arc::new(AtomicUsize::new(0));
        let down = || Renewal::Unavailable(ProviderError::Unreachable { endpoint: "token", kind: "connect" });
        assert!(matches!(
            store.renew_once([2; 32], "rt", counted(&calls, down())).await,
            Renewal::Unavailable(_)
        ));
        assert!(matches!(
            store.renew_once([2; 32], "rt", counted(&calls, down())).await,
            Renewal::Unavailable(_)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the next request tries again");
    }

    #[tokio::test]
    async fn a_renewal_is_kept_for_the_grace_period_only() {
        let store = InProcess::new(Duration::from_millis(50));
        let calls = Arc::new(AtomicUsize::new(0));
        store.renew_once([3; 32], "rt", counted(&calls, Renewal::Rejected("refresh_refused"))).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        store.renew_once([3; 32], "rt", counted(&calls, Renewal::Rejected("refresh_refused"))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
