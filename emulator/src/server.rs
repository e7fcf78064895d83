//! Building, launching and standalone running of the emulator's Rocket server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

use rocket::config::{Config, Ident, LogLevel, Shutdown as ShutdownConfig};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Orbit, Rocket};
use tokio::sync::oneshot;

use crate::error::EmulatorError;
use crate::state::Emulator;

/// A running emulator (an HTTP server on a real socket).
#[derive(Debug)]
pub struct RunningEmulator {
    /// Handle to the emulator's state, knobs and counters.
    pub emulator: Emulator,
    /// e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub base_url: String,
    /// `{base_url}/oauth/v4/{tenant_id}` (App ID's oAuthServerUrl).
    pub oauth_server_url: String,
    /// `{base_url}/identity/token`.
    pub iam_token_url: String,
    /// `{base_url}/management/v4/{tenant_id}`.
    pub management_url: String,
    /// Stops the server when notified.
    pub shutdown: rocket::Shutdown,
}

/// Builds the emulator's Rocket without launching it. The server never reacts to Ctrl-C or
/// signals (so it can live inside a host app) and logs at `critical` only.
pub fn rocket(emulator: Emulator) -> Rocket<Build> {
    build(emulator, false)
}

fn build(emulator: Emulator, handle_signals: bool) -> Rocket<Build> {
    let cfg = emulator.config();
    let mut shutdown = ShutdownConfig { grace: 1, mercy: 1, ..ShutdownConfig::default() };
    if !handle_signals {
        shutdown.ctrlc = false;
        #[cfg(unix)]
        shutdown.signals.clear();
    }
    let config = Config {
        address: cfg.address,
        port: cfg.port,
        log_level: LogLevel::Critical,
        cli_colors: false,
        ident: Ident::try_new("appid-emulator").unwrap_or_default(),
        shutdown,
        ..Config::release_default()
    };
    // Only this figment is used: the host's Rocket.toml and ROCKET_* variables must not
    // reconfigure the emulator. The release profile avoids debug-only warnings; its
    // secret-key check (active when a workspace sibling enables Rocket's "secrets" feature)
    // is satisfied with a throwaway key, since the emulator sets no cookies.
    let figment = Figment::from(config).merge(("secret_key", hex(&crate::util::random_bytes(32))));
    let recorder = emulator.clone();
    let faults = crate::fault::Faults(emulator.clone());
    let clock = emulator.clone();
    rocket::custom(figment)
        .attach(faults)
        // The Date header tells the emulator clock too, so a simulated skew is visible to
        // clients that compare clocks (as App ID's would be).
        .attach(AdHoc::on_response("appid-emulator clock", move |_, res| {
            let now = clock.now();
            Box::pin(async move {
                if now != crate::util::unix_now() {
                    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64);
                    res.set_raw_header("Date", httpdate::fmt_http_date(at));
                }
            })
        }))
        .manage(emulator)
        .mount("/", crate::routes::routes())
        .register("/", crate::routes::catchers())
        .attach(AdHoc::on_liftoff("appid-emulator base url", move |r| {
            let emu = recorder.clone();
            Box::pin(async move { emu.set_base_url(bound_url(r)) })
        }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// URL of the bound socket; a wildcard bind address is published as loopback.
fn bound_url(r: &Rocket<Orbit>) -> String {
    let ip = match r.config().address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, r.config().port))
}

/// Launches the emulator in a background task and returns once it accepts connections.
pub async fn spawn(config: crate::EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    // Key generation is CPU-bound (noticeable in debug builds); keep it off the async threads.
    let emulator = tokio::task::spawn_blocking(move || Emulator::new(config))
        .await
        .map_err(|_| EmulatorError::KeyGeneration)??;
    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let rocket = rocket(emulator.clone()).attach(AdHoc::on_liftoff("appid-emulator ready", move |r| {
        let sender = tx.lock().ok().and_then(|mut t| t.take());
        let shutdown = r.shutdown();
        Box::pin(async move {
            if let Some(sender) = sender {
                let _ = sender.send(shutdown);
            }
        })
    }));
    let task = tokio::spawn(async move {
        // Display marks Rocket's error handled (it panics on drop otherwise).
        rocket.launch().await.map(drop).map_err(|e| e.to_string())
    });
    let shutdown = match rx.await {
        Ok(shutdown) => shutdown,
        Err(_) => {
            return Err(match task.await {
                Ok(Err(message)) => EmulatorError::Launch(message),
                _ => EmulatorError::NotStarted,
            })
        }
    };
    Ok(RunningEmulator {
        base_url: emulator.base_url(),
        oauth_server_url: emulator.oauth_server_url(),
        iam_token_url: format!("{}/identity/token", emulator.base_url()),
        management_url: emulator.management_url(),
        emulator,
        shutdown,
    })
}

/// Runs the emulator as a standalone development server configured from `EMULATOR_*`
/// variables, prints the settings an App ID app needs, and serves until Ctrl-C/SIGTERM.
pub async fn run_standalone() -> Result<(), EmulatorError> {
    let config = crate::env_config::from_env(|name| std::env::var(name).ok())?;
    let emulator = tokio::task::spawn_blocking(move || Emulator::new(config))
        .await
        .map_err(|_| EmulatorError::KeyGeneration)??;
    // A slow token endpoint, for shutdown and timeout measurements of an app (scripts/).
    if let Some(ms) = std::env::var("EMULATOR_TOKEN_DELAY_MS").ok().filter(|v| !v.is_empty()) {
        let ms: u64 = ms.parse().map_err(|_| {
            EmulatorError::Config("EMULATOR_TOKEN_DELAY_MS must be a number of milliseconds".into())
        })?;
        emulator.set_fault(
            crate::state::Endpoint::Token,
            crate::fault::Fault::delay(std::time::Duration::from_millis(ms)),
        );
    }
    let banner = emulator.clone();
    build(emulator, true)
        .attach(AdHoc::on_liftoff("appid-emulator banner", move |_| {
            let emu = banner.clone();
            Box::pin(async move { println!("{}", crate::env_config::banner(&emu)) })
        }))
        .launch()
        .await
        .map(drop)
        .map_err(|e| EmulatorError::Launch(e.to_string()))
}
