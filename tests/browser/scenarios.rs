//! The scenarios of issue 7, each in a fresh browser: sign-in through the emulator's page
//! for every test user, the 403 page, logout and the back button, a second tab, the open
//! page, the error pages, and a phone-sized screen.

use super::browser::{Browser, Outcome};
use super::support::App;
use crate::check;

/// The Flask pattern's sentence on the protected page.
pub const PROTECTED: &str =
    "This route requires authentication and authorization - Powered by IBM Cloud App ID!";
pub const OPEN: &str = "This route is open to all!";

/// True for the emulator's authorization (login) page.
fn at_emulator(url: &url::Url, app: &App) -> bool {
    url.port() != Some(app.port) && url.path().ends_with("/authorization")
}

/// Visits `path` signed out, checks the emulator's login page, picks `email`'s button.
/// The login carries PKCE only when the app was told to send it always: the emulator, like
/// App ID, lists none, so every other login takes production's path (issue 19 item 4).
async fn sign_in(b: &mut Browser, app: &App, path: &str, email: &str, shot: Option<&str>) -> Outcome {
    b.goto(&app.url(path)).await?;
    b.wait_for_url("the emulator's login page", |u| at_emulator(u, app)).await?;
    let url = b.url().await?;
    let pkce: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k.starts_with("code_challenge"))
        .map(|(k, _)| k.into_owned())
        .collect();
    if app.pkce {
        check!(pkce.len() == 2, "a PKCE login sends code_challenge and its method: {url}");
    } else {
        check!(pkce.is_empty(), "production's path: no PKCE parameters, got {pkce:?}");
    }
    let text = b.text().await?;
    check!(text.contains("Development identity provider"), "the login page says what it is: {text}");
    if let Some(name) = shot {
        b.capture(name).await?;
    }
    b.click(&format!("form:has(input[name=login_hint][value=\"{email}\"]) button")).await
}

/// Waits until the browser is back on the app at exactly `path_and_query`.
async fn landed_on(b: &Browser, app: &App, path_and_query: &str) -> Outcome {
    let port = app.port;
    b.wait_for_url(path_and_query, |u| {
        let here = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        u.port() == Some(port) && here == path_and_query
    })
    .await
}

/// The open page works without login and offers a sign-in.
pub async fn open_page_without_login(b: &mut Browser, app: &App) -> Outcome {
    b.goto(&app.url("/noauth_route")).await?;
    let text = b.text().await?;
    check!(text.contains(OPEN), "the open page's sentence: {text}");
    check!(text.contains("Sign in") && !text.contains("Sign out"), "signed out header: {text}");
    b.check_app_page().await?;
    b.capture("01-open-page-signed-out").await
}

/// alice (role user) follows a deep link with a query string and lands on it after sign-in.
pub async fn alice_lands_on_the_deep_link(b: &mut Browser, app: &App) -> Outcome {
    let deep = "/auth_route?from=browser&tab=roles";
    sign_in(b, app, deep, "alice@example.com", Some("02-emulator-login-page")).await?;
    landed_on(b, app, deep).await?;
    let text = b.text().await?;
    check!(text.contains(PROTECTED), "the protected sentence: {text}");
    check!(text.contains("Alice Example") && text.contains("alice@example.com"), "who you are: {text}");
    check!(
        text.contains("Session ends") && text.contains("UTC") && text.contains("(in "),
        "session end: {text}"
    );
    let roles = b.texts(".role").await?;
    check!(roles == ["user"], "alice's roles: {roles:?}");
    check!(b.texts(".who-name").await? == ["Alice Example"], "the header names alice");
    b.check_app_page().await?;
    b.capture("03-alice-protected-deep-link").await
}

/// Where the app sends PKCE (`APPID_PKCE=always`), the emulator checks the verifier and
/// the login completes as any other.
pub async fn a_pkce_login_signs_in_where_the_app_sends_it(b: &mut Browser, app: &App) -> Outcome {
    sign_in(b, app, "/auth_route", "alice@example.com", None).await?;
    landed_on(b, app, "/auth_route").await?;
    let text = b.text().await?;
    check!(text.contains(PROTECTED) && text.contains("Alice Example"), "alice signed in with PKCE: {text}");
    b.check_app_page().await
}

/// carol (user, admin) sees both roles.
pub async fn carol_sees_both_roles(b: &mut Browser, app: &App) -> Outcome {
    sign_in(b, app, "/auth_route", "carol@example.com", None).await?;
    landed_on(b, app, "/auth_route").await?;
    let mut roles = b.texts(".role").await?;
    roles.sort();
    check!(roles == ["admin", "user"], "carol's roles: {roles:?}");
    check!(b.text().await?.contains(PROTECTED), "the protected sentence");
    b.check_app_page().await?;
    b.capture("04-carol-protected").await
}

