//! Test harness, the one place the tests in this folder share: a real App ID emulator on a
//! loopback port, the app built against it and driven through Rocket's tracked local
//! client (which keeps cookies like a browser), with a method per endpoint and per login
//! step; the app's `appid` settings; and the small helpers several test files need.

use appid_emulator::{EmulatorConfig, Endpoint, RunningEmulator};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket_appid::auth::store::SessionStore;
use serde_json::{json, Value};
use url::Url;

/// The redirect URI the app is configured with in tests.
pub const REDIRECT_URI: &str = "http://127.0.0.1:8000/afterauth";
/// The session key `app_figment` gives the app.
pub const SESSION_KEY: &str = "a test passphrase that is long enough to be stretched";
pub const ALICE: &str = "alice@example.com"; // role "user"
pub const BOB: &str = "bob@example.com"; // no role
pub const CAROL: &str = "carol@example.com"; // roles "user" and "admin"

/// The title of every refused-callback page (400).
pub const REFUSED: &str = "Sign-in could not be completed";
/// The title of the provider-trouble page (503).
pub const UNAVAILABLE: &str = "Identity service unavailable";

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A free loopback port (bound and released; the race with other tests is negligible).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The real `rocket-appid` binary with an empty environment apart from a session key:
/// each test adds the settings it is about.
pub fn app_process() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rocket-appid"));
    command.env_clear().env("SESSION_SECRET_KEY", "a passphrase of more than thirty-two characters");
    command
}

/// [`app_process`] serving on `port`, signing in through `idp`.
pub fn app_process_against(idp: &RunningEmulator, port: u16) -> std::process::Command {
    let settings = idp.emulator.config();
    let mut command = app_process();
    command
        .env("PORT", port.to_string())
        .env("APPID_CLIENT_ID", &settings.client_id)
        .env("APPID_CLIENT_SECRET", &settings.client_secret)
        .env("APPID_OAUTH_SERVER_URL", &idp.oauth_server_url)
        .env("APPID_REDIRECT_URI", format!("http://127.0.0.1:{port}/afterauth"))
        .env("IBM_CLOUD_APIKEY", &settings.api_key)
        .env("IBM_CLOUD_IAM_URL", &idp.iam_token_url);
    command
}

/// [`app_process`] serving on `port` and logging JSON lines to its stdout (piped).
pub fn app_process_logging_json(port: u16) -> std::process::Child {
    app_process()
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs the real binary to its end with a clean environment (no session key either) plus
/// `vars`; returns (success, stdout and stderr).
pub fn run_binary(vars: &[(&str, &str)]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rocket-appid"));
    command.env_clear().env("ROCKET_PORT", "0").env("NO_COLOR", "1");
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("the binary runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The app's `appid` settings for a provider (the redirect URI and session key are the
/// tests' own).
pub fn appid_settings(client: (&str, &str), api_key: &str, oauth_server_url: &str, iam_url: &str) -> Value {
    let (client_id, client_secret) = client;
    json!({
        "client_id": client_id,
        "client_secret": client_secret,
        "oauth_server_url": oauth_server_url,
        "redirect_uri": REDIRECT_URI,
        "ibm_cloud_apikey": api_key,
        "iam_url": iam_url,
        "session_secret_key": SESSION_KEY,
        // Tests sign in hundreds of times a minute; the budget has its own tests (abuse.rs).
        "token_calls_per_sec": 1000,
    })
}

/// [`appid_settings`] for an emulator with `config` at `base` (`scheme://host:port`), which
/// need not be running (yet).
pub fn emulator_settings(config: &EmulatorConfig, base: &str) -> Value {
    appid_settings(
        (&config.client_id, &config.client_secret),
        &config.api_key,
        &format!("{base}/oauth/v4/{}", config.tenant_id),
        &format!("{base}/identity/token"),
    )
}

/// Rocket.toml (debug profile) plus `settings` in `appid`, with `overrides` merged on top.
pub fn figment_with(settings: Value, overrides: Value) -> Figment {
    rocket::Config::figment()
        .merge(Serialized::global("appid", settings))
        .merge(Serialized::global("appid", overrides))
}

/// Rocket.toml (debug profile) plus settings pointing at `idp`.
pub fn app_figment(idp: &RunningEmulator, overrides: Value) -> Figment {
    let config = idp.emulator.config();
    let settings = appid_settings(
        (&config.client_id, &config.client_secret),
        &config.api_key,
        &idp.oauth_server_url,
        &idp.iam_token_url,
    );
    figment_with(settings, overrides)
}

/// The `Location` header of a response.
pub fn location(response: &LocalResponse<'_>) -> String {
    response.headers().get_one("Location").expect("a Location header").to_string()
}

/// GET `path` as a browser would, on any client.
pub async fn visit<'c>(client: &'c Client, path: &str) -> LocalResponse<'c> {
    client.get(path.to_string()).header(Header::new("Accept", "text/html")).dispatch().await
}

/// `/afterauth?…` with these parameters, form-encoded in order.
pub fn callback_path(params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("/afterauth?{query}")
}

/// The value of query parameter `name` of an app path such as `/afterauth?code=…`.
pub fn param(path_and_query: &str, name: &str) -> String {
    let url = Url::parse(&format!("http://app.test{path_and_query}")).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {path_and_query}"))
}

/// A visit to the protected page from a browser that sends exactly `cookies` (cookies or
/// (name, value) pairs), accepting `accept`.
pub async fn replay<'c, C>(client: &'c Client, cookies: &[C], accept: &str) -> LocalResponse<'c>
where
    C: Clone + Into<Cookie<'static>>,
{
    let mut request = client.get("/auth_route").header(Header::new("Accept", accept.to_string()));
    for cookie in cookies {
        request = request.cookie(cookie.clone().into());
    }
    request.dispatch().await
}

