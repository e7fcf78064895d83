//! Abuse limits on signing in: per-client token buckets on starting a login and on the
//! callback, so that nobody can make this app spend App ID's rate limit (about 200 calls a
//! second per App ID instance, then every call blocked for 30 s) on logins that never
//! finish or on junk codes. Over the limit the caller gets 429 with `Retry-After`, and the
//! provider is not asked.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use rocket::request::Request;

/// The default of `appid.sign_in_per_minute`: logins one client may start per minute (all
/// at once, then one every 6 s); it may finish twice as many (a callback can be reloaded).
pub const SIGN_IN_PER_MINUTE: u32 = 10;
/// Every this many checks, clients whose buckets are full again are forgotten, so the
/// table of clients cannot grow without bound.
const PRUNE_EVERY: u64 = 1024;

/// Which limit refused a request, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub retry_after: Duration,
}

/// The sign-in limits of one app (managed state).
pub struct SignInLimits {
    logins: DefaultKeyedRateLimiter<IpAddr>,
    callbacks: DefaultKeyedRateLimiter<IpAddr>,
    /// Proxies in front of the app that append to `X-Forwarded-For` (0: the peer address
    /// is the client).
    trusted_proxies: usize,
    checks: AtomicU64,
    clock: DefaultClock,
}

/// `per_minute` at once, refilled evenly over a minute.
fn per_minute(per_minute: u32) -> Quota {
    let burst = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(burst).allow_burst(burst)
}

impl SignInLimits {
    /// Limits of `per_minute` logins started (twice that finished) per client, for a
    /// deployment behind `trusted_proxies` proxies.
    pub fn new(per_minute: u32, trusted_proxies: usize) -> Self {
        SignInLimits {
            logins: DefaultKeyedRateLimiter::keyed(self::per_minute(per_minute)),
            callbacks: DefaultKeyedRateLimiter::keyed(self::per_minute(per_minute.saturating_mul(2))),
            trusted_proxies,
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// May this request start a login?
    pub fn start_login(&self, request: &Request<'_>) -> Result<(), OverLimit> {
        self.check(&self.logins, request)
    }

    /// May this request finish one (`/afterauth`)?
    pub fn finish_login(&self, request: &Request<'_>) -> Result<(), OverLimit> {
        self.check(&self.callbacks, request)
    }

    fn check(
        &self,
        limiter: &DefaultKeyedRateLimiter<IpAddr>,
        request: &Request<'_>,
    ) -> Result<(), OverLimit> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.logins.retain_recent();
            self.callbacks.retain_recent();
        }
        // A request without a known peer (not over a socket) has no client to limit.
        let Some(client) = client_ip(request, self.trusted_proxies) else { return Ok(()) };
        limiter
            .check_key(&client)
            .map_err(|not_until| OverLimit { retry_after: not_until.wait_time_from(self.clock.now()) })
    }
}

/// The client's address: the peer, or with `trusted_proxies` proxies in front, the
/// `X-Forwarded-For` entry that many places from the right (each proxy appends the address
/// it received the request from, so entries further left are the client's own claims and
/// can be forged). Rocket's `ip_header` stays off: it would read one header as given.
pub fn client_ip(request: &Request<'_>, trusted_proxies: usize) -> Option<IpAddr> {
    let peer = request.remote().map(|addr| addr.ip());
    if trusted_proxies == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = request
        .headers()
        .get("X-Forwarded-For")
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    match forwarded.len().checked_sub(trusted_proxies) {
        Some(index) => forwarded.get(index).and_then(|entry| entry.parse().ok()).or(peer),
        // Fewer entries than proxies: the request did not come through all of them.
        None => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::http::Header;
    use rocket::local::blocking::Client;

    fn ip_of(trusted: usize, forwarded: Option<&str>) -> Option<IpAddr> {
        let client = Client::debug_with(vec![]).unwrap();
        let mut request = client.get("/").remote("10.0.0.9:5000".parse().unwrap());
        if let Some(value) = forwarded {
            request = request.header(Header::new("X-Forwarded-For", value.to_string()));
        }
        client_ip(request.inner(), trusted)
    }

    #[test]
    fn the_client_is_the_entry_the_trusted_proxies_vouch_for() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(ip_of(0, Some("1.2.3.4")), Some(peer), "no proxies: the header is ignored");
        assert_eq!(
            ip_of(1, Some("6.6.6.6, 1.2.3.4")),
            "1.2.3.4".parse().ok(),
            "the forged entry is left of it"
        );
        assert_eq!(ip_of(2, Some("6.6.6.6, 1.2.3.4, 10.1.1.1")), "1.2.3.4".parse().ok());
        assert_eq!(ip_of(2, Some("1.2.3.4")), Some(peer), "fewer entries than proxies");
        assert_eq!(ip_of(1, Some("junk")), Some(peer));
        assert_eq!(ip_of(1, None), Some(peer));
    }

    #[test]
    fn a_client_over_its_burst_is_told_when_to_come_back_and_others_are_not_affected() {
        let limits = SignInLimits::new(SIGN_IN_PER_MINUTE, 0);
        let client = Client::debug_with(vec![]).unwrap();
        let from = |addr: &str| client.get("/").remote(addr.parse().unwrap());
        let flooder = from("192.0.2.1:1000");
        for _ in 0..SIGN_IN_PER_MINUTE {
            assert!(limits.start_login(flooder.inner()).is_ok());
        }
        let refused = limits.start_login(flooder.inner()).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(6));
        assert!(limits.start_login(from("192.0.2.2:1000").inner()).is_ok(), "another client");
        assert!(limits.finish_login(flooder.inner()).is_ok(), "callbacks have their own bucket");
    }
}
