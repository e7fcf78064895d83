//! The one outbound HTTP client: connect and total timeouts, no redirects,
//! capped response bodies, status checked before anything is parsed; in front of it a
//! circuit breaker per endpoint and a bound on concurrent calls (R-O6), and one retry
//! for idempotent reads (R-O8).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::breaker::{Breakers, CallOutcome};
use super::error::ProviderError;
use crate::config::Timeouts;
use crate::metrics::Metrics;

/// Largest body accepted from most endpoints.
pub const SMALL_BODY: usize = 64 * 1024;
/// Largest token response accepted (App ID tokens may carry up to 100 KB of custom claims).
pub const TOKEN_BODY: usize = 256 * 1024;
/// How long a call waits for a free slot when `max_concurrent_calls` are in flight: short,
/// so a pile-up turns into fast 503s instead of Rocket workers waiting on each other.
const SLOT_WAIT: Duration = Duration::from_secs(1);
/// The pause before the one retry of a read: a random time in this range (milliseconds),
/// so many instances that failed together do not retry together.
const RETRY_JITTER_MS: std::ops::Range<u64> = 100..300;

/// A pooled client shared by every provider call.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    timeouts: Timeouts,
    breakers: Breakers,
    slots: Arc<Semaphore>,
    /// Calls to the token endpoint this instance may still make this second: a flood of
    /// sign-ins must not spend App ID's limit, past which it blocks every call for 30 s.
    token_budget: Arc<governor::DefaultDirectRateLimiter>,
    /// The same budget counted for every instance together, when they share a store.
    shared_budget: Option<Arc<dyn SharedBudget>>,
    token_calls_per_sec: u32,
    metrics: Metrics,
}

/// A budget of token-endpoint calls counted across every instance of the app (App ID's
/// limit is the tenant's, not one instance's).
#[rocket::async_trait]
pub trait SharedBudget: Send + Sync + 'static {
    /// Counts one call: `Some(false)` when the `per_sec` calls of this second are spent,
    /// `None` when the count cannot be read (then this instance's own budget decides).
    async fn take(&self, per_sec: u32) -> Option<bool>;
}

impl std::fmt::Debug for dyn SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedBudget")
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// HTTP Basic with client id and secret (RFC 6749 §2.3.1).
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

impl Http {
    /// Builds the client; fails only if the TLS stack cannot start. `breaker_failures`
    /// consecutive failures of one endpoint open its breaker for `breaker_open_for`; at
    /// most `max_concurrent` calls are in flight.
    pub fn new(
        timeouts: Timeouts,
        breaker_failures: u32,
        breaker_open_for: Duration,
        max_concurrent: usize,
        token_calls_per_sec: u32,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            // Following a provider's redirect would let it point us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            // Only https (or http to loopback, checked by the configuration) is ever
            // called; certificates are always verified (no option to turn that off exists).
            .user_agent(concat!("rocket-appid/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Http {
            client,
            timeouts,
            breakers: Breakers::new(breaker_failures, breaker_open_for, metrics.clone()),
            metrics,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            token_budget: Arc::new(governor::DefaultDirectRateLimiter::direct(governor::Quota::per_second(
                std::num::NonZeroU32::new(token_calls_per_sec).unwrap_or(std::num::NonZeroU32::MIN),
            ))),
            shared_budget: None,
            token_calls_per_sec,
        })
    }

    /// The same client, counting token-endpoint calls in `shared` as well.
    pub fn sharing_budget(mut self, shared: Option<Arc<dyn SharedBudget>>) -> Self {
        self.shared_budget = shared;
        self
    }

    /// Counts a token-endpoint call against this instance's budget and, when instances
    /// share one, theirs: false when either is spent this second.
    async fn take_token_call(&self) -> bool {
        if self.token_budget.check().is_err() {
            return false;
        }
        match &self.shared_budget {
            Some(shared) => shared.take(self.token_calls_per_sec).await.unwrap_or(true),
            None => true,
        }
    }