/// A completed logout's answer: 303 to `next` (a fixed page, never one from the request),
/// not cached, asking the browser to drop every cookie of the origin, and setting no cookie
/// (`Clear-Site-Data` would wipe it: only removals belong in this response).
pub fn assert_logout_redirect(response: &LocalResponse<'_>, next: &str) {
    assert_eq!(response.status(), Status::SeeOther, "a logout sends the browser to the signed-out page");
    assert_eq!(location(response), next);
    assert_eq!(response.headers().get_one("Clear-Site-Data"), Some("\"cookies\""));
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    for cookie in response.cookies().iter() {
        assert!(cookie.value().is_empty(), "{} is only removed by the logout response", cookie.name());
    }
}

/// Tera escapes `&` and `/` in attributes: undone.
pub fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/").replace("&amp;", "&").replace("&#x3D;", "=")
}

/// Picks `email` on the emulator's login page for the login `authorization` started, in a
/// browser of its own; returns the app path it sends the browser back to
/// (`/afterauth?code=…&state=…`).
pub async fn sign_in(authorization: &Url, email: &str) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    sign_in_with(&browser, authorization, email).await
}

async fn sign_in_with(browser: &reqwest::Client, authorization: &Url, email: &str) -> String {
    let mut form: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
    form.push(("login_hint".into(), email.into()));
    let mut action = authorization.clone();
    action.set_query(None);
    let response = browser.post(action).form(&form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302, "the provider signs {email} in");
    let back = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/afterauth");
    format!("{}?{}", back.path(), back.query().unwrap_or(""))
}

/// `request` with these headers added, in order.
fn with_headers<'c>(
    mut request: rocket::local::asynchronous::LocalRequest<'c>,
    headers: &[(&str, &str)],
) -> rocket::local::asynchronous::LocalRequest<'c> {
    for (name, value) in headers {
        request = request.header(Header::new(name.to_string(), value.to_string()));
    }
    request
}

/// Collects what a `tracing` formatter writes (clones share one buffer).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far (UTF-8, as the formatters write it).
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A browser visit to the protected page carrying `session` sealed by the app itself (a
/// cookie it could have set).
pub async fn visit_with_session<'c>(client: &'c Client, session: &Value) -> LocalResponse<'c> {
    client
        .get("/auth_route")
        .header(Header::new("Accept", "text/html"))
        .private_cookie(Cookie::new("appid_session", session.to_string()))
        .dispatch()
        .await
}

/// The session the cookies of `client` carry, opened with the app's keys (in any of the
/// cookie formats the app reads), as JSON; `None` without one.
pub fn session_of(client: &Client) -> Option<Value> {
    let settings = rocket_appid::auth::session::SessionSettings::of_app(client.rocket());
    let session = rocket_appid::auth::session::Session::peek(&client.cookies(), &settings)?;
    Some(serde_json::to_value(&session).unwrap())
}

