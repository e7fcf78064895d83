//! R-E1 canary test and R-E4 security events: the REAL binary, at production log settings,
//! driven over real HTTP through full logins and the bad-input corpus with planted secret
//! values. Nothing secret may reach its stdout or stderr: neither the canaries nor any real
//! authorization code, state, nonce, token or cookie value that passed through during the run.
//!
//! The app talks to an in-process emulator through a small recording relay, so the test also
//! knows the tokens the provider handed to the app (the emulator publishes the relay's URL as
//! its issuer). The relay can also fail the token endpoint once, for a provider failure with
//! an HTTP status and a body full of provider text.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appid_emulator::{EmulatorConfig, RunningEmulator};
use reqwest::Method;
use rocket::http::uri::Origin;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::State;
use serde_json::Value;
use url::Url;

use crate::common::{free_port, ALICE, BOB, CAROL};

// ---------------------------------------------------------------------------------------
// The canaries. Every planted value contains "CANARY"; the final check also looks for that
// word in any case, so an encoded, truncated or lower-cased copy is caught too.

const CANARY_CLIENT_SECRET: &str = "CANARY-client-secret-7f3a9c";
const CANARY_API_KEY: &str = "CANARY-ibm-cloud-apikey-52be10";
const CANARY_SESSION_KEY: &str = "CANARY-session-secret-key-passphrase-0123456789";
const CANARY_CODE: &str = "CANARY-code-b41d";
const CANARY_STATE: &str = "CANARY-state-9e2c";
const CANARY_TOKEN: &str = "CANARY-bearer-token-eyJhbGciOiJub25lIn0";
const CANARY_COOKIE: &str = "CANARY-cookie-value-4c1f";
const CANARY_RETURN: &str = "CANARY-return-to-d00d";
const CANARY_DESCRIPTION: &str = "CANARY-error-description";
const CANARY_HEADER: &str = "CANARY-header-value";

/// Every canary, for the per-value report.
const CANARIES: &[&str] = &[
    CANARY_CLIENT_SECRET,
    CANARY_API_KEY,
    CANARY_SESSION_KEY,
    CANARY_CODE,
    CANARY_STATE,
    CANARY_TOKEN,
    CANARY_COOKIE,
    CANARY_RETURN,
    CANARY_DESCRIPTION,
    CANARY_HEADER,
];

// ---------------------------------------------------------------------------------------
// The recording relay between the app and the emulator.

/// Forwards every request to the emulator and keeps every token it hands out.
struct Relay {
    upstream: String,
    client: reqwest::Client,
    /// Secrets seen between app and provider: tokens in answers (access, id, refresh, IAM),
    /// and codes, PKCE verifiers, tokens and credentials in requests.
    tokens: Mutex<Vec<String>>,
    /// When set, the next code exchange is answered 503 with provider text (one shot).
    fail_next_token: AtomicBool,
}

/// The request headers the emulator needs.
struct Forwarded(Vec<(String, String)>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Forwarded {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let headers = ["Authorization", "Content-Type", "Accept"]
            .iter()
            .flat_map(|name| request.headers().get(name).map(|v| (name.to_string(), v.to_string())))
            .collect();
        Outcome::Success(Forwarded(headers))
    }
}

/// The emulator's answer, passed back unchanged.
struct Relayed {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl<'r> Responder<'r, 'static> for Relayed {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(Status::new(self.status));
        for (name, value) in self.headers {
            response.raw_header(name, value);
        }
        response.sized_body(self.body.len(), std::io::Cursor::new(self.body));
        Ok(response.finalize())
    }
}

