//! Interoperability test (issue 6): the app with `provider = "oidc"` and
//! `roles_source = "token"` against an independent, OpenID Certified provider,
//! panva/oidc-provider (npm), run locally by `provider.mjs`. Everything goes over real HTTP:
//! the app listens on a loopback port, and a small cookie-keeping client plays the browser,
//! filling in the provider's login and consent forms.
//!
//! Two runs, one per kind of access token a generic provider may issue:
//! - `jwt`: JWT access tokens (`typ: at+jwt`, our client id as audience) with a `roles`
//!   claim, verified locally with the provider's keys;
//! - `opaque`: opaque access tokens, checked by introspection (the provider lists the
//!   endpoint); roles from the id_token's claim and the introspection answer;
//! - `opaque, no introspection`: a second provider without an introspection endpoint; the
//!   app relies on the id_token verified at login, for the session lifetime.
//!
//! Each run asserts: the protected page shows the user and role, a user without the role
//! gets 403, logout ends the session, and tampered callbacks (state, code) are refused.
//!
//! Without Node.js or `tests/interop/node_modules/oidc-provider` (`npm ci --prefix
//! tests/interop`), it prints `SKIPPED` and passes, unless `INTEROP_TESTS_REQUIRED=1`
//! (set by `.ci/run`). Run: `cargo test --test interop`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rocket::figment::providers::Serialized;
use serde_json::json;
use url::Url;

/// The secret of the provider's two clients (a fresh one per run).
fn client_secret() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)])).collect()
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn main() -> ExitCode {
    let required = std::env::var("INTEROP_TESTS_REQUIRED").is_ok_and(|v| v == "1");
    if std::env::args().any(|a| a == "--list") {
        println!("interop_oidc_provider: test");
        return ExitCode::SUCCESS;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let node = find_program("NODE", &["/usr/bin/node", "/usr/local/bin/node"], "node");
    let package = dir.join("node_modules/oidc-provider/package.json");
    let (Some(node), true) = (node, package.is_file()) else {
        say("");
        say("SKIPPED: Node.js or the oidc-provider package is missing: the interoperability test did NOT run.");
        say("         Install them: apt-get install nodejs npm; npm ci --prefix tests/interop");
        say("");
        if required {
            say("FAILED: INTEROP_TESTS_REQUIRED=1 forbids skipping the interoperability test.");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    };
    let version = std::fs::read_to_string(&package)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    say(&format!("interop: oidc-provider {version} with {}", node.display()));

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let started = Instant::now();
    let result = runtime.block_on(run(&node, &dir));
    match result {
        Ok(()) => {
            say(&format!("interop: passed in {:.1} s", started.elapsed().as_secs_f64()));
            ExitCode::SUCCESS
        }
        Err(why) => {
            say(&format!("interop: FAILED: {why}"));
            ExitCode::FAILURE
        }
    }
}

/// A program from `$env_var`, the candidates, or the `PATH`.
fn find_program(env_var: &str, candidates: &[&str], name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file()))
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a local address").port()
}

