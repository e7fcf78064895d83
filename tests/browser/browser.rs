//! One Chromium session (fresh profile) driven through chromedriver, with the checks every
//! page gets: a screenshot, axe-core, and the page rules (no inline script or style, the
//! stylesheet applied, `lang`, no sideways scrolling).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::support::out_dir;

/// Scenario result: any error, with a message that says what was expected.
pub type Outcome = Result<(), Box<dyn std::error::Error>>;

/// Fails the scenario with a message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+).into());
        }
    };
}

/// What the suite needs to open browsers.
pub struct Setup {
    pub driver_url: String,
    pub chromium: PathBuf,
    /// axe.min.js, when found.
    pub axe: Option<String>,
}

/// Screen size of a session.
#[derive(Clone, Copy)]
pub enum Screen {
    Desktop,
    /// A phone held upright (375 CSS pixels wide), emulated by Chromium.
    Phone,
}

/// Accessibility findings of one page.
pub struct AxeFindings {
    pub page: String,
    pub blocking: Vec<String>,
    pub other: Vec<String>,
}

/// A browser session. Always `close()` it (the runner does).
pub struct Browser {
    pub client: Client,
    profile: PathBuf,
    axe: Option<String>,
    pub findings: Vec<AxeFindings>,
    pub screenshots: Vec<PathBuf>,
    screen: Screen,
}

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