impl Relay {
    async fn forward(&self, method: Method, uri: &Origin<'_>, fwd: Forwarded, body: Vec<u8>) -> Relayed {
        let is_code_exchange = method == Method::POST
            && uri.path().as_str().ends_with("/token")
            && uri.path().as_str().contains("/oauth/v4/");
        if is_code_exchange && self.fail_next_token.swap(false, Ordering::SeqCst) {
            let text = format!(
                r#"{{"error":"temporarily_unavailable","error_description":"{CANARY_DESCRIPTION} <script>x</script>"}}"#
            );
            return Relayed {
                status: 503,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: text.into_bytes(),
            };
        }
        // What the app sends is secret too: the code and PKCE verifier at the token endpoint,
        // the tokens it introspects, its client credentials and IAM bearer token.
        {
            let mut secrets = self.tokens.lock().unwrap();
            for (key, value) in url::form_urlencoded::parse(&body) {
                if matches!(key.as_ref(), "code" | "code_verifier" | "token" | "apikey" | "refresh_token") {
                    secrets.push(value.into_owned());
                }
            }
            for (name, value) in &fwd.0 {
                if name == "Authorization" {
                    secrets.extend(value.split_once(' ').map(|(_, credentials)| credentials.to_string()));
                }
            }
        }
        let mut request = self.client.request(method, format!("{}{}", self.upstream, uri));
        for (name, value) in fwd.0 {
            request = request.header(name, value);
        }
        let answer = request.body(body).send().await.expect("the emulator answers");
        let status = answer.status().as_u16();
        let headers = ["content-type", "location", "cache-control", "retry-after"]
            .iter()
            .filter_map(|n| {
                answer.headers().get(*n).and_then(|v| v.to_str().ok()).map(|v| (n.to_string(), v.into()))
            })
            .collect();
        let body = answer.bytes().await.expect("a body").to_vec();
        if let Ok(json) = serde_json::from_slice::<Value>(&body) {
            let mut tokens = self.tokens.lock().unwrap();
            for key in ["access_token", "id_token", "refresh_token"] {
                if let Some(token) = json[key].as_str() {
                    tokens.push(token.to_string());
                }
            }
        }
        Relayed { status, headers, body }
    }
}

#[rocket::get("/<_..>")]
async fn relay_get(uri: &Origin<'_>, fwd: Forwarded, relay: &State<Arc<Relay>>) -> Relayed {
    relay.forward(Method::GET, uri, fwd, Vec::new()).await
}

#[rocket::post("/<_..>", data = "<body>")]
async fn relay_post(uri: &Origin<'_>, fwd: Forwarded, body: Vec<u8>, relay: &State<Arc<Relay>>) -> Relayed {
    relay.forward(Method::POST, uri, fwd, body).await
}

/// The emulator (client secret and API key set to canaries) behind a recording relay.
async fn start_provider() -> (RunningEmulator, Arc<Relay>) {
    let relay_port = free_port();
    let emulator_port = free_port();
    let idp = appid_emulator::spawn(EmulatorConfig {
        client_secret: CANARY_CLIENT_SECRET.into(),
        api_key: CANARY_API_KEY.into(),
        port: emulator_port,
        public_base_url: Some(format!("http://127.0.0.1:{relay_port}")),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let relay = Arc::new(Relay {
        upstream: format!("http://127.0.0.1:{emulator_port}"),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        tokens: Mutex::new(Vec::new()),
        fail_next_token: AtomicBool::new(false),
    });
    let mut shutdown = rocket::config::Shutdown { ctrlc: false, ..Default::default() };
    #[cfg(unix)]
    shutdown.signals.clear();
    let config = rocket::Config {
        address: [127, 0, 0, 1].into(),
        port: relay_port,
        log_level: rocket::config::LogLevel::Off,
        shutdown,
        ..rocket::Config::debug_default()
    };
    let server =
        rocket::custom(config).manage(relay.clone()).mount("/", rocket::routes![relay_get, relay_post]);
    rocket::tokio::spawn(async move {
        let _ = server.launch().await.map_err(|e| e.to_string());
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while rocket::tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], relay_port)))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the relay did not start");
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (idp, relay)
}

// ---------------------------------------------------------------------------------------
// The app process and its captured output.

/// The real binary, with stdout and stderr captured line by line.
struct AppProcess {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    stdout_lines: Arc<Mutex<Vec<String>>>,
}

