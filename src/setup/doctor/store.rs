//! The session store: which one the settings choose and, for Redis, whether it answers
//! (URL, TLS and CA, the password, and that the server lets this machine in).

use std::time::Duration;

use rocket::figment::Figment;

use super::report::Report;
use crate::config::{AppIdConfig, ConfigProblems, SessionStoreMode};
use crate::metrics::Metrics;
use crate::setup::store::{self, StoreChoice};

const CHECK: &str = "session store";
/// How long Redis has to answer: it connects in the background, over TLS possibly far away.
const PATIENCE: Duration = Duration::from_secs(5);

/// Reports the store settings' problems, the backend they choose, and whether Redis answers.
pub(super) async fn check(figment: &Figment, config: &AppIdConfig, report: &mut Report) {
    let mut problems = ConfigProblems::default();
    let choice = store::read(figment, &mut problems);
    if !problems.0.is_empty() {
        for problem in &problems.0 {
            report.fail(CHECK, format!("{} {}", problem.name, problem.what), "see README, Several instances");
        }
        return;
    }
    let server_side = config.session_store == SessionStoreMode::Server;
    if let StoreChoice::InProcess = choice {
        let text = "in each process (APPID_STORE_URL unset): right for one instance only";
        if server_side {
            report.warn(CHECK, format!("{text}; server-side sessions end when the process restarts"));
        } else {
            report.info(CHECK, text);
        }
        return;
    }
    let store = match store::build(choice, config, &Metrics::new()) {
        Ok((store, _)) => store,
        Err(error) => {
            report.fail(CHECK, format!("APPID_STORE_URL {error}"), "see README, Several instances");
            return;
        }
    };
    let started = tokio::time::Instant::now();
    while started.elapsed() < PATIENCE {
        if store.session_record("rocket-appid-doctor").await.is_ok() {
            let sessions = if server_side { "sessions and deny-list" } else { "deny-list and renewals" };
            report.ok(CHECK, format!("Redis answers ({sessions} shared by every instance)"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    report.fail(
        CHECK,
        "Redis at APPID_STORE_URL does not answer",
        "check the URL secret (host, port, user, password), APPID_STORE_CA_FILE for its CA, and that the Redis allows connections from here",
    );
}