impl Browser {
    /// A new Chromium with a fresh profile (no cookies, no cache).
    pub async fn open(setup: &Setup, screen: Screen) -> Result<Browser, Box<dyn std::error::Error>> {
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let profile = out_dir("browser-tests").join(format!("profile-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({ "binary": setup.chromium.display().to_string() });
        match screen {
            Screen::Desktop => args.push("--window-size=1280,900".into()),
            Screen::Phone => {
                args.push("--window-size=375,812".into());
                options["mobileEmulation"] = json!({ "deviceMetrics": { "width": 375, "height": 812, "pixelRatio": 1.0, "touch": true } });
            }
        }
        options["args"] = json!(args);
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        caps.insert("timeouts".into(), json!({ "pageLoad": 15000, "script": 15000, "implicit": 0 }));
        let client =
            ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&setup.driver_url).await?;
        Ok(Browser {
            client,
            profile,
            axe: setup.axe.clone(),
            findings: Vec::new(),
            screenshots: Vec::new(),
            screen,
        })
    }

    /// Ends the session and removes the profile.
    pub async fn close(self) -> Vec<AxeFindings> {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
        self.findings
    }

    pub async fn goto(&self, url: &str) -> Outcome {
        self.client.goto(url).await?;
        Ok(())
    }

    pub async fn url(&self) -> Result<url::Url, Box<dyn std::error::Error>> {
        Ok(self.client.current_url().await?)
    }

    /// The visible text of the page.
    pub async fn text(&self) -> Result<String, Box<dyn std::error::Error>> {
        Ok(self.client.find(Locator::Css("body")).await?.text().await?)
    }

    /// Clicks the element `css` selects (navigation it starts is awaited by chromedriver).
    pub async fn click(&self, css: &str) -> Outcome {
        let element = self.client.find(Locator::Css(css)).await.map_err(|e| format!("find {css}: {e}"))?;
        element.click().await?;
        Ok(())
    }

    /// Texts of all elements `css` selects.
    pub async fn texts(&self, css: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await? {
            texts.push(element.text().await?);
        }
        Ok(texts)
    }

    /// Polls until the current URL satisfies `ok` (10 s).
    pub async fn wait_for_url(&self, what: &str, ok: impl Fn(&url::Url) -> bool) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await?;
            if ok(&url) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("waited 10 s for {what}; still at {url}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves `target/screenshots/<name>.png` (the whole page on a desktop screen) and runs
    /// axe on the page.
    pub async fn capture(&mut self, name: &str) -> Outcome {
        if matches!(self.screen, Screen::Desktop) {
            let heights = self
                .client
                .execute("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];", vec![])
                .await?;
            let page = heights[0].as_u64().unwrap_or(900) as u32;
            let chrome = heights[1].as_u64().unwrap_or(0) as u32;
            self.client.set_window_size(1280, (page + chrome).max(900)).await?;
        }
        let png = self.client.screenshot().await?;
        let path = out_dir("screenshots").join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        self.screenshots.push(path);
        self.axe(name).await
    }

    /// Runs axe-core on the page; serious or critical violations fail the scenario at the end.
    async fn axe(&mut self, page: &str) -> Outcome {
        let Some(source) = &self.axe else { return Ok(()) };
        // WebDriver scripts are not subject to the page's CSP, so axe runs on our pages
        // although they forbid every script.
        self.client.execute(&format!("{source}\n;return typeof window.axe;"), vec![]).await?;
        let result = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                window.axe.run(document, { resultTypes: ['violations'] })
                  .then(r => done(r.violations.map(v => ({
                      id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))))
                  .catch(e => done({ error: String(e) }));"#,
                vec![],
            )
            .await?;
        if let Some(error) = result.get("error") {
            return Err(format!("axe-core failed on {page}: {error}").into());
        }
        let mut findings = AxeFindings { page: page.to_string(), blocking: Vec::new(), other: Vec::new() };
        for violation in result.as_array().into_iter().flatten() {
            let impact = violation["impact"].as_str().unwrap_or("unknown");
            let line = format!(
                "[{impact}] {}: {} at {}",
                violation["id"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or("?"),
                violation["nodes"]
            );
            if matches!(impact, "serious" | "critical") {
                findings.blocking.push(line);
            } else {
                findings.other.push(line);
            }
        }
        self.findings.push(findings);
        Ok(())
    }

    /// The rules for the app's own pages (the emulator's page has its own CSP).
    pub async fn check_app_page(&self) -> Outcome {
        let facts = self
            .client
            .execute(
                r#"const sheets = [...document.styleSheets];
                return {
                  lang: document.documentElement.lang,
                  scripts: document.scripts.length,
                  inlineStyles: document.querySelectorAll('[style]').length,
                  styleElements: document.querySelectorAll('style').length,
                  sheets: sheets.length,
                  rules: sheets.reduce((n, s) => n + s.cssRules.length, 0),
                  viewport: !!document.querySelector('meta[name=viewport]'),
                  h1: document.querySelectorAll('h1').length,
                  overflow: document.documentElement.scrollWidth - window.innerWidth,
                  font: getComputedStyle(document.body).fontFamily,
                };"#,
                vec![],
            )
            .await?;
        let get = |k: &str| facts.get(k).cloned().unwrap_or(Value::Null);
        check!(get("lang") == json!("en"), "<html lang> should be en: {facts}");
        check!(get("scripts") == json!(0), "no script elements: {facts}");
        check!(
            get("inlineStyles") == json!(0) && get("styleElements") == json!(0),
            "no inline styles: {facts}"
        );
        check!(
            get("sheets") == json!(1) && get("rules").as_u64().unwrap_or(0) > 10,
            "app.css applied: {facts}"
        );
        check!(get("viewport") == json!(true), "a viewport meta tag: {facts}");
        check!(get("h1") == json!(1), "exactly one h1: {facts}");
        check!(get("overflow").as_i64().unwrap_or(1) <= 0, "no sideways scrolling: {facts}");
        Ok(())
    }
}

/// axe.min.js from `AXE_CORE_JS`, `target/axe/node_modules/axe-core/` or `node_modules/`.
pub fn find_axe() -> Option<(PathBuf, String)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("AXE_CORE_JS").map(PathBuf::from),
        Some(super::support::target_dir().join("axe/node_modules/axe-core/axe.min.js")),
        Some(manifest.join("node_modules/axe-core/axe.min.js")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|path| std::fs::read_to_string(&path).ok().map(|source| (path, source)))
}