impl AppProcess {
    /// Starts the binary in the release profile (JSON logs at info, as in production) with
    /// the canary secrets, pointed at `oauth_server_url`/`iam_url`, plus `extra` variables.
    fn start(oauth_server_url: &str, iam_url: &str, extra: &[(&str, &str)]) -> AppProcess {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rocket-appid"));
        command
            .env_clear()
            .env("ROCKET_PROFILE", "release")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("NO_COLOR", "1")
            .env("APPID_CLIENT_ID", appid_emulator::DEFAULT_CLIENT_ID)
            .env("APPID_CLIENT_SECRET", CANARY_CLIENT_SECRET)
            .env("APPID_OAUTH_SERVER_URL", oauth_server_url)
            .env("APPID_REDIRECT_URI", format!("http://127.0.0.1:{port}/afterauth"))
            .env("IBM_CLOUD_APIKEY", CANARY_API_KEY)
            .env("IBM_CLOUD_IAM_URL", iam_url)
            .env("SESSION_SECRET_KEY", CANARY_SESSION_KEY)
            // Every login of this test comes from one address, many a second; the limits
            // have their own tests (abuse.rs).
            .env("APPID_SIGN_IN_PER_MINUTE", "1000")
            .env("APPID_TOKEN_CALLS_PER_SEC", "1000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stream, is_stdout) in [(Box::new(out) as Box<dyn Read + Send>, true), (Box::new(err), false)] {
            let (all, stdout) = (lines.clone(), stdout_lines.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if is_stdout {
                        stdout.lock().unwrap().push(line.clone());
                    }
                    all.lock().unwrap().push(line);
                }
            });
        }
        AppProcess { child, port, lines, stdout_lines }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_until_serving(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(self.url("/health")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the app exited ({status}):\n{}", self.lines.lock().unwrap().join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "the app did not start:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            rocket::tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process and returns (all output, stdout lines).
    async fn stop(mut self) -> (String, Vec<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader threads finish once the pipes close.
        rocket::tokio::time::sleep(Duration::from_millis(200)).await;
        let all = self.lines.lock().unwrap().join("\n");
        let stdout = self.stdout_lines.lock().unwrap().clone();
        (all, stdout)
    }
}

// ---------------------------------------------------------------------------------------
// A browser: real HTTP, no redirects followed, its own cookie jar, and a record of every
// secret value that passed through it.

struct Answer {
    status: u16,
    location: Option<String>,
    content_type: String,
    body: String,
}

/// R-E2: an error page is static and generic: UTF-8 HTML, no script, nothing loaded from
/// elsewhere, no stack trace or provider text, and a way back to the protected page.
/// Returns whether `answer` was an HTML error page (and so was checked).
fn assert_generic_error_page(name: &str, answer: &Answer) -> bool {
    if answer.status < 400 || !answer.content_type.starts_with("text/html") {
        return false;
    }
    let body = answer.body.to_lowercase();
    assert!(
        answer.content_type.to_lowercase().contains("charset=utf-8"),
        "`{name}`: {}",
        answer.content_type
    );
    assert!(!body.contains("<script"), "`{name}` has a script");
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url(http", "url(//"] {
        assert!(!body.contains(external), "`{name}` loads {external}…");
    }
    for trace in ["panicked", "backtrace", "src/", ".rs:", "error_description", "canary"] {
        assert!(!body.contains(trace), "`{name}` shows `{trace}`");
    }
    assert!(body.contains("href=\"/auth_route\""), "`{name}` links back to the protected page");
    true
}

struct Browser {
    client: reqwest::Client,
    jar: BTreeMap<String, String>,
    /// Real secrets seen during the run: codes, states, nonces, cookie values.
    seen: Arc<Mutex<Vec<String>>>,
}

impl Browser {
    fn new(seen: Arc<Mutex<Vec<String>>>) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, jar: BTreeMap::new(), seen }
    }

    fn remember(&self, value: &str) {
        if value.len() >= 8 {
            self.seen.lock().unwrap().push(value.to_string());
        }
    }

    fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Sends one request. `cookies`: `None` = the jar, `Some(raw)` = exactly this header.
    async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        cookies: Option<&str>,
        form: Option<&[(String, String)]>,
    ) -> Answer {
        let mut request = self.client.request(method, url);
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept")) {
            request = request.header("Accept", "text/html");
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let cookie = cookies.map(str::to_string).unwrap_or_else(|| self.cookie_header());
        if !cookie.is_empty() {
            request = request.header("Cookie", cookie);
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let removed = value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0");
            if removed {
                self.jar.remove(name.trim());
            } else {
                self.remember(value);
                self.jar.insert(name.trim().to_string(), value.to_string());
            }
        }
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap_or_default();
        Answer { status, location, content_type, body }
    }

    async fn get(&mut self, url: &str) -> Answer {
        self.send(Method::GET, url, &[], None, None).await
    }

    /// Starts a login at `path`; returns the provider's authorization URL, after noting
    /// its state and nonce as secrets.
    async fn begin_login(&mut self, app: &AppProcess, path: &str) -> Url {
        let answer = self.get(&app.url(path)).await;
        assert_eq!(answer.status, 303, "{path} should start a login: {}", answer.body);
        let authorization = Url::parse(&answer.location.unwrap()).unwrap();
        for (name, value) in authorization.query_pairs() {
            if matches!(name.as_ref(), "state" | "nonce" | "code_challenge") {
                self.remember(&value);
            }
        }
        authorization
    }

    /// The real `state` of a login started at `path`.
    async fn transaction(&mut self, app: &AppProcess, path: &str) -> String {
        let authorization = self.begin_login(app, path).await;
        let state = authorization.query_pairs().find(|(n, _)| n == "state").unwrap().1.into_owned();
        state
    }

    /// Signs `email` in at the provider; returns the callback URL (whose code is noted).
    async fn sign_in_at_provider(&mut self, authorization: &Url, email: &str) -> String {
        let mut form: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
        form.push(("login_hint".into(), email.into()));
        let mut action = authorization.clone();
        action.set_query(None);
        let answer = self.send(Method::POST, action.as_str(), &[], Some(""), Some(&form)).await;
        assert_eq!(answer.status, 302, "the provider signs {email} in: {}", answer.body);
        let back = Url::parse(&answer.location.unwrap()).unwrap();
        for (name, value) in back.query_pairs() {
            if name == "code" {
                self.remember(&value);
            }
        }
        back.to_string()
    }

    /// A full login of `email` starting at `path`; returns the callback's answer.
    async fn login(&mut self, app: &AppProcess, email: &str, path: &str) -> Answer {
        let authorization = self.begin_login(app, path).await;
        let callback = self.sign_in_at_provider(&authorization, email).await;
        self.get(&callback).await
    }
}

