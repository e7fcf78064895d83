//! The one outbound HTTP client: connect and total timeouts, no redirects,
//! capped response bodies, status checked before anything is parsed.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Client, RequestBuilder};
use serde::de::DeserializeOwned;

use super::error::ProviderError;
use crate::config::Timeouts;

/// Largest body accepted from most endpoints.
pub const SMALL_BODY: usize = 64 * 1024;
/// Largest token response accepted (App ID tokens may carry up to 100 KB of custom claims).
pub const TOKEN_BODY: usize = 256 * 1024;

/// A pooled client shared by every provider call.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    timeouts: Timeouts,
}

/// How a request authenticates.
pub enum Auth<'a> {
    None,
    /// HTTP Basic with client id and secret (RFC 6749 §2.3.1).
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

impl Http {
    /// Builds the client; fails only if the TLS stack cannot start.
    pub fn new(timeouts: Timeouts) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            // Following a provider's redirect would let it point us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rocket-appid/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Http { client, timeouts })
    }

    /// GET a JSON document.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        auth: Auth<'_>,
    ) -> Result<T, ProviderError> {
        let request = authenticate(self.client.get(url), auth);
        self.send_json(endpoint, request, self.timeouts.request, SMALL_BODY).await
    }

    /// POST a form and read a JSON answer.
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
        self.send_json(endpoint, request, timeout, limit).await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
        timeout: Duration,
        limit: usize,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let result = send(endpoint, request.header(ACCEPT, "application/json").timeout(timeout), limit).await;
        let elapsed = started.elapsed();
        crate::metrics::METRICS.provider_call(endpoint, result.is_ok(), elapsed);
        let elapsed_ms = elapsed.as_millis();
        match &result {
            Ok(_) => tracing::debug!(endpoint, elapsed_ms, "provider call ok"),
            Err(error) => tracing::warn!(event = "provider_failure", endpoint, elapsed_ms, %error),
        }
        result
    }
}

fn authenticate(request: RequestBuilder, auth: Auth<'_>) -> RequestBuilder {
    match auth {
        Auth::None => request,
        Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        Auth::Bearer(token) => request.bearer_auth(token),
    }
}

async fn send<T: DeserializeOwned>(
    endpoint: &'static str,
    request: RequestBuilder,
    limit: usize,
) -> Result<T, ProviderError> {
    let mut response = request.send().await.map_err(|e| unreachable(endpoint, &e))?;
    let status = response.status();
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
    if !status.is_success() {
        return Err(ProviderError::Status {
            endpoint,
            status: status.as_u16(),
            error: oauth_error_code(&body),
        });
    }
    if !is_json {
        return Err(ProviderError::Malformed { endpoint, what: "not JSON" });
    }
    serde_json::from_slice(&body).map_err(|_| ProviderError::Malformed { endpoint, what: "unexpected JSON" })
}

fn unreachable(endpoint: &'static str, error: &reqwest::Error) -> ProviderError {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    ProviderError::Unreachable { endpoint, kind }
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
    fn only_short_safe_oauth_error_codes_are_kept() {
        let ok = oauth_error_code(br#"{"error":"invalid_grant","error_description":"x"}"#);
        assert_eq!(ok.as_deref(), Some("invalid_grant"));
        assert_eq!(oauth_error_code(br#"{"error":"<script>"}"#), None);
        assert_eq!(oauth_error_code(b"<html>"), None);
    }
}
