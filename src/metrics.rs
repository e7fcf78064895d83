//! The app's counters, served at `/metrics` in the Prometheus text format when enabled
//! (`appid.metrics`, off by default; `APPID_METRICS_TOKEN` requires a bearer token).
//! Each app owns its own [`Metrics`] (a registry of `prometheus-client`), held in Rocket's
//! managed state and shared with the App ID client. Labels are fixed reason codes and
//! endpoint names: never user data.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of [`Metrics::render`] (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointOutcome {
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointReason {
    endpoint: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheName {
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lookup {
    cache: &'static str,
    result: &'static str,
}

/// Seconds, summed.
type Seconds = Counter<f64, AtomicU64>;

/// One app's counters; cheap to clone (the counters are shared).
#[derive(Clone)]
pub struct Metrics(Arc<Counters>);

struct Counters {
    registry: Registry,
    logins_started: Counter,
    logins_succeeded: Counter,
    logins_refused: Family<Reason, Counter>,
    guard_decisions: Family<Outcome, Counter>,
    /// The counter of the outcome every allowed request has, taken out of the family once:
    /// the hot path then costs one atomic add, not a family lookup.
    guard_ok: Counter,
    provider_calls: Family<EndpointOutcome, Counter>,
    provider_call_seconds: Family<EndpointOutcome, Seconds>,
    /// [cache][miss, hit], taken out of the family once for the same reason as `guard_ok`.
    cache_lookups: [[Counter; 2]; Cache::ALL.len()],
    jwks_fetches: Counter,
    cookie_undecryptable: Counter,
    provider_refused: Family<EndpointReason, Counter>,
    breaker_openings: Family<Endpoint, Counter>,
    renewals: Family<Outcome, Counter>,
    served_stale: Family<CacheName, Counter>,
    store_calls: Family<OpOutcome, Counter>,
    store_call_seconds: Family<OpOutcome, Seconds>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOutcome {
    op: &'static str,
    outcome: &'static str,
}

/// The caches whose lookups are counted (the App ID client's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    VerifiedTokens,
    Introspection,
    Roles,
    IdTokenRoles,
    OpaqueTokens,
}

impl Cache {
    const ALL: [Cache; 5] =
        [Cache::VerifiedTokens, Cache::Introspection, Cache::Roles, Cache::IdTokenRoles, Cache::OpaqueTokens];

    /// The `cache` label.
    pub fn name(self) -> &'static str {
        match self {
            Cache::VerifiedTokens => "verified_tokens",
            Cache::Introspection => "introspection",
            Cache::Roles => "roles",
            Cache::IdTokenRoles => "id_token_roles",
            Cache::OpaqueTokens => "opaque_tokens",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A new metric, registered in `registry` under `name` (prefixed) with `help`.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// All counters at zero, in a registry of their own.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rocket_appid");
        let logins_started: Counter =
            registered(&mut registry, "logins_started", "Browsers sent to the identity provider to log in");
        let logins_succeeded: Counter = registered(&mut registry, "logins_succeeded", "Completed logins");
        let logins_refused: Family<Reason, Counter> =
            registered(&mut registry, "logins_refused", "Refused callbacks by reason");
        let guard_decisions: Family<Outcome, Counter> =
            registered(&mut registry, "guard_decisions", "AuthorizedUser guard decisions by outcome");
        let guard_ok = guard_decisions.get_or_create(&Outcome { outcome: "ok" }).clone();
        let provider_calls: Family<EndpointOutcome, Counter> = registered(
            &mut registry,
            "provider_calls",
            "Calls to the identity provider by endpoint and outcome",
        );
        let provider_call_seconds: Family<EndpointOutcome, Seconds> =
            registered(&mut registry, "provider_call_seconds", "Time spent in those calls");
        let lookups: Family<Lookup, Counter> =
            registered(&mut registry, "cache_lookups", "Cache lookups by cache and result");
        let cache_lookups = Cache::ALL.map(|cache| {
            ["miss", "hit"]
                .map(|result| lookups.get_or_create(&Lookup { cache: cache.name(), result }).clone())
        });
        let jwks_fetches: Counter =
            registered(&mut registry, "jwks_fetches", "Fetches of the provider's signing keys");
        let cookie_undecryptable: Counter = registered(
            &mut registry,
            "cookie_undecryptable",
            "Session cookies that did not decrypt under this instance's key",
        );
        let provider_refused: Family<EndpointReason, Counter> = registered(
            &mut registry,
            "provider_calls_refused",
            "Provider calls not made: circuit breaker open or all call slots busy",
        );
        let renewals: Family<Outcome, Counter> =
            registered(&mut registry, "session_renewals", "Silent renewals with a refresh token, by outcome");
        let breaker_openings: Family<Endpoint, Counter> =
            registered(&mut registry, "breaker_openings", "Circuit breakers opened, by endpoint");
        let served_stale: Family<CacheName, Counter> = registered(
            &mut registry,
            "served_stale",
            "Requests served from the last answer while the provider could not be asked, by cache",
        );
        let store_calls: Family<OpOutcome, Counter> = registered(
            &mut registry,
            "store_calls",
            "Calls to the shared session store by operation and outcome (ok, error, timeout, skipped)",
        );
        let store_call_seconds: Family<OpOutcome, Seconds> =
            registered(&mut registry, "store_call_seconds", "Time spent in those calls");
        Metrics(Arc::new(Counters {
            registry,
            logins_started,
            logins_succeeded,
            logins_refused,
            guard_decisions,
            guard_ok,
            provider_calls,
            provider_call_seconds,
            cache_lookups,
            jwks_fetches,
            cookie_undecryptable,
            provider_refused,
            breaker_openings,
            renewals,
            served_stale,
            store_calls,
            store_call_seconds,
        }))
    }

    /// A browser was sent to the provider to log in.
    pub fn login_started(&self) {
        self.0.logins_started.inc();
    }

    /// A callback completed a login.
    pub fn login_succeeded(&self) {
        self.0.logins_succeeded.inc();
    }

    /// A callback was refused, with its reason code.
    pub fn login_refused(&self, reason: &'static str) {
        self.0.logins_refused.get_or_create(&Reason { reason }).inc();
    }

    /// The guard decided (`ok`, `no_session`, `no_role`, `unavailable`, ...).
    pub fn guard_outcome(&self, outcome: &'static str) {
        if outcome == "ok" {
            self.0.guard_ok.inc();
        } else {
            self.0.guard_decisions.get_or_create(&Outcome { outcome }).inc();
        }
    }

    /// A call to the provider ended (`ok` or `error`) after `elapsed`.
    pub fn provider_call(&self, endpoint: &'static str, ok: bool, elapsed: Duration) {
        let labels = EndpointOutcome { endpoint, outcome: if ok { "ok" } else { "error" } };
        self.0.provider_calls.get_or_create(&labels).inc();
        self.0.provider_call_seconds.get_or_create(&labels).inc_by(elapsed.as_secs_f64());
    }

    /// A cache lookup was a hit or a miss.
    pub fn cache_lookup(&self, cache: Cache, hit: bool) {
        self.0.cache_lookups[cache as usize][usize::from(hit)].inc();
    }

    /// The signing keys were fetched.
    pub fn jwks_fetched(&self) {
        self.0.jwks_fetches.inc();
    }

    /// A session cookie arrived that does not decrypt under our key.
    pub fn cookie_undecryptable(&self) {
        self.0.cookie_undecryptable.inc();
    }

    /// A provider call was not made: `circuit_open` or `overloaded`.
    pub fn provider_call_refused(&self, endpoint: &'static str, reason: &'static str) {
        self.0.provider_refused.get_or_create(&EndpointReason { endpoint, reason }).inc();
    }

    /// A circuit breaker opened (or opened again after a failed trial).
    pub fn breaker_opened(&self, endpoint: &'static str) {
        self.0.breaker_openings.get_or_create(&Endpoint { endpoint }).inc();
    }

    /// A silent renewal ended (`renewed`, `rejected` (log in again) or `unavailable`).
    pub fn renewal(&self, outcome: &'static str) {
        self.0.renewals.get_or_create(&Outcome { outcome }).inc();
    }

    /// A request was served from `cache`'s last answer because the provider could not be
    /// asked (the outage window).
    pub fn served_stale(&self, cache: Cache) {
        self.0.served_stale.get_or_create(&CacheName { cache: cache.name() }).inc();
    }

    /// A call to the shared session store ended with `outcome` after `elapsed`.
    pub fn store_call(&self, op: &'static str, outcome: &'static str, elapsed: Duration) {
        let labels = OpOutcome { op, outcome };
        self.0.store_calls.get_or_create(&labels).inc();
        self.0.store_call_seconds.get_or_create(&labels).inc_by(elapsed.as_secs_f64());
    }

    /// How many session cookies did not decrypt so far (for tests and health checks).
    pub fn cookies_undecryptable(&self) -> u64 {
        self.0.cookie_undecryptable.get()
    }

    /// Everything in the Prometheus text format (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_decisions_and_cache_lookups_are_counted_by_label() {
        let metrics = Metrics::new();
        metrics.guard_outcome("ok");
        metrics.guard_outcome("ok");
        metrics.guard_outcome("no_role");
        for hit in [true, true, true, false] {
            metrics.cache_lookup(Cache::Roles, hit);
        }
        metrics.cache_lookup(Cache::VerifiedTokens, true);
        metrics.provider_call("token", true, Duration::from_millis(250));
        metrics.served_stale(Cache::Introspection);
        let text = metrics.render();
        for line in [
            "rocket_appid_guard_decisions_total{outcome=\"no_role\"} 1",
            "rocket_appid_guard_decisions_total{outcome=\"ok\"} 2",
            "rocket_appid_cache_lookups_total{cache=\"roles\",result=\"miss\"} 1",
            "rocket_appid_cache_lookups_total{cache=\"roles\",result=\"hit\"} 3",
            "rocket_appid_cache_lookups_total{cache=\"verified_tokens\",result=\"hit\"} 1",
            "rocket_appid_provider_calls_total{endpoint=\"token\",outcome=\"ok\"} 1",
            "rocket_appid_provider_call_seconds_total{endpoint=\"token\",outcome=\"ok\"} 0.25",
            "# TYPE rocket_appid_logins_started_total counter",
            "rocket_appid_served_stale_total{cache=\"introspection\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }

    #[test]
    fn two_apps_count_apart() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.cookie_undecryptable();
        assert_eq!((one.cookies_undecryptable(), other.cookies_undecryptable()), (1, 0));
    }
}
