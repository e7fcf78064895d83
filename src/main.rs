//! Starts rocket-appid (see README.md). Exits non-zero, after saying why, when it cannot launch.

use std::process::ExitCode;

#[rocket::main]
async fn main() -> ExitCode {
    // Rocket's own records (it logs every request URL, including /afterauth's code) are
    // kept at warn unless RUST_LOG says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "info,rocket::=warn,_=warn,rocket_dyn_templates=warn,hyper=warn,reqwest=warn".into()
    });
    // JSON lines outside the debug profile (Code Engine collects stdout), text in debug;
    // LOG_FORMAT=json|text overrides.
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => rocket_appid::config::figment().profile() != "debug",
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    match rocket_appid::rocket().launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            // The fairing has already listed every configuration problem.
            tracing::error!("rocket-appid could not start: {}", error.pretty_print());
            ExitCode::FAILURE
        }
    }
}
