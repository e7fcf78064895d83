//! Process-wide counters in the Prometheus text format, served at `/metrics` when enabled
//! (`appid.metrics`, off by default; `APPID_METRICS_TOKEN` requires a bearer token).
//! Labels are fixed reason codes and endpoint names: never user data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Calls and seconds, by (endpoint, outcome).
type CallTimes = BTreeMap<(&'static str, &'static str), (u64, f64)>;

/// The counters. One instance per process: [`METRICS`].
pub struct Metrics {
    logins_started: AtomicU64,
    logins_succeeded: AtomicU64,
    logins_refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Guard decisions that let the request through: one on every guarded request, so an
    /// atomic; the refusals (by reason) are rare and go into `guard_refused`.
    guard_ok: AtomicU64,
    guard_refused: Mutex<BTreeMap<&'static str, u64>>,
    provider_calls: Mutex<CallTimes>,
    /// [cache][miss, hit] → count. Atomics: a guarded request looks up three caches.
    cache: [[AtomicU64; 2]; Cache::ALL.len()],
    jwks_fetches: AtomicU64,
    /// Session cookies that did not decrypt under our key (forged, tampered, or sealed by
    /// an instance with another `secret_key`: a rising rate means the keys differ).
    cookie_undecryptable: AtomicU64,
    /// Calls not made because a circuit breaker was open or all call slots were busy:
    /// (endpoint, circuit_open|overloaded) → count.
    provider_refused: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Circuit breakers opened, by endpoint.
    breaker_openings: Mutex<BTreeMap<&'static str, u64>>,
    /// Silent renewals with a refresh token: renewed | rejected | unavailable.
    renewals: Mutex<BTreeMap<&'static str, u64>>,
}

/// This process's counters.
pub static METRICS: Metrics = Metrics::new();

/// The caches whose lookups are counted (`TtlCache`s of the App ID client).
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

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // A poisoned lock still holds valid counts (each update is one insert).
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    *map.entry(key).or_insert(0) += 1;
}

impl Metrics {
    /// All counters at zero.
    const fn new() -> Self {
        Metrics {
            logins_started: AtomicU64::new(0),
            logins_succeeded: AtomicU64::new(0),
            logins_refused: Mutex::new(BTreeMap::new()),
            guard_ok: AtomicU64::new(0),
            guard_refused: Mutex::new(BTreeMap::new()),
            provider_calls: Mutex::new(BTreeMap::new()),
            cache: [const { [const { AtomicU64::new(0) }; 2] }; Cache::ALL.len()],
            jwks_fetches: AtomicU64::new(0),
            cookie_undecryptable: AtomicU64::new(0),
            provider_refused: Mutex::new(BTreeMap::new()),
            breaker_openings: Mutex::new(BTreeMap::new()),
            renewals: Mutex::new(BTreeMap::new()),
        }
    }

    /// A browser was sent to the provider to log in.
    pub fn login_started(&self) {
        self.logins_started.fetch_add(1, Ordering::Relaxed);
    }

    /// A callback completed a login.
    pub fn login_succeeded(&self) {
        self.logins_succeeded.fetch_add(1, Ordering::Relaxed);
    }

    /// A callback was refused, with its reason code.
    pub fn login_refused(&self, reason: &'static str) {
        bump(&self.logins_refused, reason);
    }

    /// The guard decided (`ok`, `not_logged_in`, `no_role`, `unavailable`, ...).
    pub fn guard_outcome(&self, outcome: &'static str) {
        if outcome == "ok" {
            self.guard_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            bump(&self.guard_refused, outcome);
        }
    }