/// The provider's Node process, stopped when dropped.
struct ProviderProcess {
    child: Child,
    issuer: String,
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider(
    node: &Path,
    dir: &Path,
    redirects: &[String],
    signed_out: &[String],
    secret: &str,
    introspection: bool,
) -> ProviderProcess {
    let mut child = Command::new(node)
        .arg(dir.join("provider.mjs"))
        .current_dir(dir)
        .env("INTEROP_REDIRECT_URI", redirects.join(" "))
        .env("INTEROP_POST_LOGOUT_REDIRECT_URI", signed_out.join(" "))
        .env("INTEROP_CLIENT_SECRET", secret)
        .env("INTEROP_INTROSPECTION", if introspection { "on" } else { "off" })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().expect("the provider's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep draining so the provider never blocks on a full pipe.
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("the provider announces its issuer");
    let issuer = serde_json::from_str::<serde_json::Value>(&line).expect("a JSON line")["issuer"]
        .as_str()
        .expect("an issuer")
        .to_string();
    ProviderProcess { child, issuer }
}

/// The app, launched on a loopback port against the provider.
struct RunningApp {
    origin: String,
    shutdown: rocket::Shutdown,
}

impl RunningApp {
    async fn start(
        port: u16,
        issuer: &str,
        client_id: &str,
        secret: &str,
        introspection: &str,
    ) -> RunningApp {
        let origin = format!("http://127.0.0.1:{port}");
        let figment = rocket::Config::figment()
            .merge(Serialized::global("address", "127.0.0.1"))
            .merge(Serialized::global("port", port))
            // Rocket's own console lines ("Request guard failed", catchers) would drown the
            // test's; the outcome is asserted, not read from logs.
            .merge(Serialized::global("log_level", "off"))
            .merge(Serialized::global(
                "appid",
                json!({
                    "provider": "oidc",
                    "roles_source": "token",
                    "client_id": client_id,
                    "client_secret": secret,
                    "oauth_server_url": issuer,
                    "redirect_uri": format!("{origin}/afterauth"),
                    "session_secret_key": "an interop test passphrase that is long enough to be stretched",
                    "emulator": false,
                    "introspection": introspection,
                }),
            ));
        let rocket = rocket_appid::build(figment).ignite().await.expect("the app ignites");
        let shutdown = rocket.shutdown();
        tokio::spawn(rocket.launch());
        // Ready once it answers and has loaded the provider's discovery and keys.
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client.get(format!("{origin}/ready")).send().await.map(|r| r.status().as_u16());
            if matches!(ready, Ok(200)) {
                break;
            }
            assert!(Instant::now() < deadline, "the app did not become ready (last: {ready:?})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        RunningApp { origin, shutdown }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

/// One HTTP answer, as the browser sees it.
struct Answer {
    status: u16,
    location: Option<Url>,
    body: String,
}

/// A browser: follows nothing by itself, keeps cookies per origin (host and port; paths
/// and expiry attributes other than removal are not needed here).
struct Browser {
    http: reqwest::Client,
    jar: HashMap<String, BTreeMap<String, String>>,
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, jar: HashMap::new() }
    }

    async fn send(&mut self, url: &Url, form: Option<&[(String, String)]>) -> Answer {
        let origin = url.origin().ascii_serialization();
        let mut request = match form {
            Some(form) => self.http.post(url.clone()).form(form),
            None => self.http.get(url.clone()),
        };
        request = request.header("Accept", "text/html");
        if let Some(cookies) = self.jar.get(&origin).filter(|c| !c.is_empty()) {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("Cookie", header.join("; "));
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        let jar = self.jar.entry(origin).or_default();
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else { continue };
            let lower = text.to_ascii_lowercase();
            let removed =
                value.is_empty() || lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970");
            if removed {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.to_string());
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(|l| url.join(l).unwrap_or_else(|e| panic!("bad Location {l}: {e}")));
        let body = response.text().await.unwrap_or_default();
        Answer { status, location, body }
    }

    async fn get(&mut self, url: &str) -> Answer {
        self.send(&Url::parse(url).unwrap(), None).await
    }
}

/// The first `<form>` of a page: its action and its named inputs' values.
fn form_of(page: &Url, html: &str) -> Option<(Url, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>")? + start;
    let form = &html[start..end];
    let action = attr(form, "action")?;
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
    }
    Some((page.join(&action.replace("&amp;", "&")).ok()?, fields))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = tag.find(&marker)? + marker.len();
    Some(tag[start..].split('"').next()?.to_string())
}

/// Starts at `path` on the app and plays the browser until the provider sends it back to
/// the app's `/afterauth`: follows redirects, signs in as `login` on the login form and
/// continues on the consent form. Returns the callback URL (not yet visited).
async fn sign_in(browser: &mut Browser, app: &RunningApp, path: &str, login: &str) -> Result<Url, String> {
    let mut answer = browser.get(&format!("{}{path}", app.origin)).await;
    let mut current = Url::parse(&format!("{}{path}", app.origin)).unwrap();
    for _ in 0..20 {
        if let Some(next) = answer.location.clone() {
            if next.path() == "/afterauth" && next.origin().ascii_serialization() == app.origin {
                return Ok(next);
            }
            answer = browser.send(&next, None).await;
            current = next;
            continue;
        }
        if answer.status != 200 {
            return Err(format!("{current}: HTTP {} {}", answer.status, snippet(&answer.body)));
        }
        let (action, mut fields) = form_of(&current, &answer.body)
            .ok_or_else(|| format!("{current}: no form in {}", snippet(&answer.body)))?;
        for (name, value) in fields.iter_mut() {
            match name.as_str() {
                "login" => *value = login.to_string(),
                "password" => *value = "any password".to_string(),
                _ => {}
            }
        }
        answer = browser.send(&action, Some(&fields)).await;
        current = action;
    }
    Err("too many steps at the provider".into())
}

/// `url` with one character appended to the value of query parameter `name`.
fn tamper(url: &Url, name: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name { format!("{v}x") } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    let mut tampered = url.clone();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    tampered
}

fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        say(&format!("    ok: {what}"));
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// Signs `login` in through the provider and returns the protected page.
async fn protected_page_as(app: &RunningApp, login: &str) -> Result<(Browser, Answer), String> {
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, app, "/auth_route", login).await?;
    let back = browser.send(&callback, None).await;
    if back.status != 303 {
        return Err(format!("the callback for {login} answered {}: {}", back.status, snippet(&back.body)));
    }
    let page = browser.get(&format!("{}/auth_route", app.origin)).await;
    Ok((browser, page))
}

async fn scenario(name: &str, app: &RunningApp) -> Result<(), String> {
    say(&format!("  {name}:"));
    // Carol has the admin and user roles in her tokens.
    let (mut carol, page) = protected_page_as(app, "carol").await?;
    check(page.status == 200, "carol signs in through the provider and sees the protected page")?;
    check(page.body.contains("Carol Interop"), "the page shows the user's name from the id_token")?;
    check(
        page.body.contains(">admin<") && page.body.contains(">user<"),
        "the page shows the roles from the token claim",
    )?;

    // Logout: the session ends; the protected page starts a new login.
    let csrf = attr(&page.body[page.body.find("name=\"csrf\"").ok_or("no logout form")?..], "value")
        .ok_or("no csrf token")?;
    let logout = Url::parse(&format!("{}/logout", app.origin)).unwrap();
    let out = carol.send(&logout, Some(&[("csrf".into(), csrf)])).await;
    check(out.status == 303, "logout answers with a redirect")?;
    let after = carol.get(&format!("{}/auth_route", app.origin)).await;
    let to_provider = after.location.as_ref().is_some_and(|l| l.path() == "/auth");
    check(
        after.status == 303 && to_provider,
        "after logout the protected page sends the browser to sign in again",
    )?;

    // Bob signs in fine but has no role: 403.
    let (_, page) = protected_page_as(app, "bob").await?;
    check(page.status == 403, "a user without a role gets 403")?;

    // A tampered state is refused before the provider is asked anything.
    let mut alice = Browser::new();
    let callback = sign_in(&mut alice, app, "/auth_route", "alice").await?;
    let tampered = tamper(&callback, "state");
    let refused = alice.send(&tampered, None).await;
    check(refused.status == 400, "a callback with a tampered state is refused (400)")?;
    let page = alice.get(&format!("{}/auth_route", app.origin)).await;
    check(page.status == 303, "the tampered callback started no session")?;

    // A tampered code is refused by the provider at the token endpoint.
    let mut alice = Browser::new();
    let callback = sign_in(&mut alice, app, "/auth_route", "alice").await?;
    let tampered = tamper(&callback, "code");
    let refused = alice.send(&tampered, None).await;
    check(
        refused.status == 400,
        "a callback with a tampered code is refused (400, the provider said invalid_grant)",
    )?;
    let page = alice.get(&format!("{}/auth_route", app.origin)).await;
    check(page.status == 303, "the tampered code started no session")?;
    Ok(())
}

/// The provider's counters (see provider.mjs).
async fn provider_stats(issuer: &str) -> Result<serde_json::Value, String> {
    let url = format!("{issuer}/__interop/stats");
    let response = reqwest::get(&url).await.map_err(|e| format!("{url}: {e}"))?;
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

fn count(stats: &serde_json::Value, name: &str) -> u64 {
    stats[name].as_u64().unwrap_or(0)
}

async fn run(node: &Path, dir: &Path) -> Result<(), String> {
    let secret = client_secret();
    let ports = [free_port(), free_port(), free_port()];
    let redirects: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}/afterauth")).collect();
    let signed_out: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}/signed_out")).collect();
    let provider = start_provider(node, dir, &redirects, &signed_out, &secret, true);
    say(&format!("interop: provider at {}", provider.issuer));

    // oidc-provider does not introspect its JWT access tokens (they are not stored: 8.x
    // reports them inactive, 9.x answers unsupported_token_type), so they are verified
    // locally only, as README advises for such providers.
    let jwt = RunningApp::start(ports[0], &provider.issuer, "interop-jwt", &secret, "never").await;
    scenario("JWT access tokens (verified locally)", &jwt).await?;
    drop(jwt);
    let after_jwt = provider_stats(&provider.issuer).await?;
    check(count(&after_jwt, "jwt_access_tokens") >= 2, "the provider issued JWT access tokens")?;
    check(count(&after_jwt, "opaque_access_tokens") == 0, "and no opaque ones")?;
    check(count(&after_jwt, "introspections") == 0, "JWT access tokens were verified locally only")?;

    let opaque = RunningApp::start(ports[1], &provider.issuer, "interop-opaque", &secret, "cached").await;
    scenario("opaque access tokens (introspected)", &opaque).await?;
    drop(opaque);
    let after_opaque = provider_stats(&provider.issuer).await?;
    check(
        count(&after_opaque, "jwt_access_tokens") == count(&after_jwt, "jwt_access_tokens"),
        "the second client got no JWT access tokens",
    )?;
    check(count(&after_opaque, "opaque_access_tokens") >= 2, "the provider issued opaque access tokens")?;
    check(count(&after_opaque, "introspections") >= 2, "the app introspected them")?;
    drop(provider);

    let provider = start_provider(node, dir, &redirects, &signed_out, &secret, false);
    let opaque = RunningApp::start(ports[2], &provider.issuer, "interop-opaque", &secret, "cached").await;
    scenario("opaque access tokens, no introspection endpoint (the id_token vouches)", &opaque).await?;
    drop(opaque);
    let stats = provider_stats(&provider.issuer).await?;
    check(count(&stats, "opaque_access_tokens") >= 2, "the provider issued opaque access tokens")?;
    Ok(())
}