/// bob (no role) gets the 403 page, not a loop; "switch account" leads to another sign-in.
pub async fn bob_sees_the_403_page_and_switches_account(b: &mut Browser, app: &App) -> Outcome {
    sign_in(b, app, "/auth_route", "bob@example.com", None).await?;
    landed_on(b, app, "/auth_route").await?;
    let text = b.text().await?;
    check!(
        text.contains("Unauthorized") && text.contains("bob@example.com"),
        "the 403 page names bob: {text}"
    );
    check!(text.contains("administrator") && !text.contains(PROTECTED), "what to ask, no content: {text}");
    b.check_app_page().await?;
    b.capture("05-bob-403-no-role").await?;
    // Switch account: sign out from the 403 page, then sign in as alice.
    b.click("main form[action='/logout'] button").await?;
    landed_on(b, app, "/noauth_route").await?;
    check!(!b.text().await?.contains("Sign out"), "signed out");
    b.click("main a[href='/auth_route']").await?;
    b.wait_for_url("the emulator's login page", |u| at_emulator(u, app)).await?;
    b.click("form:has(input[name=login_hint][value=\"alice@example.com\"]) button").await?;
    landed_on(b, app, "/auth_route").await?;
    check!(b.text().await?.contains("Alice Example"), "now signed in as alice");
    Ok(())
}

/// A typed e-mail address signs in a new user, who has no role.
pub async fn a_typed_email_signs_in_a_user_without_roles(b: &mut Browser, app: &App) -> Outcome {
    b.goto(&app.url("/auth_route")).await?;
    b.wait_for_url("the emulator's login page", |u| at_emulator(u, app)).await?;
    let field = b.client.find(fantoccini::Locator::Css("input#login_hint")).await?;
    field.send_keys("dana@example.org").await?;
    b.click("form:has(input#login_hint) button[type=submit]").await?;
    landed_on(b, app, "/auth_route").await?;
    let text = b.text().await?;
    check!(text.contains("Unauthorized") && text.contains("dana@example.org"), "dana has no role: {text}");
    Ok(())
}

/// Known issue (docs/BROWSER-TESTS.md): Chromium restores the protected page from its
/// back/forward cache after logout. Set to `false` once logout evicts it; the scenario then
/// fails if Back shows the page.
const BFCACHE_RESTORE_AFTER_LOGOUT_IS_KNOWN: bool = false;

/// After logout, the back button does not show the protected page again.
pub async fn logout_then_back_shows_no_protected_content(b: &mut Browser, app: &App) -> Outcome {
    sign_in(b, app, "/auth_route", "alice@example.com", None).await?;
    landed_on(b, app, "/auth_route").await?;
    check!(b.text().await?.contains(PROTECTED), "signed in first");
    // A mark in the page's memory: if it is still there after "back", the page came from
    // the back/forward cache rather than from the server.
    b.client.execute("window.__before_logout = true;", vec![]).await?;
    b.click("header form[action='/logout'] button").await?;
    landed_on(b, app, "/noauth_route").await?;
    let text = b.text().await?;
    check!(text.contains(OPEN) && !text.contains("Sign out"), "signed out: {text}");
    b.capture("06-after-logout").await?;
    b.client.back().await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let url = b.url().await?;
    let text = b.text().await?;
    let restored = b.client.execute("return window.__before_logout === true;", vec![]).await?;
    if text.contains(PROTECTED) {
        // Only the back/forward cache may show it: Chromium keeps `no-store` pages there and
        // evicts them when a cookie changes *while* they are cached; logout's own Set-Cookie
        // arrives before the page is frozen. The server must never serve it again.
        check!(
            restored == serde_json::json!(true),
            "after logout the SERVER served the protected page: {text}"
        );
        b.capture("07-back-button-after-logout-bfcache").await?;
        check!(
            BFCACHE_RESTORE_AFTER_LOGOUT_IS_KNOWN,
            "Back after logout showed the protected page (restored from the back/forward cache)"
        );
        super::known_issue(
            "logout then back: Chromium restored the protected page from its back/forward cache \
             (no request reached the app); a reload asks for a sign-in. See docs/BROWSER-TESTS.md.",
        );
        b.client.refresh().await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let url = b.url().await?;
        let text = b.text().await?;
        check!(!text.contains(PROTECTED) && !text.contains("Signed in as"), "reload after logout: {text}");
        check!(at_emulator(&url, app), "a reload after logout asks for a sign-in, at {url}");
    } else {
        if BFCACHE_RESTORE_AFTER_LOGOUT_IS_KNOWN {
            super::say("    note: the back/forward-cache known issue did not show this time");
        }
        check!(!text.contains("Signed in as"), "back shows no signed-in header: {text}");
        check!(at_emulator(&url, app), "back asks for a sign-in again, at {url}");
    }
    b.capture("07-back-button-after-logout").await
}