    /// A call to the provider ended (`ok` or `error`) after `elapsed`.
    pub fn provider_call(&self, endpoint: &'static str, ok: bool, elapsed: Duration) {
        let mut map = self.provider_calls.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry((endpoint, if ok { "ok" } else { "error" })).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    /// A cache lookup was a hit or a miss.
    pub fn cache_lookup(&self, cache: Cache, hit: bool) {
        self.cache[cache as usize][usize::from(hit)].fetch_add(1, Ordering::Relaxed);
    }

    /// The signing keys were fetched.
    pub fn jwks_fetched(&self) {
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// A session cookie arrived that does not decrypt under our key.
    pub fn cookie_undecryptable(&self) {
        self.cookie_undecryptable.fetch_add(1, Ordering::Relaxed);
    }

    /// A provider call was not made: `circuit_open` or `overloaded`.
    pub fn provider_call_refused(&self, endpoint: &'static str, reason: &'static str) {
        bump(&self.provider_refused, (endpoint, reason));
    }

    /// A circuit breaker opened (or opened again after a failed trial).
    pub fn breaker_opened(&self, endpoint: &'static str) {
        bump(&self.breaker_openings, endpoint);
    }

    /// A silent renewal ended (`renewed`, `rejected` (log in again) or `unavailable`).
    pub fn renewal(&self, outcome: &'static str) {
        bump(&self.renewals, outcome);
    }

    /// How many session cookies did not decrypt so far (for tests and health checks).
    pub fn cookies_undecryptable(&self) -> u64 {
        self.cookie_undecryptable.load(Ordering::Relaxed)
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut out,
            "rocket_appid_logins_started_total",
            "Browsers sent to the identity provider to log in.",
        );
        let _ = writeln!(
            out,
            "rocket_appid_logins_started_total {}",
            self.logins_started.load(Ordering::Relaxed)
        );
        counter(&mut out, "rocket_appid_logins_succeeded_total", "Completed logins.");
        let _ = writeln!(
            out,
            "rocket_appid_logins_succeeded_total {}",
            self.logins_succeeded.load(Ordering::Relaxed)
        );
        counter(&mut out, "rocket_appid_logins_refused_total", "Refused callbacks by reason.");
        for (reason, n) in self.logins_refused.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "rocket_appid_logins_refused_total{{reason=\"{reason}\"}} {n}");
        }
        counter(&mut out, "rocket_appid_guard_decisions_total", "AuthorizedUser guard decisions by outcome.");
        let mut outcomes = self.guard_refused.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ok = self.guard_ok.load(Ordering::Relaxed);
        if ok > 0 {
            outcomes.insert("ok", ok);
        }
        for (outcome, n) in &outcomes {
            let _ = writeln!(out, "rocket_appid_guard_decisions_total{{outcome=\"{outcome}\"}} {n}");
        }
        counter(
            &mut out,
            "rocket_appid_provider_calls_total",
            "Calls to the identity provider by endpoint and outcome.",
        );
        counter(&mut out, "rocket_appid_provider_call_seconds_total", "Time spent in those calls.");
        for ((endpoint, outcome), (n, secs)) in
            self.provider_calls.lock().unwrap_or_else(|p| p.into_inner()).iter()
        {
            let labels = format!("endpoint=\"{endpoint}\",outcome=\"{outcome}\"");
            let _ = writeln!(out, "rocket_appid_provider_calls_total{{{labels}}} {n}");
            let _ = writeln!(out, "rocket_appid_provider_call_seconds_total{{{labels}}} {secs:.6}");
        }
        counter(&mut out, "rocket_appid_cache_lookups_total", "Cache lookups by cache and result.");
        for cache in Cache::ALL {
            for (result, count) in ["miss", "hit"].into_iter().zip(&self.cache[cache as usize]) {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let cache = cache.name();
                    let _ = writeln!(
                        out,
                        "rocket_appid_cache_lookups_total{{cache=\"{cache}\",result=\"{result}\"}} {n}"
                    );
                }
            }
        }
        counter(&mut out, "rocket_appid_jwks_fetches_total", "Fetches of the provider's signing keys.");
        let _ =
            writeln!(out, "rocket_appid_jwks_fetches_total {}", self.jwks_fetches.load(Ordering::Relaxed));
        counter(
            &mut out,
            "rocket_appid_cookie_undecryptable_total",
            "Session cookies that did not decrypt under this instance's key.",
        );
        let _ = writeln!(out, "rocket_appid_cookie_undecryptable_total {}", self.cookies_undecryptable());
        counter(
            &mut out,
            "rocket_appid_provider_calls_refused_total",
            "Provider calls not made: circuit breaker open or all call slots busy.",
        );
        for ((endpoint, reason), n) in self.provider_refused.lock().unwrap_or_else(|p| p.into_inner()).iter()
        {
            let _ = writeln!(
                out,
                "rocket_appid_provider_calls_refused_total{{endpoint=\"{endpoint}\",reason=\"{reason}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "rocket_appid_session_renewals_total",
            "Silent renewals with a refresh token, by outcome.",
        );
        for (outcome, n) in self.renewals.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "rocket_appid_session_renewals_total{{outcome=\"{outcome}\"}} {n}");
        }
        counter(&mut out, "rocket_appid_breaker_openings_total", "Circuit breakers opened, by endpoint.");
        for (endpoint, n) in self.breaker_openings.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "rocket_appid_breaker_openings_total{{endpoint=\"{endpoint}\"}} {n}");
        }
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
        let text = metrics.render();
        for line in [
            "rocket_appid_guard_decisions_total{outcome=\"no_role\"} 1",
            "rocket_appid_guard_decisions_total{outcome=\"ok\"} 2",
            "rocket_appid_cache_lookups_total{cache=\"roles\",result=\"miss\"} 1",
            "rocket_appid_cache_lookups_total{cache=\"roles\",result=\"hit\"} 3",
            "rocket_appid_cache_lookups_total{cache=\"verified_tokens\",result=\"hit\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        // Series that never counted anything are left out, as before.
        assert!(!text.contains("cache=\"introspection\""), "{text}");
        assert!(!text.contains("verified_tokens\",result=\"miss"), "{text}");
    }
}