// ---------------------------------------------------------------------------------------
// The corpus: one row per probe. `{state}` in a target is replaced by the state of a login
// transaction started just before (so the probe passes the state check and reaches later
// code); rows without it run against whatever the jar holds.

/// Which cookies a probe sends.
#[derive(Clone, Copy)]
enum Jar {
    /// A fresh browser with nothing.
    Empty,
    /// A browser with a login transaction in progress (started just before).
    Transaction,
    /// Alice's signed-in browser (shared across rows).
    Alice,
    /// Exactly this Cookie header; `{session}` is Alice's real session cookie value,
    /// `{tampered}` the same with one byte changed, `{pad}` 5000 filler bytes.
    Raw(&'static str),
}

struct Probe {
    name: &'static str,
    method: Method,
    target: String,
    headers: Vec<(&'static str, String)>,
    jar: Jar,
    /// The status the app must answer (a check that the probe reached the code it aims at).
    expect: Option<u16>,
}

fn probe(name: &'static str, target: impl Into<String>, jar: Jar, expect: Option<u16>) -> Probe {
    Probe { name, method: Method::GET, target: target.into(), headers: Vec::new(), jar, expect }
}

fn corpus() -> Vec<Probe> {
    let huge_code = format!("{CANARY_CODE}{}", "A".repeat(8 * 1024));
    let huge_state = format!("{CANARY_STATE}{}", "B".repeat(4 * 1024));
    let c = CANARY_CODE;
    let s = CANARY_STATE;
    let d = CANARY_DESCRIPTION;
    let r = CANARY_RETURN;
    let mut rows = vec![
        // Callback (security.md §3.2).
        probe("b13 no query", "/afterauth", Jar::Transaction, Some(400)),
        probe("b14 code only", format!("/afterauth?code={c}"), Jar::Transaction, Some(400)),
        probe("b15 state only", "/afterauth?state={state}", Jar::Transaction, Some(400)),
        probe("b16 state mismatch", format!("/afterauth?code={c}&state={s}"), Jar::Transaction, Some(400)),
        probe("b17 no transaction", format!("/afterauth?code={c}&state={s}"), Jar::Empty, Some(400)),
        probe("b18 duplicate state", format!("/afterauth?code={c}&state={{state}}&state={s}"), Jar::Transaction, Some(400)),
        probe("b19 duplicate code", format!("/afterauth?code={c}&code={c}2&state={{state}}"), Jar::Transaction, Some(400)),
        probe("b20 empty code", "/afterauth?code=&state={state}", Jar::Transaction, Some(400)),
        probe("b20 empty state", format!("/afterauth?code={c}&state="), Jar::Transaction, Some(400)),
        probe("b21 huge code", format!("/afterauth?code={huge_code}&state={{state}}"), Jar::Transaction, Some(400)),
        probe("b21 huge state", format!("/afterauth?code={c}&state={huge_state}"), Jar::Transaction, Some(400)),
        probe("b22 crlf in state", format!("/afterauth?code={c}&state={s}%0d%0a%7B%22event%22%3A%22login_success%22%7D"), Jar::Transaction, Some(400)),
        probe("b22 crlf in code", format!("/afterauth?code={c}%0d%0aX-Injected:%20{c}&state={{state}}"), Jar::Transaction, None),
        probe("b23 provider error with description", format!("/afterauth?error=access_denied&error_description=%3Cscript%3E{d}%3C/script%3E&state={{state}}"), Jar::Transaction, Some(400)),
        probe("b23 unknown provider error", format!("/afterauth?error={d}&error_description={d}&state={{state}}"), Jar::Transaction, Some(400)),
        probe("b24 error without state", format!("/afterauth?error=server_error&error_description={d}"), Jar::Transaction, Some(400)),
        probe("b25 foreign iss", format!("/afterauth?code={c}&state={{state}}&iss=https://{c}.evil.example"), Jar::Transaction, Some(400)),
        probe("unknown parameters", format!("/afterauth?code={c}&state={s}&{c}={s}&session_state={s}"), Jar::Transaction, Some(400)),
        probe("invalid percent-encoding", format!("/afterauth?code={c}%ZZ%ff&state={s}%00"), Jar::Transaction, Some(400)),
        probe("canary code, real state (invalid_grant)", format!("/afterauth?code={c}&state={{state}}"), Jar::Transaction, Some(400)),
        probe("callback while signed in", format!("/afterauth?code={c}&state={s}"), Jar::Alice, Some(400)),
        // Return-to payloads (§3.1), all starting logins whose return-to holds a canary.
        probe("return-to query", format!("/auth_route?next={r}&code={c}"), Jar::Empty, Some(303)),
        probe("return-to scheme-relative", format!("/auth_route?x=//{r}.evil.example/%2F.."), Jar::Empty, Some(303)),
        probe("return-to encoded", format!("/auth_route?u=%252F%252F{r}%5C%5C%0d%0a"), Jar::Empty, Some(303)),
        probe("404 path with canaries", format!("/{r}/%2e%2e/{c}?state={s}"), Jar::Empty, Some(404)),
        probe("open page with canaries", format!("/noauth_route?code={c}&state={s}"), Jar::Empty, Some(200)),
        // Cookies (§3.3).
        probe("junk session cookie", "/auth_route", Jar::Raw("appid_session=CANARY-cookie-value-4c1f"), Some(303)),
        probe("junk login cookie at callback", format!("/afterauth?code={c}&state={s}"), Jar::Raw("appid_login=CANARY-cookie-value-4c1f"), Some(400)),
        probe("duplicate session cookies", "/auth_route", Jar::Raw("appid_session=CANARY-cookie-value-4c1f; appid_session={session}"), None),
        probe("tampered session cookie", "/auth_route", Jar::Raw("appid_session={tampered}"), Some(303)),
        probe("session value under the login name", format!("/afterauth?code={c}&state={s}"), Jar::Raw("appid_login={session}"), Some(400)),
        probe("oversized cookie", "/auth_route", Jar::Raw("appid_session=CANARY-cookie-value-4c1f{pad}"), None),
        // Header injection (§3.6).
        Probe {
            headers: vec![
                ("Authorization", format!("Bearer {CANARY_TOKEN}")),
                ("X-Forwarded-User", CANARY_HEADER.into()),
                ("X_Forwarded_User", CANARY_HEADER.into()),
                ("X-Auth-Request-Email", format!("{CANARY_HEADER}@example.com")),
                ("X-Real-IP", CANARY_HEADER.into()),
                ("X-Forwarded-For", CANARY_HEADER.into()),
                ("Referer", format!("https://evil.example/?code={c}")),
                ("User-Agent", CANARY_HEADER.into()),
            ],
            ..probe("identity headers without a session", "/auth_route", Jar::Empty, Some(303))
        },
        Probe {
            headers: vec![("Authorization", format!("Bearer {CANARY_TOKEN}")), ("Accept", "application/json".into())],
            ..probe("bearer token, json client", "/auth_route", Jar::Empty, Some(401))
        },
        Probe {
            headers: vec![("Authorization", format!("Bearer {CANARY_TOKEN}"))],
            ..probe("bearer token on metrics", "/metrics", Jar::Empty, Some(404))
        },
        // Methods (B29, B98): Rocket's "no matching routes" line would print the query.
        Probe { method: Method::POST, ..probe("b29 POST callback", format!("/afterauth?code={c}&state={s}"), Jar::Transaction, None) },
        Probe { method: Method::PUT, ..probe("PUT protected", format!("/auth_route?code={c}"), Jar::Alice, None) },
        Probe { method: Method::OPTIONS, ..probe("OPTIONS protected", format!("/auth_route?state={s}"), Jar::Empty, None) },
        // Logout (§2 G): cross-site first (refused), the real one comes last in the run.
        Probe {
            method: Method::POST,
            headers: vec![("Origin", format!("https://{CANARY_HEADER}.evil.example")), ("Sec-Fetch-Site", "cross-site".into())],
            ..probe("cross-site logout", format!("/logout?next={r}"), Jar::Alice, Some(403))
        },
    ];
    // Signed-in requests carrying canaries: the guard runs with a real session.
    rows.push(probe(
        "signed-in page with canary query",
        format!("/auth_route?code={c}&state={s}"),
        Jar::Alice,
        Some(200),
    ));
    rows
}

// ---------------------------------------------------------------------------------------
// The run.

/// Everything one run produced.
struct Run {
    output: String,
    stdout: Vec<String>,
    seen: Vec<String>,
    alice_sub: String,
    bob_sub: String,
}

/// Runs the corpus against a fresh provider and app started with `extra` variables, then a
/// second app against a dead provider. Returns the combined output.
async fn run_corpus(extra: &[(&str, &str)]) -> Run {
    let (idp, relay) = start_provider().await;
    let mut app = AppProcess::start(&idp.oauth_server_url, &idp.iam_token_url, extra);
    app.wait_until_serving().await;
    let seen = Arc::new(Mutex::new(Vec::new()));

    // Full logins of each user: the real codes, states, nonces, cookies and tokens.
    let mut alice = Browser::new(seen.clone());
    let back = alice.login(&app, ALICE, &format!("/auth_route?next={CANARY_RETURN}")).await;
    assert_eq!(back.status, 303, "alice's login completes: {}", back.body);
    let destination = back.location.unwrap();
    assert!(destination.contains(CANARY_RETURN), "the return-to survives: {destination}");
    assert_eq!(alice.get(&app.url(&destination)).await.status, 200);
    let session_name =
        alice.jar.keys().find(|k| k.contains("appid_session")).expect("a session cookie").clone();
    let session = alice.jar[&session_name].clone();

    let mut carol = Browser::new(seen.clone());
    assert_eq!(carol.login(&app, CAROL, "/auth_route").await.status, 303);
    assert_eq!(carol.get(&app.url("/auth_route")).await.status, 200);
    let mut bob = Browser::new(seen.clone());
    assert_eq!(bob.login(&app, BOB, "/auth_route").await.status, 303);
    assert_eq!(bob.get(&app.url("/auth_route")).await.status, 403, "bob has no role");

    // Replay of a real callback (B27): same URL, same jar, after the transaction was used.
    let mut replayer = Browser::new(seen.clone());
    let authorization = replayer.begin_login(&app, "/auth_route").await;
    let callback = replayer.sign_in_at_provider(&authorization, CAROL).await;
    let snapshot = replayer.jar.clone();
    assert_eq!(replayer.get(&callback).await.status, 303);
    replayer.jar = snapshot;
    assert_eq!(replayer.get(&callback).await.status, 400, "b27 replay is refused");
    // A real code with a canary state: the real code must not be logged either.
    let mut crossed = Browser::new(seen.clone());
    let authorization = crossed.begin_login(&app, "/auth_route").await;
    let callback = crossed.sign_in_at_provider(&authorization, ALICE).await;
    let mut wrong_state = Url::parse(&callback).unwrap();
    let code = wrong_state.query_pairs().find(|(n, _)| n == "code").unwrap().1.into_owned();
    wrong_state.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", CANARY_STATE);
    assert_eq!(crossed.get(wrong_state.as_str()).await.status, 400);

    // The corpus table.
    let mut tampered = session.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let pad = "x".repeat(5000);
    let mut error_pages = 0;
    let rows = corpus();
    for row in &rows {
        let mut browser = match row.jar {
            Jar::Alice => {
                let mut b = Browser::new(seen.clone());
                b.jar = alice.jar.clone();
                b
            }
            _ => Browser::new(seen.clone()),
        };
        let mut target = row.target.clone();
        if matches!(row.jar, Jar::Transaction) {
            let state = browser.transaction(&app, "/auth_route").await;
            target = target.replace("{state}", &state);
        }
        let raw = match row.jar {
            Jar::Raw(raw) => Some(
                raw.replace("{session}", &session).replace("{tampered}", &tampered).replace("{pad}", &pad),
            ),
            _ => None,
        };
        let answer =
            browser.send(row.method.clone(), &app.url(&target), &row.headers, raw.as_deref(), None).await;
        if let Some(expected) = row.expect {
            assert_eq!(
                answer.status, expected,
                "probe `{}` answered {}: {}",
                row.name, answer.status, answer.body
            );
        }
        assert!(
            answer.status < 500 || answer.status == 503,
            "probe `{}` answered {}",
            row.name,
            answer.status
        );
        assert!(!answer.body.contains(CANARY_DESCRIPTION), "probe `{}` shows provider text", row.name);
        error_pages += usize::from(assert_generic_error_page(row.name, &answer));
    }
    assert!(error_pages * 2 > rows.len(), "most probes got an error page ({error_pages} of {})", rows.len());

    // A provider failure with a status and provider text (token endpoint 503).
    relay.fail_next_token.store(true, Ordering::SeqCst);
    let mut unlucky = Browser::new(seen.clone());
    let failed = unlucky.login(&app, CAROL, "/auth_route").await;
    assert_eq!(failed.status, 503, "a failing token endpoint gives 503: {}", failed.body);
    assert!(!failed.body.contains("CANARY"), "no provider text on the page: {}", failed.body);
    assert!(assert_generic_error_page("token endpoint 503", &failed));

    // Logout last, so Alice's session served every row above.
    let page = alice.get(&app.url("/noauth_route")).await;
    let marker = r#"name="csrf" value=""#;
    let start = page.body.find(marker).expect("a logout form with its token") + marker.len();
    let token = page.body[start..].split('"').next().unwrap().to_string();
    let form = [("csrf".to_string(), token)];
    let logout = alice
        .send(
            Method::POST,
            &app.url("/logout"),
            &[("Sec-Fetch-Site", "same-origin".into())],
            None,
            Some(&form),
        )
        .await;
    assert_eq!(logout.status, 303, "a logout sends the browser to the signed-out page: {}", logout.body);
    assert_eq!(logout.location.as_deref(), Some("/signed_out"));
    let signed_out = alice.get(&app.url("/signed_out")).await;
    assert_eq!(signed_out.status, 200);
    assert!(signed_out.body.contains("You are signed out"));

    // A second instance whose provider is down (F1): failures with endpoint and timing.
    let dead = free_port();
    let mut down = AppProcess::start(
        &format!("http://127.0.0.1:{dead}/oauth/v4/{}", appid_emulator::DEFAULT_TENANT_ID),
        &format!("http://127.0.0.1:{dead}/identity/token"),
        extra,
    );
    down.wait_until_serving().await;
    let mut visitor = Browser::new(seen.clone());
    assert_eq!(visitor.get(&down.url("/auth_route")).await.status, 503);
    let answer = visitor
        .send(
            Method::GET,
            &down.url(&format!("/afterauth?code={CANARY_CODE}&state={CANARY_STATE}")),
            &[("Authorization", format!("Bearer {CANARY_TOKEN}"))],
            Some(&format!("appid_session={session}; appid_login={CANARY_COOKIE}")),
            None,
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(visitor.get(&down.url(&format!("/auth_route?next={CANARY_RETURN}"))).await.status, 503);

    let mut tokens = relay.tokens.lock().unwrap().clone();
    assert!(tokens.len() >= 8, "the relay saw the access and id tokens of every login: {}", tokens.len());
    let (out_main, stdout_main) = app.stop().await;
    let (out_down, stdout_down) = down.stop().await;
    let mut seen = seen.lock().unwrap().clone();
    seen.append(&mut tokens);
    let user = |email: &str| idp.emulator.user_by_email(email).unwrap().sub;
    Run {
        output: format!("{out_main}\n{out_down}"),
        stdout: stdout_main.into_iter().chain(stdout_down).collect(),
        seen,
        alice_sub: user(ALICE),
        bob_sub: user(BOB),
    }
}

/// Fails with every secret found in `run`'s output.
fn assert_no_secret_in_output(run: &Run) {
    let mut leaks = Vec::new();
    let lower = run.output.to_lowercase();
    if lower.contains("canary") {
        let lines: Vec<&str> = run.output.lines().filter(|l| l.to_lowercase().contains("canary")).collect();
        leaks.push(format!("canary text in:\n{}", lines.join("\n")));
    }
    for canary in CANARIES {
        if run.output.contains(canary) {
            leaks.push(format!("the canary {canary}"));
        }
    }
    assert!(run.seen.len() > 20, "the run collected the real secrets ({})", run.seen.len());
    // Shorter values could match unrelated text by chance; ours are all far longer.
    for value in run.seen.iter().filter(|v| v.len() >= 8) {
        let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
        if run.output.contains(value.as_str()) || run.output.contains(&decoded) {
            leaks.push(format!(
                "a real secret value of {} characters ({}…)",
                value.len(),
                value.get(..6).unwrap_or("")
            ));
        }
    }
    assert!(leaks.is_empty(), "secrets reached the log:\n{}", leaks.join("\n"));
}

/// The JSON events of the stdout lines (every line must be one JSON object).
fn events(run: &Run) -> Vec<Value> {
    run.stdout
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|_| panic!("a log line that is not JSON (injected?): {l}"))
        })
        .collect()
}