    /// The circuit breakers (for readiness).
    pub fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// GET a JSON document. Reads are idempotent, so one that failed quickly (connection
    /// refused, 5xx) is tried once more after a short random pause; see [`worth_retrying`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        auth: Auth<'_>,
    ) -> Result<T, ProviderError> {
        self.get(endpoint, url, auth, Body::Json).await
    }

    /// [`Http::get_json`] where a 404 with a JSON object as its body is `Ok(None)`: App ID's
    /// management API answers so for a resource it does not have, while a wrong host,
    /// tenant or path gets a plain-text 404 from the edge in front of it, which stays an
    /// error (a configuration error, not an empty answer).
    pub async fn get_json_or_json_404<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        auth: Auth<'_>,
    ) -> Result<Option<T>, ProviderError> {
        self.get(endpoint, url, auth, Body::JsonOrJson404).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        auth: Auth<'_>,
        body: Body,
    ) -> Result<T, ProviderError> {
        let mut retried = false;
        loop {
            let request = authenticate(self.client.get(url), auth);
            match self.send_json(endpoint, request, self.timeouts.request, SMALL_BODY, body).await {
                Err(error) if !retried && worth_retrying(endpoint, &error) => {
                    retried = true;
                    let pause = rand::thread_rng().gen_range(RETRY_JITTER_MS);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                result => return result,
            }
        }
    }

    /// The `Date` header of the answer to a GET of `url`, whatever its status, in seconds
    /// since the epoch (the provider's clock); `None` without a readable one. Outside the
    /// breaker: it is asked once, by `doctor`, and its body is never read.
    pub async fn server_date(&self, endpoint: &'static str, url: &str) -> Result<Option<i64>, ProviderError> {
        let response = self
            .client
            .get(url)
            .timeout(self.timeouts.request)
            .send()
            .await
            .map_err(|e| unreachable(endpoint, &e))?;
        Ok(response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok()))
    }

    /// POST a form and read a JSON answer. Never retried: the code exchange is not
    /// idempotent (a code is single-use), and introspection or IAM failures are cheaper
    /// to report than to double.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        auth: Auth<'_>,
        form: &[(&str, &str)],
        slow: bool,
    ) -> Result<T, ProviderError> {
        let request = authenticate(self.client.post(url), auth).form(form);
        let (timeout, limit) =
            if slow { (self.timeouts.token, TOKEN_BODY) } else { (self.timeouts.request, SMALL_BODY) };
        self.send_json(endpoint, request, timeout, limit, Body::Json).await
    }

    /// POST a form where only the status matters (RFC 7009 revocation answers 200 with an
    /// empty or arbitrary body). Never retried, like [`Http::post_form`].
    pub async fn post_form_status(
        &self,
        endpoint: &'static str,
        url: &str,
        auth: Auth<'_>,
        form: &[(&str, &str)],
    ) -> Result<(), ProviderError> {
        let request = authenticate(self.client.post(url), auth).form(form);
        self.send_json::<serde::de::IgnoredAny>(
            endpoint,
            request,
            self.timeouts.request,
            SMALL_BODY,
            Body::Ignored,
        )
        .await
        .map(|_| ())
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
        timeout: Duration,
        limit: usize,
        body: Body,
    ) -> Result<T, ProviderError> {
        if endpoint == "token" && !self.take_token_call().await {
            tracing::warn!(event = "provider_budget_spent", endpoint);
            self.metrics.provider_call_refused(endpoint, "budget");
            return Err(ProviderError::Unreachable { endpoint, kind: "budget" });
        }
        let permit = match self.breakers.admit(endpoint) {
            Ok(permit) => permit,
            Err(open) => {
                // Not a warning per request: the opening itself was logged once.
                tracing::debug!(
                    event = "provider_breaker_refused",
                    endpoint,
                    retry_in_ms = open.retry_in.as_millis() as u64
                );
                self.metrics.provider_call_refused(endpoint, "circuit_open");
                return Err(ProviderError::Unreachable { endpoint, kind: "circuit_open" });
            }
        };
        let _slot = match tokio::time::timeout(SLOT_WAIT, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            // All slots busy (or the semaphore closed, which never happens): fail fast.
            // The permit is dropped without a verdict: our own overload says nothing about
            // the provider.
            _ => {
                tracing::warn!(event = "provider_overloaded", endpoint);
                self.metrics.provider_call_refused(endpoint, "overloaded");
                return Err(ProviderError::Unreachable { endpoint, kind: "overloaded" });
            }
        };
        let started = Instant::now();
        let mut retry_after = None;
        let request = request.header(ACCEPT, "application/json").timeout(timeout);
        let result = send(endpoint, request, limit, body, &mut retry_after).await;
        permit.finish(outcome(&result, retry_after));
        let elapsed = started.elapsed();
        self.metrics.provider_call(endpoint, result.is_ok(), elapsed);
        let elapsed_ms = elapsed.as_millis() as u64;
        match &result {
            Ok(_) => tracing::debug!(endpoint, elapsed_ms, "provider call ok"),
            Err(error @ ProviderError::Unreachable { kind: "tls", .. }) => {
                // ASVS 16.3.4: a certificate or handshake failure may be an attack (MITM);
                // the call is never repeated over plain http or without verification.
                tracing::error!(event = "backend_tls_failure", endpoint, elapsed_ms, %error)
            }
            Err(error) => {
                let status = match error {
                    ProviderError::Status { status, .. } => *status,
                    _ => 0,
                };
                tracing::warn!(event = "provider_failure", endpoint, status, elapsed_ms, %error)
            }
        }
        result
    }
}

