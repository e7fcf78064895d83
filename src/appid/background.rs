//! The background refresh of provider metadata and signing keys, so no request waits for
//! them and launch never does either.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::{AppId, JWKS_REFRESH_INTERVAL};

impl AppId {
    /// Fetches discovery and keys now, then every [`JWKS_REFRESH_INTERVAL`], until `stop`
    /// completes. While the provider cannot be reached it retries with exponential backoff
    /// (1 s, 2 s, 4 s … at most 60 s), plus jitter so a fleet restarted together does not
    /// retry in step. Failures keep the last good keys.
    pub async fn keep_fresh(self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut failures: u32 = 0;
        loop {
            let next = match self.refresh_keys().await {
                Ok(keys) => {
                    tracing::info!(event = "provider_keys_loaded", keys);
                    failures = 0;
                    JWKS_REFRESH_INTERVAL
                }
                Err(error) => {
                    let delay = refresh_backoff(failures);
                    failures = failures.saturating_add(1);
                    tracing::warn!(event = "provider_not_ready", %error, retry_in_ms = delay.as_millis() as u64);
                    delay
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = &mut stop => break,
            }
        }
    }
}

/// The pause before background retry number `failures + 1` of discovery and keys.
fn refresh_backoff(failures: u32) -> Duration {
    let base = 1u64 << failures.min(6);
    let jitter = rand::thread_rng().gen_range(0..250);
    Duration::from_secs(base.min(60)) + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_retries_back_off_exponentially_up_to_a_minute() {
        assert!(refresh_backoff(0) >= Duration::from_secs(1) && refresh_backoff(0) < Duration::from_secs(2));
        assert!(refresh_backoff(2) >= Duration::from_secs(4));
        assert!(refresh_backoff(30) <= Duration::from_millis(60_250));
    }
}