/// The plaintext of the session cookie of `client` (a ticket's, in the server-side mode),
/// opened with the app's keys.
pub fn session_plaintext(client: &Client) -> String {
    let settings = rocket_appid::auth::session::SessionSettings::of_app(client.rocket());
    let jar = client.cookies();
    match rocket_appid::auth::session_cookie::read(&jar, "appid_session", false, &settings.keys) {
        rocket_appid::auth::session_cookie::Read::Value { plaintext, .. } => {
            String::from_utf8(plaintext).unwrap()
        }
        other => panic!("no session cookie that opens: {other:?}"),
    }
}

/// The app under test and the identity provider it talks to.
pub struct TestApp {
    pub client: Client,
    pub idp: RunningEmulator,
    browser: reqwest::Client,
}

/// The app against a default emulator.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(EmulatorConfig::default(), json!({})).await
}

/// An emulator that lists PKCE (S256) in its discovery document, as App ID's does not:
/// for the tests of the PKCE path (`pkce = "auto"` sends it only where it is listed).
pub fn pkce_advertised() -> EmulatorConfig {
    EmulatorConfig { pkce_advertised: true, ..EmulatorConfig::default() }
}

/// The app against an emulator with `config`, with `overrides` merged into `appid`.
pub async fn spawn_app_with(config: EmulatorConfig, overrides: Value) -> TestApp {
    // The app's log, shown for failing tests only.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("rocket_appid=debug").try_init();
    let idp = appid_emulator::spawn(config).await.expect("emulator starts");
    let client =
        Client::tracked(rocket_appid::build(app_figment(&idp, overrides))).await.expect("app ignites");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { client, idp, browser }
}

impl TestApp {
    /// Another browser of the same app (same secret key, same provider, `overrides` merged
    /// into `appid`), with its own cookie jar.
    pub async fn other_browser(&self, overrides: Value) -> Client {
        Client::tracked(rocket_appid::build(app_figment(&self.idp, overrides))).await.unwrap()
    }

    /// Like [`TestApp::other_browser`], but it keeps no cookies: each request carries
    /// exactly the ones a test gives it. (An app of its own, with its own session store;
    /// [`another_browser`] shares this app's.)
    pub async fn bare_browser(&self, overrides: Value) -> Client {
        Client::untracked(rocket_appid::build(app_figment(&self.idp, overrides))).await.unwrap()
    }