/// R-E4: one structured line per security event, UTC timestamps, user input escaped.
fn assert_security_events(run: &Run) {
    let events = events(run);
    let named = |name: &str| events.iter().filter(move |e| e["event"] == name).collect::<Vec<_>>();
    for e in &events {
        let ts = e["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp in {e}"));
        assert!(ts.ends_with('Z') && ts.len() >= 20 && ts.as_bytes()[10] == b'T', "not RFC 3339 UTC: {ts}");
    }
    let successes = named("login_success");
    assert!(successes.iter().any(|e| e["sub"] == run.alice_sub.as_str()), "login_success with alice's sub");
    assert!(successes.len() >= 4, "one login_success per completed login: {successes:?}");
    // B22 planted `{"event":"login_success"}` after a CR LF: it must stay inside an escaped
    // field (every line above parsed as one JSON object), never become a line of its own.
    assert!(
        successes.iter().all(|e| e["sub"].as_str().is_some_and(|s| !s.is_empty())),
        "every login_success names its sub: {successes:?}"
    );
    assert!(
        successes.iter().any(|e| e["amr"] == "cloud_directory"),
        "login_success says how the user signed in (amr): {successes:?}"
    );
    let cookie_reasons: Vec<&str> =
        named("session_refused").iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(
        cookie_reasons.contains(&"undecryptable"),
        "junk and tampered session cookies are logged: {cookie_reasons:?}"
    );
    let reasons: Vec<&str> = named("login_refused").iter().filter_map(|e| e["reason"].as_str()).collect();
    for reason in [
        "state_mismatch",
        "no_transaction",
        "state_missing",
        "duplicate_param",
        "param_too_long",
        "provider_error",
        "iss_mismatch",
        "code_missing",
        "invalid_grant",
        "provider_unavailable",
    ] {
        assert!(reasons.contains(&reason), "a login_refused line with reason {reason}: {reasons:?}");
    }
    let failures = named("provider_failure");
    let token = failures
        .iter()
        .find(|e| e["endpoint"] == "token" && e["status"] == 503)
        .unwrap_or_else(|| panic!("a provider_failure with the token endpoint's 503: {failures:?}"));
    assert!(token["elapsed_ms"].as_u64().is_some(), "elapsed time in {token}");
    assert!(
        token["error"].as_str().is_some_and(|e| e.contains("temporarily_unavailable")),
        "the provider's error code (never its description) in {token}"
    );
    assert!(
        failures
            .iter()
            .any(|e| e["endpoint"] == "discovery"
                && e["error"].as_str().is_some_and(|t| t.contains("connect"))),
        "a provider_failure for the dead provider's discovery: {failures:?}"
    );
    assert!(
        named("access_denied").iter().any(|e| e["sub"] == run.bob_sub.as_str() && e["reason"] == "no_role"),
        "an access_denied line for bob"
    );
    assert!(!named("logout").is_empty() && !named("logout_refused").is_empty(), "logout events");
    assert!(
        named("provider_refused_login").iter().any(|e| e["error"] == "access_denied")
            && named("provider_refused_login").iter().any(|e| e["error"] == "other"),
        "provider error codes are logged, unknown ones as `other`"
    );
}

/// R-E1 (production settings) and R-E4: the release profile's JSON log at info.
#[rocket::async_test]
async fn r_e1_no_secret_reaches_the_log_at_production_settings_and_security_events_are_logged() {
    let run = run_corpus(&[]).await;
    assert_no_secret_in_output(&run);
    assert_security_events(&run);
}

/// R-E1 with Rocket's own log level raised: Rocket's records that print the request line
/// (`GET /afterauth?code=…`) are dropped by the app whatever ROCKET_LOG_LEVEL or RUST_LOG say.
#[rocket::async_test]
async fn r_e1_no_secret_reaches_the_log_with_rockets_log_level_raised() {
    // RUST_LOG=trace also turns on every dependency's records (reqwest, rustls, Rocket's
    // launch and guard records): none of them may carry a secret either.
    let run = run_corpus(&[("ROCKET_LOG_LEVEL", "debug"), ("RUST_LOG", "trace")]).await;
    assert_no_secret_in_output(&run);
    // The raised level is in effect: Rocket's launch records do appear.
    assert!(run.output.contains("Rocket has launched"), "Rocket's own records are shown:\n{}", run.output);
}