/// What a finished call means for the endpoint's breaker: no answer, 5xx and 429 are
/// failures; any other answer (4xx, malformed) shows the endpoint is up.
fn outcome<T>(result: &Result<T, ProviderError>, retry_after: Option<Duration>) -> CallOutcome {
    match result {
        Ok(_) => CallOutcome::Answered,
        Err(ProviderError::Unreachable { .. }) => CallOutcome::Failed,
        Err(ProviderError::Status { status: 429, .. }) => {
            retry_after.map_or(CallOutcome::Failed, CallOutcome::RetryAfter)
        }
        Err(ProviderError::Status { status, .. }) if *status >= 500 => CallOutcome::Failed,
        Err(_) => CallOutcome::Answered,
    }
}

/// Whether a failed GET is tried once more (R-O8). Discovery and keys: after a connection
/// error or a 5xx (a restarting instance behind the load balancer). Management reads: only
/// after a connection error (nothing reached the service; a 5xx there is reported at once,
/// so a struggling management API is not asked twice per user). Never after a timeout (the
/// user has waited long enough), a 429 (the provider asked us to slow down), an open
/// breaker or our own overload.
fn worth_retrying(endpoint: &str, error: &ProviderError) -> bool {
    let reads_metadata = matches!(endpoint, "discovery" | "publickeys");
    match error {
        ProviderError::Unreachable { kind: "connect", .. } => {
            reads_metadata || endpoint == "management_roles"
        }
        ProviderError::Status { status, .. } => reads_metadata && *status >= 500,
        _ => false,
    }
}

fn authenticate(request: RequestBuilder, auth: Auth<'_>) -> RequestBuilder {
    match auth {
        Auth::None => request,
        Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        Auth::Bearer(token) => request.bearer_auth(token),
    }
}

/// Whether a successful answer's body is read as JSON or ignored (only the status counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Json,
    Ignored,
    /// JSON, read into an `Option` that a 404 with a JSON object body makes `None`.
    JsonOrJson404,
}

