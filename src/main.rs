//! Starts rocket-appid (see README.md). Exits non-zero, after saying why, when it cannot launch.

use std::process::ExitCode;

#[rocket::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APP_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    match rocket_appid::rocket().launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            // The fairing has already listed every configuration problem.
            tracing::error!("rocket-appid could not start: {}", error.pretty_print());
            ExitCode::FAILURE
        }
    }
}
