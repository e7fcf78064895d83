//! Test harness: a real App ID emulator on a loopback port, the app built against it and
//! driven through Rocket's tracked local client (which keeps cookies like a browser).

use appid_emulator::{EmulatorConfig, RunningEmulator};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket_appid::auth::store::SessionStore;
use serde_json::{json, Value};
use url::Url;

/// The redirect URI the app is configured with in tests.
pub const REDIRECT_URI: &str = "http://127.0.0.1:8000/afterauth";
pub const ALICE: &str = "alice@example.com"; // role "user"
pub const BOB: &str = "bob@example.com"; // no role
pub const CAROL: &str = "carol@example.com"; // roles "user" and "admin"

/// The real `rocket-appid` binary with an empty environment apart from a session key:
/// each test adds the settings it is about.
pub fn app_process() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rocket-appid"));
    command.env_clear().env("SESSION_SECRET_KEY", "a passphrase of more than thirty-two characters");
    command
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

/// Rocket.toml (debug profile) plus settings pointing at `idp`.
pub fn app_figment(idp: &RunningEmulator, overrides: Value) -> Figment {
    let settings = idp.emulator.config();
    rocket::Config::figment()
        .merge(Serialized::global(
            "appid",
            json!({
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
                "oauth_server_url": idp.oauth_server_url,
                "redirect_uri": REDIRECT_URI,
                "ibm_cloud_apikey": settings.api_key,
                "iam_url": idp.iam_token_url,
                "session_secret_key": "a test passphrase that is long enough to be stretched",
            }),
        ))
        .merge(Serialized::global("appid", overrides))
}

/// The `Location` header of a response.
pub fn location(response: &LocalResponse<'_>) -> String {
    response.headers().get_one("Location").expect("a Location header").to_string()
}

impl TestApp {
    /// Visits `path` without a session and returns the provider URL the app redirects to.
    pub async fn begin_login(&self, path: &str) -> Url {
        let response = self.client.get(path).header(Header::new("Accept", "text/html")).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther, "visiting {path} should start a login");
        Url::parse(&location(&response)).expect("an absolute provider URL")
    }

    /// Picks `email` on the provider's login page; returns the app path it sends the
    /// browser back to (`/afterauth?code=…&state=…`).
    pub async fn sign_in_at_provider(&self, authorization: &Url, email: &str) -> String {
        let mut form: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
        form.push(("login_hint".into(), email.into()));
        let mut action = authorization.clone();
        action.set_query(None);
        let response = self.browser.post(action).form(&form).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302, "the provider signs {email} in");
        let back = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(back.path(), "/afterauth");
        format!("{}?{}", back.path(), back.query().unwrap_or(""))
    }

    /// Logs `email` in starting at `path`; returns the callback's response.
    pub async fn login_as(&self, email: &str, path: &str) -> LocalResponse<'_> {
        let authorization = self.begin_login(path).await;
        let callback = self.sign_in_at_provider(&authorization, email).await;
        self.client.get(callback).dispatch().await
    }

    /// GET `path` as a browser would.
    pub async fn get(&self, path: &str) -> LocalResponse<'_> {
        self.client.get(path.to_string()).header(Header::new("Accept", "text/html")).dispatch().await
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
