//! Runs the App ID emulator on its own, so any App ID application can be pointed at it.

use std::process::ExitCode;

#[rocket::main]
async fn main() -> ExitCode {
    match appid_emulator::run_standalone().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("appid-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}
