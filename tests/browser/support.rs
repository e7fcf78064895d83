//! Processes and files the browser suite needs: the app binary (with its embedded App ID
//! emulator), chromedriver, free loopback ports, and the output directories.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The session key every app process of the suite uses (not a real secret).
pub const SESSION_SECRET_KEY: &str = "browser tests only: a passphrase long enough to be stretched";

/// A child process that is killed when dropped (also when a scenario fails).
pub struct Proc {
    pub name: &'static str,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// `target/` of this package (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A directory under `target/`, created if missing.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = target_dir().join(name);
    std::fs::create_dir_all(&dir).expect("create an output directory under target/");
    dir
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a local address").port()
}

/// The HTTP status of `GET path` on a loopback port, or None when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until `GET path` answers with any status; Err after `secs`.
pub fn wait_for_http(proc: &mut Proc, port: u16, path: &str, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if http_status(port, path).is_some() {
            return Ok(());
        }
        if !proc.is_running() {
            return Err(format!("{} exited before it answered (see target/browser-tests/*.log)", proc.name));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!("{} did not answer on port {port} within {secs} s", proc.name))
}

/// The app binary on a free port, configured only by environment variables like a real
/// deployment: `extra` adds or overrides variables (e.g. an unreachable provider).
/// With no `APPID_OAUTH_SERVER_URL` the debug profile starts the embedded emulator.
pub struct App {
    pub port: u16,
    /// Started with `APPID_PKCE=always`: its logins carry PKCE although the emulator, like
    /// App ID, lists none.
    pub pkce: bool,
    _proc: Proc,
}

impl App {
    pub fn start(log_name: &str, port: u16, extra: &[(&str, String)]) -> Result<App, String> {
        let log = std::fs::File::create(out_dir("browser-tests").join(format!("{log_name}.log")))
            .map_err(|e| format!("app log: {e}"))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_rocket-appid"));
        command.current_dir(env!("CARGO_MANIFEST_DIR"));
        // Start from a clean slate: nothing from the caller's App ID or Rocket settings.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().to_string();
            if key.starts_with("APPID_")
                || key.starts_with("ROCKET_")
                || key.starts_with("IBM_CLOUD_")
                || key == "PORT"
                || key == "SESSION_SECRET_KEY"
            {
                command.env_remove(key);
            }
        }
        command
            .env("ROCKET_PROFILE", "debug")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env("SESSION_SECRET_KEY", SESSION_SECRET_KEY)
            // Every browser of the suite signs in from 127.0.0.1; the limits have their own
            // tests (tests/app/abuse.rs).
            .env("APPID_SIGN_IN_PER_MINUTE", "1000")
            .env("APPID_TOKEN_CALLS_PER_SEC", "1000")
            .env("RUST_LOG", "info");
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start the app binary: {e}"))?;
        let mut proc = Proc { name: "the app", child };
        wait_for_http(&mut proc, port, "/health", 30)?;
        let pkce = extra.iter().any(|(key, value)| *key == "APPID_PKCE" && value == "always");
        Ok(App { port, pkce, _proc: proc })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// chromedriver on a free loopback port.
pub struct Driver {
    pub url: String,
    _proc: Proc,
}

impl Driver {
    pub fn start(chromedriver: &Path) -> Result<Driver, String> {
        let port = free_port();
        let log = out_dir("browser-tests").join("chromedriver.log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", chromedriver.display()))?;
        let mut proc = Proc { name: "chromedriver", child };
        wait_for_http(&mut proc, port, "/status", 20)?;
        Ok(Driver { url: format!("http://127.0.0.1:{port}"), _proc: proc })
    }
}

/// The first of `candidates` that exists, or the first `name` found on PATH.
pub fn find_program(env_var: &str, candidates: &[&str], name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file()))
    })
}
