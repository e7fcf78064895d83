//! One log line per request: request id, method, route (the route's pattern, never the
//! query, which may hold authorization codes), status and duration.

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Request, Response};

/// Logs every request and answers with its id in `X-Request-Id`.
#[derive(Debug, Default)]
pub struct RequestLog;

struct Started {
    at: Instant,
    id: String,
}

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info { name: "Request log", kind: Kind::Request | Kind::Response }
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut Data<'_>) {
        // An id only tells log lines apart: the thread's generator (seeded from the OS)
        // serves, without a system call and eight small strings per request.
        let id = format!("{:016x}", rand::random::<u64>());
        request.local_cache(|| Started { at: Instant::now(), id });
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let started = request.local_cache(|| Started { at: Instant::now(), id: "-".into() });
        let route = request.route().map(|r| r.uri.origin.path().as_str()).unwrap_or("-");
        tracing::info!(
            event = "request",
            id = %started.id,
            method = %request.method(),
            route,
            status = response.status().code,
            duration_us = started.at.elapsed().as_micros() as u64,
        );
        response.set_raw_header("X-Request-Id", started.id.clone());
    }
}