/// A second tab shares the session; logging out in one tab logs out the other.
pub async fn a_second_tab_shares_the_session(b: &mut Browser, app: &App) -> Outcome {
    sign_in(b, app, "/auth_route", "carol@example.com", None).await?;
    landed_on(b, app, "/auth_route").await?;
    let first = b.client.window().await?;
    let second = b.client.new_window(true).await?.handle;
    b.client.switch_to_window(second).await?;
    b.goto(&app.url("/auth_route?tab=2")).await?;
    landed_on(b, app, "/auth_route?tab=2").await?;
    check!(b.text().await?.contains(PROTECTED), "the second tab is signed in without a new login");
    b.capture("08-second-tab-signed-in").await?;
    b.click("header form[action='/logout'] button").await?;
    landed_on(b, app, "/noauth_route").await?;
    b.client.switch_to_window(first).await?;
    b.client.refresh().await?;
    let url = b.url().await?;
    let text = b.text().await?;
    check!(!text.contains(PROTECTED), "the first tab is signed out too ({url}): {text}");
    check!(at_emulator(&url, app), "the first tab asks for a sign-in, at {url}");
    b.capture("09-first-tab-after-logout-in-second").await
}

/// The 404 page and the 400 sign-in-failed page, whose "Start again" starts a new sign-in.
pub async fn error_pages_explain_themselves(b: &mut Browser, app: &App) -> Outcome {
    b.goto(&app.url("/no/such/page")).await?;
    let text = b.text().await?;
    check!(text.contains("Page not found") && text.contains("404"), "404 page: {text}");
    b.check_app_page().await?;
    b.capture("10-not-found-404").await?;
    b.goto(&app.url("/afterauth?code=forged&state=forged")).await?;
    let text = b.text().await?;
    check!(
        text.contains("Sign-in could not be completed") && text.contains("Start again"),
        "400 page: {text}"
    );
    b.check_app_page().await?;
    b.capture("11-sign-in-failed-400").await?;
    b.click("main a.button[href='/auth_route']").await?;
    b.wait_for_url("a new sign-in", |u| at_emulator(u, app)).await
}

/// An identity service that does not answer gives the 503 page (another app process).
pub async fn an_unreachable_identity_service_gives_the_503_page(b: &mut Browser, down: &App) -> Outcome {
    b.goto(&down.url("/auth_route")).await?;
    let text = b.text().await?;
    check!(
        text.contains("Identity service unavailable") && text.contains("try again in a minute"),
        "503: {text}"
    );
    check!(text.contains("Try again"), "a way to try again: {text}");
    b.check_app_page().await?;
    b.capture("12-identity-service-unavailable-503").await
}

/// The 500 page, from a route of the in-process app that always fails.
pub async fn the_500_page(b: &mut Browser, url: &str) -> Outcome {
    b.goto(url).await?;
    let text = b.text().await?;
    check!(text.contains("Something went wrong") && text.contains("500"), "500 page: {text}");
    b.check_app_page().await?;
    b.capture("13-internal-error-500").await
}

/// On a phone-sized screen: the emulator's page, the protected page and the 403 page fit.
pub async fn pages_fit_a_phone(b: &mut Browser, app: &App) -> Outcome {
    b.goto(&app.url("/noauth_route")).await?;
    b.check_app_page().await?;
    b.capture("14-phone-open-page").await?;
    sign_in(b, app, "/auth_route", "carol@example.com", Some("15-phone-emulator-login-page")).await?;
    landed_on(b, app, "/auth_route").await?;
    b.check_app_page().await?;
    b.capture("16-phone-protected").await?;
    b.click("header form[action='/logout'] button").await?;
    landed_on(b, app, "/noauth_route").await?;
    sign_in(b, app, "/auth_route", "bob@example.com", None).await?;
    landed_on(b, app, "/auth_route").await?;
    b.check_app_page().await?;
    b.capture("17-phone-bob-403").await
}
