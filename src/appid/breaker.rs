//! Circuit breakers in front of the provider's endpoints.
//!
//! One breaker per endpoint name (discovery, publickeys, token, introspect, iam_token,
//! management_roles), not one for the whole provider: App ID's outages are often partial
//! (F3: token works while introspection fails), and IAM is another service altogether. A
//! provider-wide breaker would let a failing introspection endpoint block logins that would
//! succeed. The price is that a fully down provider needs `failures` failures per endpoint
//! before every endpoint answers fast, which each endpoint reaches after a few requests.
//!
//! States: closed (calls pass, consecutive failures counted) → open after `failures` in a
//! row (calls fail at once until `open_for` has passed) → half-open (exactly one trial call
//! passes; its success closes the breaker, its failure opens it again). A 429 with
//! `Retry-After` opens the breaker for at least that long, whatever the count (the
//! provider asked us to wait; F11).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::metrics::Metrics;

/// The longest `Retry-After` honoured (a provider asking for a day is not obeyed blindly).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What a finished call tells the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The endpoint answered (any status but 5xx/429, even a malformed body): it is up.
    Answered,
    /// No answer, a timeout, a TLS failure, 5xx or 429.
    Failed,
    /// 429 with `Retry-After`: failed, and the provider asked us to wait this long.
    RetryAfter(Duration),
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// A half-open trial call is in flight: others still fail fast.
    trial_in_flight: bool,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    open_for: Duration,
    /// Not poisoned by a panic while held: each update leaves a state valid on its own.
    by_endpoint: Mutex<HashMap<&'static str, State>>,
    metrics: Metrics,
}

/// The breakers of one App ID client (per instance, not process-wide: tests run several
/// apps in one process, and an app restarted in-process starts closed).
#[derive(Debug, Clone)]
pub struct Breakers(Arc<Inner>);

/// Permission to make one call; report its outcome with [`Permit::finish`]. Dropped
/// unfinished (the request was cancelled), it frees the trial slot without a verdict.
#[derive(Debug)]
pub struct Permit {
    breakers: Breakers,
    endpoint: &'static str,
    trial: bool,
    finished: bool,
}

/// The breaker of this endpoint is open; calls resume after about `retry_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    pub retry_in: Duration,
}