async fn send<T: DeserializeOwned>(
    endpoint: &'static str,
    request: RequestBuilder,
    limit: usize,
    body_kind: Body,
    retry_after: &mut Option<Duration>,
) -> Result<T, ProviderError> {
    let mut response = request.send().await.map_err(|e| unreachable(endpoint, &e))?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Only the delay-seconds form; an HTTP-date is rare and treated as absent.
        *retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().contains("json"))
        .unwrap_or(true);
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(ProviderError::TooLarge { endpoint });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(endpoint, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(ProviderError::TooLarge { endpoint });
        }
        body.extend_from_slice(&chunk);
    }
    if body_kind == Body::JsonOrJson404 && status == StatusCode::NOT_FOUND && is_json && is_json_object(&body)
    {
        // `T` is an `Option`, which reads `null` as `None`.
        return serde_json::from_value(serde_json::Value::Null)
            .map_err(|_| ProviderError::Malformed { endpoint, what: "unexpected JSON" });
    }
    if !status.is_success() {
        return Err(ProviderError::Status {
            endpoint,
            status: status.as_u16(),
            error: oauth_error_code(&body),
        });
    }
    if body_kind == Body::Ignored {
        return serde_json::from_value(serde_json::Value::Null)
            .map_err(|_| ProviderError::Malformed { endpoint, what: "unexpected JSON" });
    }
    if !is_json || (body_kind == Body::JsonOrJson404 && !is_json_object(&body)) {
        return Err(ProviderError::Malformed { endpoint, what: "not JSON" });
    }
    serde_json::from_slice(&body).map_err(|_| ProviderError::Malformed { endpoint, what: "unexpected JSON" })
}

/// True if `body` is one JSON object.
fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object())
}

fn unreachable(endpoint: &'static str, error: &reqwest::Error) -> ProviderError {
    let kind = if error.is_timeout() {
        "timeout"
    } else if is_tls(error) {
        "tls"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    ProviderError::Unreachable { endpoint, kind }
}

/// True when the error comes from the TLS layer (bad certificate, failed handshake).
/// reqwest does not classify these, so the causes below the top-level error (whose own
/// message names the URL, not the cause) are inspected.
fn is_tls(error: &reqwest::Error) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        let text = e.to_string().to_ascii_lowercase();
        if ["certificate", "tls", "handshake", "unknownissuer", "received corrupt message"]
            .iter()
            .any(|needle| text.contains(needle))
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The OAuth `error` code of an error body, if it is a short token of safe characters
/// (it ends up in logs, so nothing else from the body is kept).
fn oauth_error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: Option<String>,
    }
    let code = serde_json::from_slice::<ErrorBody>(body).ok()?.error?;
    let safe =
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    safe.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_retried_after_quick_failures_only_and_never_posts() {
        let connect = |endpoint| ProviderError::Unreachable { endpoint, kind: "connect" };
        let status = |endpoint, status| ProviderError::Status { endpoint, status, error: None };
        assert!(worth_retrying("publickeys", &connect("publickeys")));
        assert!(worth_retrying("discovery", &status("discovery", 503)));
        assert!(worth_retrying("management_roles", &connect("management_roles")));
        assert!(!worth_retrying("management_roles", &status("management_roles", 500)));
        assert!(!worth_retrying("publickeys", &status("publickeys", 429)));
        assert!(!worth_retrying(
            "publickeys",
            &ProviderError::Unreachable { endpoint: "publickeys", kind: "timeout" }
        ));
        assert!(!worth_retrying("token", &connect("token")));
        assert!(!worth_retrying("introspect", &status("introspect", 503)));
    }

    #[test]
    fn only_no_answer_5xx_and_429_count_against_the_breaker() {
        let err = |status| Err::<(), _>(ProviderError::Status { endpoint: "x", status, error: None });
        assert_eq!(outcome(&err(500), None), CallOutcome::Failed);
        assert_eq!(outcome(&err(429), None), CallOutcome::Failed);
        assert_eq!(
            outcome(&err(429), Some(Duration::from_secs(7))),
            CallOutcome::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(outcome(&err(400), None), CallOutcome::Answered);
        let malformed = Err::<(), _>(ProviderError::Malformed { endpoint: "x", what: "y" });
        assert_eq!(outcome(&malformed, None), CallOutcome::Answered);
    }

    #[test]
    fn only_short_safe_oauth_error_codes_are_kept() {
        let ok = oauth_error_code(br#"{"error":"invalid_grant","error_description":"x"}"#);
        assert_eq!(ok.as_deref(), Some("invalid_grant"));
        assert_eq!(oauth_error_code(br#"{"error":"<script>"}"#), None);
        assert_eq!(oauth_error_code(b"<html>"), None);
    }
}