    /// GET `path` as a browser would.
    pub async fn get(&self, path: &str) -> LocalResponse<'_> {
        visit(&self.client, path).await
    }

    /// GET `path` with exactly these request headers (no `Accept` unless given).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> LocalResponse<'_> {
        with_headers(self.client.get(path.to_string()), headers).dispatch().await
    }

    /// POST `path` with no body and exactly these request headers.
    pub async fn post_with(&self, path: &str, headers: &[(&str, &str)]) -> LocalResponse<'_> {
        with_headers(self.client.post(path.to_string()), headers).dispatch().await
    }

    /// Visits `path` without a session and returns the provider URL the app redirects to.
    pub async fn begin_login(&self, path: &str) -> Url {
        let response = self.get(path).await;
        assert_eq!(response.status(), Status::SeeOther, "visiting {path} should start a login");
        Url::parse(&location(&response)).expect("an absolute provider URL")
    }

    /// Picks `email` on the provider's login page; returns the app path it sends the
    /// browser back to (`/afterauth?code=…&state=…`).
    pub async fn sign_in_at_provider(&self, authorization: &Url, email: &str) -> String {
        sign_in_with(&self.browser, authorization, email).await
    }

    /// Starts a login at the protected page and signs `email` in at the provider; returns
    /// the genuine callback's code and state, not yet delivered to the app.
    pub async fn code_and_state(&self, email: &str) -> (String, String) {
        let authorization = self.begin_login("/auth_route").await;
        let callback = self.sign_in_at_provider(&authorization, email).await;
        (param(&callback, "code"), param(&callback, "state"))
    }

    /// Delivers the callback `/afterauth` with these query parameters, in order.
    pub async fn afterauth(&self, params: &[(&str, &str)]) -> LocalResponse<'_> {
        self.client.get(callback_path(params)).dispatch().await
    }

    /// Logs `email` in starting at `path`; returns the callback's response.
    pub async fn login_as(&self, email: &str, path: &str) -> LocalResponse<'_> {
        let authorization = self.begin_login(path).await;
        let callback = self.sign_in_at_provider(&authorization, email).await;
        self.client.get(callback).dispatch().await
    }

    /// How many code exchanges (and refreshes) reached the provider's token endpoint.
    pub fn token_calls(&self) -> u64 {
        self.idp.emulator.calls(Endpoint::Token)
    }

    /// The session of the test browser, decrypted.
    pub fn session_json(&self) -> Value {
        session_of(&self.client).expect("a session")
    }

    /// The pending login transaction of the test browser, decrypted.
    pub fn pending_login(&self) -> Value {
        let cookie = self.client.cookies().get_private("appid_login").expect("a login in progress");
        serde_json::from_str(cookie.value()).unwrap()
    }

    /// The session cookies of the test browser (name, sealed value), however many there are.
    pub fn session_cookies(&self) -> Vec<(String, String)> {
        self.client
            .cookies()
            .iter()
            .filter(|c| c.name().starts_with("appid_session"))
            .map(|c| (c.name().to_string(), c.value().to_string()))
            .collect()
    }

    /// The logout token rendered into the header's logout form for the signed-in browser.
    pub async fn csrf_token(&self) -> String {
        let body = self.get("/noauth_route").await.into_string().await.unwrap();
        let marker = r#"name="csrf" value=""#;
        let start = body.find(marker).expect("a logout form with a token") + marker.len();
        body[start..].split('"').next().unwrap().to_string()
    }

    /// POST /logout with this form token (or no body at all).
    pub async fn post_logout(&self, token: Option<&str>) -> LocalResponse<'_> {
        let request = self.client.post("/logout");
        let request = match token {
            Some(token) => request.header(ContentType::Form).body(format!("csrf={token}")),
            None => request,
        };
        request.dispatch().await
    }

    /// What clicking "Sign out" does: posts the form with its token. Asserts the logout
    /// happened: a 303 to the signed-out page (see [`assert_logout_redirect`]).
    pub async fn logout(&self) -> LocalResponse<'_> {
        self.logout_to("/signed_out").await
    }

    /// [`TestApp::logout`] where the logout must send the browser on to `next`
    /// (`/signed_out?provider=1` with `sso_logout`).
    pub async fn logout_to(&self, next: &str) -> LocalResponse<'_> {
        let token = self.csrf_token().await;
        let response = self.post_logout(Some(&token)).await;
        assert_logout_redirect(&response, next);
        response
    }

    /// Follows a logout's redirect as the browser does: the signed-out page, which must be
    /// a 200 that is never cached. Returns that page's response.
    pub async fn follow(&self, logout: LocalResponse<'_>) -> LocalResponse<'_> {
        let next = location(&logout);
        drop(logout);
        let page = self.get(&next).await;
        assert_eq!(page.status(), Status::Ok, "the signed-out page {next}");
        assert_eq!(page.headers().get_one("Cache-Control"), Some("no-store"));
        page
    }

    /// The body of the signed-out page a logout sends the browser to, with Tera's escapes
    /// undone.
    pub async fn signed_out_page(&self, logout: LocalResponse<'_>) -> String {
        let body = self.follow(logout).await.into_string().await.unwrap();
        assert!(body.contains("You are signed out") && !body.contains("Signed in as"), "{body}");
        unescape(&body)
    }
}

/// Session cookies that did not decrypt at the app behind `client` (its own metrics).
pub fn undecryptable_cookies(client: &Client) -> u64 {
    client
        .rocket()
        .state::<rocket_appid::metrics::Metrics>()
        .expect("the app's metrics")
        .cookies_undecryptable()
}

/// Another browser of the same deployment: a cookie-less client of an app built with
/// `overrides` that shares `app`'s session store (its deny-list and renewals), as every
/// request of one instance does.
pub async fn another_browser(app: &TestApp, overrides: Value) -> Client {
    let store = app.client.rocket().state::<SessionStore>().expect("the app's session store").clone();
    Client::untracked(rocket_appid::build(app_figment(&app.idp, overrides)).manage(store))
        .await
        .expect("app ignites")
}

/// Log lines written while the returned guard lives (on this thread: the test runtime is
/// single-threaded, so the app's request futures log here too).
pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