impl Breakers {
    /// Breakers that open after `failures` consecutive failures, for `open_for`.
    pub fn new(failures: u32, open_for: Duration, metrics: Metrics) -> Self {
        Breakers(Arc::new(Inner {
            failures: failures.max(1),
            open_for,
            by_endpoint: Mutex::default(),
            metrics,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<&'static str, State>> {
        self.0.by_endpoint.lock()
    }

    /// May a call to `endpoint` go out now?
    pub fn admit(&self, endpoint: &'static str) -> Result<Permit, Open> {
        let now = Instant::now();
        let mut states = self.lock();
        let state = states.entry(endpoint).or_default();
        let trial = match state.open_until {
            None => false,
            Some(until) if now < until => return Err(Open { retry_in: until - now }),
            // Half-open: one trial at a time.
            Some(_) if state.trial_in_flight => return Err(Open { retry_in: Duration::from_secs(1) }),
            Some(_) => {
                state.trial_in_flight = true;
                true
            }
        };
        Ok(Permit { breakers: self.clone(), endpoint, trial, finished: false })
    }

    /// Whether `endpoint`'s breaker is open now (no side effects).
    #[cfg(test)]
    pub fn is_open(&self, endpoint: &'static str) -> bool {
        let now = Instant::now();
        self.lock().get(endpoint).and_then(|s| s.open_until).is_some_and(|until| now < until)
    }

    /// The endpoints whose breaker is open now, sorted (for a readiness report).
    pub fn open_endpoints(&self) -> Vec<&'static str> {
        let now = Instant::now();
        let mut open: Vec<&'static str> = self
            .lock()
            .iter()
            .filter(|(_, state)| state.open_until.is_some_and(|until| now < until))
            .map(|(endpoint, _)| *endpoint)
            .collect();
        open.sort_unstable();
        open
    }

    fn record(&self, endpoint: &'static str, trial: bool, outcome: CallOutcome) {
        let now = Instant::now();
        let mut states = self.lock();
        let state = states.entry(endpoint).or_default();
        if trial {
            state.trial_in_flight = false;
        }
        let was_open = state.open_until.is_some();
        match outcome {
            CallOutcome::Answered => {
                // Only the trial (or a closed breaker's call) closes it: a slow call that
                // started before the breaker opened says little about the provider now.
                if trial || state.open_until.is_none() {
                    *state = State::default();
                    if was_open {
                        tracing::info!(event = "provider_breaker_closed", endpoint);
                    }
                }
            }
            CallOutcome::Failed | CallOutcome::RetryAfter(_) => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                let mut open_for = None;
                if trial || state.consecutive_failures >= self.0.failures {
                    open_for = Some(self.0.open_for);
                }
                if let CallOutcome::RetryAfter(wait) = outcome {
                    let wait = wait.min(MAX_RETRY_AFTER);
                    open_for = Some(open_for.map_or(wait, |d| d.max(wait)));
                }
                if let Some(open_for) = open_for {
                    let until = now + open_for;
                    // Never shorten an opening already decided (e.g. a longer Retry-After).
                    if state.open_until.is_none_or(|current| current < until) {
                        state.open_until = Some(until);
                    }
                    if !was_open || trial {
                        self.0.metrics.breaker_opened(endpoint);
                        tracing::warn!(
                            event = "provider_breaker_open",
                            endpoint,
                            failures = state.consecutive_failures,
                            open_secs = open_for.as_secs()
                        );
                    }
                }
            }
        }
    }
}

impl Permit {
    /// Reports the call's outcome.
    pub fn finish(mut self, outcome: CallOutcome) {
        self.finished = true;
        self.breakers.record(self.endpoint, self.trial, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished && self.trial {
            // Cancelled mid-call: let the next caller make the trial instead.
            let mut states = self.breakers.lock();
            if let Some(state) = states.get_mut(self.endpoint) {
                state.trial_in_flight = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "introspect";

    fn fail(b: &Breakers) {
        b.admit(E).unwrap().finish(CallOutcome::Failed);
    }

    #[test]
    fn it_opens_after_the_configured_consecutive_failures_only() {
        let b = Breakers::new(3, Duration::from_secs(30), Metrics::new());
        fail(&b);
        fail(&b);
        b.admit(E).unwrap().finish(CallOutcome::Answered);
        fail(&b);
        fail(&b);
        assert!(b.admit(E).is_ok(), "an answer in between resets the count");
        fail(&b);
        let open = b.admit(E).unwrap_err();
        assert!(open.retry_in > Duration::from_secs(29));
        assert!(b.admit("token").is_ok(), "other endpoints are not affected");
    }

    #[test]
    fn half_open_lets_one_trial_through_and_its_success_closes() {
        let b = Breakers::new(1, Duration::from_millis(20), Metrics::new());
        fail(&b);
        assert!(b.admit(E).is_err());
        std::thread::sleep(Duration::from_millis(30));
        let trial = b.admit(E).unwrap();
        assert!(b.admit(E).is_err(), "only one trial at a time");
        trial.finish(CallOutcome::Answered);
        assert!(b.admit(E).is_ok());
        assert!(!b.is_open(E));
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let b = Breakers::new(1, Duration::from_millis(20), Metrics::new());
        fail(&b);
        std::thread::sleep(Duration::from_millis(30));
        b.admit(E).unwrap().finish(CallOutcome::Failed);
        assert!(b.is_open(E));
    }

    #[test]
    fn a_cancelled_trial_frees_the_slot() {
        let b = Breakers::new(1, Duration::from_millis(20), Metrics::new());
        fail(&b);
        std::thread::sleep(Duration::from_millis(30));
        drop(b.admit(E).unwrap());
        assert!(b.admit(E).is_ok());
    }

    #[test]
    fn retry_after_opens_at_once_for_at_least_that_long_and_is_capped() {
        let b = Breakers::new(5, Duration::from_secs(1), Metrics::new());
        b.admit(E).unwrap().finish(CallOutcome::RetryAfter(Duration::from_secs(120)));
        let open = b.admit(E).unwrap_err();
        assert!(open.retry_in > Duration::from_secs(119), "{open:?}");
        let b = Breakers::new(5, Duration::from_secs(1), Metrics::new());
        b.admit(E).unwrap().finish(CallOutcome::RetryAfter(Duration::from_secs(86_400)));
        assert!(b.admit(E).unwrap_err().retry_in <= MAX_RETRY_AFTER);
    }
}
