//! Starts rocket-appid (see README.md). Exits non-zero, after saying why, when it cannot launch.
//! `rocket-appid doctor` checks the configuration against the live provider instead.

use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log targets of Rocket's own records that print the request line (`GET /afterauth?code=…`),
/// e.g. "No matching routes for POST /afterauth?code=…" at error level, or a salvaged bad
/// request at warn. Our request log (`event = "request"`) replaces them.
const REQUEST_LINE_TARGETS: &[&str] = &["rocket::server", "rocket::request"];

/// True for records that may carry a request URI and are therefore never written.
fn may_print_request_uri(target: &str) -> bool {
    REQUEST_LINE_TARGETS
        .iter()
        .any(|t| target.strip_prefix(t).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

const USAGE: &str = "usage: rocket-appid [doctor]\n  (no argument)  serve the app\n  doctor         check the configuration against the live provider, then exit";

#[rocket::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None => {}
        // Its own report on stdout, without the app's log lines in between.
        Some("doctor") => return rocket_appid::setup::doctor::run().await,
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    // Rocket's other records (launch, configuration) are kept at warn unless RUST_LOG says
    // otherwise. Rocket's `log_level` has no effect here: its logger is not installed
    // because ours is, so RUST_LOG alone decides.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,rocket::=warn,rocket_dyn_templates=warn,hyper=warn,reqwest=warn".into());
    // Applied after RUST_LOG, which cannot re-enable these targets: a code or state in a
    // URL must not reach the log whatever the operator asks for (security.md R-E1).
    let no_request_lines = filter_fn(|meta| !may_print_request_uri(meta.target()));
    // JSON lines outside the debug profile (Code Engine collects stdout), text in debug;
    // LOG_FORMAT=json|text overrides. Timestamps are RFC 3339 in UTC.
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => rocket_appid::config::figment().profile() != "debug",
    };
    // Lines are written by a thread of their own, so that no request waits for stdout: a
    // writer that drains all pending lines before it flushes sends them in one system call
    // under load. Never lossy (a full queue makes the logging thread wait instead), and the
    // guard flushes what is left when `main` returns.
    let (stdout, _flush_at_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()));
    let registry = tracing_subscriber::registry().with(no_request_lines).with(filter);
    if json {
        let layer = tracing_subscriber::fmt::layer().json().flatten_event(true).with_target(false);
        registry.with(layer.with_writer(stdout)).init();
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_target(false).with_writer(stdout)).init();
    }
    let rocket = match rocket_appid::rocket().ignite().await {
        Ok(rocket) => rocket,
        Err(error) => return failed(error),
    };
    let shutdown = rocket.shutdown();
    let drain = rocket.state::<rocket_appid::web::drain::Drain>().cloned();
    // The longest a request in flight at SIGTERM may take to finish.
    let grace = Duration::from_secs(u64::from(rocket.config().shutdown.grace));
    let stop = stop_signal();
    let launch = rocket.launch();
    tokio::pin!(launch);
    let signal = tokio::select! {
        result = &mut launch => return result.map_or_else(failed, |_| ExitCode::SUCCESS),
        signal = stop => signal,
    };
    tracing::info!(event = "shutdown", signal, "stopping: finishing the requests in flight");
    if let Some(drain) = drain {
        drain.begin();
        if tokio::time::timeout(grace, drain.idle()).await.is_err() {
            tracing::warn!(event = "shutdown_deadline", in_flight = drain.in_flight());
        }
    }
    shutdown.notify();
    // Only idle connections can be open now; Rocket would wait out its grace for them.
    let _ = tokio::time::timeout(Duration::from_millis(250), &mut launch).await;
    ExitCode::SUCCESS
}

/// SIGTERM (Code Engine, `podman stop`) or Ctrl-C; its name. Registered before the server
/// listens, so that no SIGTERM finds the process without its handler.
fn stop_signal() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let (terminate, interrupt) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        match (terminate, interrupt) {
            (Ok(mut terminate), Ok(mut interrupt)) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            },
            // Cannot happen on Linux; without handlers the signals' default (exit) applies.
            _ => std::future::pending().await,
        }
    }
}

fn failed(error: rocket::Error) -> ExitCode {
    // The fairing has already listed every configuration problem.
    tracing::error!("rocket-appid could not start: {}", error.pretty_print());
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::may_print_request_uri;

    #[test]
    fn rockets_request_line_targets_are_dropped_and_others_kept() {
        for target in ["rocket::server", "rocket::server::_", "rocket::request::request"] {
            assert!(may_print_request_uri(target), "{target}");
        }
        for target in ["rocket::launch", "rocket::launch::_", "rocket::serverless", "rocket_appid::auth"] {
            assert!(!may_print_request_uri(target), "{target}");
        }
    }
}
