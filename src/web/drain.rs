//! A fast, clean stop. Rocket 0.5.2 waits its whole `shutdown.grace` whenever any
//! connection is open at shutdown, even an idle keep-alive one, and Code Engine stops
//! instances on every scale-down and deploy. So the process handles SIGTERM itself
//! (`src/main.rs`): it marks the app as draining (responses then close their connection),
//! waits until no request is in flight, and only then asks Rocket to stop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Request, Response};

/// Counts the requests in flight and closes connections while draining. Attach it and
/// manage a clone (see `crate::build`).
#[derive(Clone, Default)]
pub struct Drain(Arc<State>);

#[derive(Default)]
struct State {
    in_flight: AtomicUsize,
    draining: AtomicBool,
}

/// One request in flight, for as long as Rocket keeps the request (its response included).
struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drain {
    /// From now on every response closes its connection.
    pub fn begin(&self) {
        self.0.draining.store(true, Ordering::Release);
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Acquire)
    }

    /// Completes once no request is in flight.
    pub async fn idle(&self) {
        while self.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[rocket::async_trait]
impl Fairing for Drain {
    fn info(&self) -> Info {
        Info { name: "Drain", kind: Kind::Request | Kind::Response }
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut Data<'_>) {
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        let state = self.0.clone();
        request.local_cache(move || InFlight(state));
    }

    async fn on_response<'r>(&self, _: &'r Request<'_>, response: &mut Response<'r>) {
        if self.0.draining.load(Ordering::Acquire) {
            // An idle keep-alive connection would hold the shutdown up.
            response.set_raw_header("Connection", "close");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_requests_in_flight() {
        let drain = Drain::default();
        drain.0.in_flight.fetch_add(1, Ordering::AcqRel);
        let request = InFlight(drain.0.clone());
        let waiting = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a request is in flight");
        drop(request);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.ok();
        assert_eq!(drain.in_flight(), 0);
    }
}
