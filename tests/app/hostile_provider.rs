//! Hostile provider answers (security.md §3.4–3.5): a scripted fake App ID (wiremock) that
//! says what the emulator never would. Bad tokens give the 400 sign-in page, provider
//! trouble the 503 page with `Retry-After`; neither ever starts a session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use appid_emulator::jwt::SigningKey;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::Status;
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::common::*;

const TENANT: &str = "tenant-1";
const CLIENT_ID: &str = "client-1";
const SUB: &str = "user-1";
const ROLES_PATH: &str = "/management/v4/tenant-1/users/user-1/roles";
const TOKEN_PATH: &str = "/oauth/v4/tenant-1/token";
const JWKS_PATH: &str = "/oauth/v4/tenant-1/publickeys";
const DISCOVERY_PATH: &str = "/oauth/v4/tenant-1/.well-known/openid-configuration";
const IAM_PATH: &str = "/identity/token";

/// The provider's signing key (one per test run: RSA keygen is slow in debug builds).
fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(TENANT).unwrap())
}

/// Another RSA key: an attacker's, or the provider's second key.
fn other_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate("attacker").unwrap())
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// App ID's v4 JOSE header for `kid`.
fn header(kid: &str) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": kid, "ver": 4})
}

/// A compact JWS with an HMAC-SHA256 tag made with `secret`.
fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A token endpoint success body.
fn token_body(id_token: &str, access_token: &str) -> Value {
    json!({
        "access_token": access_token,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid appid_default",
    })
}

fn json_answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// 500 while `down`, then the normal answer.
struct Outage {
    down: Arc<AtomicBool>,
    normal: ResponseTemplate,
}

impl Respond for Outage {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        if self.down.load(Ordering::SeqCst) {
            ResponseTemplate::new(500)
        } else {
            self.normal.clone()
        }
    }
}

/// A login the app started: what it sent to the authorization endpoint.
struct Login {
    state: String,
    nonce: String,
}

/// The scripted provider. Its default answers have a low priority (10), so a test
/// overrides one by mounting another mock (default priority 5).
struct Provider {
    server: MockServer,
}

impl Provider {
    /// A well-behaved App ID: discovery, one signing key, IAM, and role `user` for `user-1`.
    async fn new() -> Provider {
        let provider = Provider { server: MockServer::start().await };
        let discovery = provider.discovery();
        provider.default_answer("GET", DISCOVERY_PATH, json_answer(discovery)).await;
        provider.default_answer("GET", JWKS_PATH, json_answer(json!({"keys": [key().jwk()]}))).await;
        let iam = json!({
            "access_token": "iam-access-token", "refresh_token": "not_supported",
            "token_type": "Bearer", "expires_in": 3600, "expiration": now() + 3600,
        });
        provider.default_answer("POST", IAM_PATH, json_answer(iam)).await;
        let roles = json!({"roles": [{"id": "role-1", "name": "user"}]});
        provider.default_answer("GET", ROLES_PATH, json_answer(roles)).await;
        provider
    }

    async fn default_answer(&self, verb: &str, at: &str, answer: ResponseTemplate) {
        Mock::given(method(verb))
            .and(path(at))
            .respond_with(answer)
            .with_priority(10)
            .mount(&self.server)
            .await;
    }

    /// Overrides the answer of `verb at` for the rest of the test.
    async fn answer(&self, verb: &str, at: &str, answer: ResponseTemplate) {
        Mock::given(method(verb)).and(path(at)).respond_with(answer).mount(&self.server).await;
    }

    /// Makes `verb at` answer 500 until the returned switch is turned off, then `normal`.
    /// (Not a scoped mock: wiremock 0.6.5 unmounts the wrong mock when priorities differ.)
    async fn outage(&self, verb: &str, at: &str, normal: ResponseTemplate) -> Arc<AtomicBool> {
        let down = Arc::new(AtomicBool::new(true));
        let responder = Outage { down: down.clone(), normal };
        Mock::given(method(verb)).and(path(at)).respond_with(responder).mount(&self.server).await;
        down
    }

    fn issuer(&self) -> String {
        format!("{}/oauth/v4/{TENANT}", self.server.uri())
    }

    fn discovery(&self) -> Value {
        let issuer = self.issuer();
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorization"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/publickeys"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "management_endpoint": format!("{}/management/v4/{TENANT}", self.server.uri()),
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// The app, configured for this provider with 1 s timeouts.
    async fn app(&self) -> Client {
        self.app_with(json!({})).await
    }

    /// [`Provider::app`] with `overrides` merged into its `appid` settings.
    async fn app_with(&self, overrides: Value) -> Client {
        let iam_url = format!("{}{IAM_PATH}", self.server.uri());
        let settings = appid_settings((CLIENT_ID, "client-secret-1"), "api-key-1", &self.issuer(), &iam_url);
        let mut figment = figment_with(
            settings,
            json!({
                "token_timeout_secs": 1,
                // These tests are about token responses; introspection has its own tests.
                "introspection": "never",
                "request_timeout_secs": 1,
            }),
        );
        figment = figment.merge(rocket::figment::providers::Serialized::global("appid", overrides));
        Client::tracked(rocket_appid::build(figment)).await.unwrap()
    }

    /// Visits the protected page; returns the login the app started.
    async fn begin(&self, app: &Client) -> Login {
        let response = visit(app, "/auth_route").await;
        assert_eq!(response.status(), Status::SeeOther, "a login starts");
        let to = Url::parse(&location(&response)).unwrap();
        assert!(to.as_str().starts_with(&format!("{}/authorization?", self.issuer())));
        let param =
            |name: &str| to.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap();
        Login { state: param("state"), nonce: param("nonce") }
    }

    /// Starts a login, lets the token endpoint give `answer` (once), and delivers the
    /// callback with the right state.
    async fn complete_login<'c>(
        &self,
        app: &'c Client,
        answer: impl FnOnce(&Login) -> ResponseTemplate,
    ) -> LocalResponse<'c> {
        let login = self.begin(app).await;
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(answer(&login))
            .up_to_n_times(1)
            .mount(&self.server)
            .await;
        callback(app, &login).await
    }

    /// Claims of a good id_token for `nonce`.
    fn id_claims(&self, nonce: &str) -> Value {
        let now = now();
        json!({
            "iss": self.issuer(), "aud": [CLIENT_ID], "exp": now + 3600, "iat": now,
            "tenant": TENANT, "sub": SUB, "nonce": nonce, "name": "Pat Tester",
            "email": "pat@example.com", "amr": ["cloud_directory"],
        })
    }

    /// Claims of a good access token.
    fn access_claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.issuer(), "aud": [CLIENT_ID], "exp": now + 3600, "iat": now,
            "tenant": TENANT, "sub": SUB, "scope": "openid appid_default",
        })
    }

    /// A good access token.
    fn access_token(&self) -> String {
        key().sign_claims(&self.access_claims())
    }

    /// How many requests reached `at`.
    async fn calls(&self, at: &str) -> usize {
        self.server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == at).count()
    }
}

/// The provider's redirect back to the app for `login`.
async fn callback<'c>(app: &'c Client, login: &Login) -> LocalResponse<'c> {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "code-1")
        .append_pair("state", &login.state)
        .finish();
    app.get(format!("/afterauth?{query}")).dispatch().await
}

/// 400, the sign-in page, no session.
async fn assert_sign_in_failed(app: &Client, response: LocalResponse<'_>) {
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.cookies().get("appid_session").is_none());
    let body = response.into_string().await.unwrap();
    assert!(body.contains(REFUSED), "the sign-in page: {body}");
    assert!(session_of(app).is_none());
}

/// 503, the unavailable page with `Retry-After`, no session.
async fn assert_unavailable(app: &Client, response: LocalResponse<'_>) {
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.headers().get_one("Retry-After").is_some());
    assert!(response.cookies().get("appid_session").is_none());
    let body = response.into_string().await.unwrap();
    assert!(body.contains(UNAVAILABLE), "the unavailable page: {body}");
    assert!(session_of(app).is_none());
}

/// Asserts a login whose id_token is made by `id_token` is refused with the sign-in page,
/// and that nothing was asked of the management API.
async fn assert_id_token_refused(id_token: impl FnOnce(&Provider, &Login) -> String) {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            json_answer(token_body(&id_token(&provider, login), &provider.access_token()))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(TOKEN_PATH).await, 1);
    assert_eq!(provider.calls(ROLES_PATH).await, 0, "no token was used");
    assert_eq!(provider.calls(IAM_PATH).await, 0);
}

/// Asserts a login whose id_token has these claims (good ones changed by `change`) is refused.
async fn assert_id_claims_refused(change: impl FnOnce(&Provider, &mut Value)) {
    assert_id_token_refused(|provider, login| {
        let mut claims = provider.id_claims(&login.nonce);
        change(provider, &mut claims);
        key().sign_claims(&claims)
    })
    .await;
}

/// Asserts a login whose id_token has these claims is accepted.
async fn assert_id_claims_accepted(change: impl FnOnce(&Provider, &mut Value)) {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut claims = provider.id_claims(&login.nonce);
            change(&provider, &mut claims);
            json_answer(token_body(&key().sign_claims(&claims), &provider.access_token()))
        })
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");
    assert!(session_of(&app).is_some());
}

/// Asserts a login whose token endpoint answers `answer` gives the 503 page.
async fn assert_token_answer_unavailable(answer: ResponseTemplate) {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider.complete_login(&app, |_| answer).await;
    assert_unavailable(&app, response).await;
    assert_eq!(provider.calls(TOKEN_PATH).await, 1, "never retried");
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn a_well_behaved_fake_provider_logs_the_user_in() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            json_answer(token_body(
                &key().sign_claims(&provider.id_claims(&login.nonce)),
                &provider.access_token(),
            ))
        })
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");

    let page = visit(&app, "/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(body.contains("pat@example.com") && body.contains(">user<"));
    let token_request = &provider
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == TOKEN_PATH)
        .unwrap();
    assert!(token_request
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap().starts_with("Basic ")));
}

/// Logs in with the good id_token claims changed by `change`; the protected page's text.
async fn protected_page_after_login(change: impl FnOnce(&mut Value)) -> String {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut claims = provider.id_claims(&login.nonce);
            change(&mut claims);
            json_answer(token_body(&key().sign_claims(&claims), &provider.access_token()))
        })
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    let page = visit(&app, "/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    page.into_string().await.unwrap()
}

/// The text of the element with `id` (the first one), without its tags.
fn element_text(body: &str, id: &str) -> String {
    let start = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {body}"));
    let after = &body[start..];
    let end = after.find("</p>").unwrap();
    let mut text = String::new();
    let mut in_tag = true;
    for c in after[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[rocket::async_test]
async fn the_header_names_the_user_by_name_else_e_mail_else_a_fixed_text() {
    let both = protected_page_after_login(|_| {}).await;
    assert_eq!(element_text(&both, "signed-in-as"), "Signed in as Pat Tester pat@example.com");

    let no_name = protected_page_after_login(|claims| {
        claims.as_object_mut().unwrap().remove("name");
    })
    .await;
    assert_eq!(element_text(&no_name, "signed-in-as"), "Signed in as pat@example.com");
    assert!(no_name.contains("<dd>(not provided)</dd>"), "the Name row: {no_name}");

    let empty_name = protected_page_after_login(|claims| claims["name"] = json!("  ")).await;
    assert_eq!(element_text(&empty_name, "signed-in-as"), "Signed in as pat@example.com");
    assert!(empty_name.contains("<dd>(not provided)</dd>"), "a blank name is not shown: {empty_name}");

    let neither = protected_page_after_login(|claims| {
        let claims = claims.as_object_mut().unwrap();
        claims.remove("name");
        claims.remove("email");
    })
    .await;
    assert_eq!(element_text(&neither, "signed-in-as"), "Signed in as a user without a name");
    assert_eq!(neither.matches("<dd>(not provided)</dd>").count(), 2, "Name and E-mail: {neither}");
}

#[rocket::async_test]
async fn markup_in_the_name_and_e_mail_is_shown_as_text_not_run() {
    let name = r#"<img src=x onerror="alert('n')"> & Co"#;
    let email = r#"x"><script>alert(1)</script>@example.com"#;
    let page = protected_page_after_login(|claims| {
        claims["name"] = json!(name);
        claims["email"] = json!(email);
    })
    .await;
    assert!(!page.contains("<img") && !page.contains("<script>"), "markup got through: {page}");
    let name_shown = "&lt;img src=x onerror=&quot;alert(&#x27;n&#x27;)&quot;&gt; &amp; Co";
    assert!(page.contains(&format!("<dd>{name_shown}</dd>")), "the Name row: {page}");
    assert!(page.contains("<dd>x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.com</dd>"), "{page}");
    // The header's "signed in as" line carries the same references.
    assert_eq!(
        element_text(&page, "signed-in-as"),
        format!("Signed in as {name_shown} x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.com")
    );
}

#[rocket::async_test]
async fn b41_an_id_token_with_alg_none_is_refused() {
    assert_id_token_refused(|provider, login| {
        let header = json!({"alg": "none", "typ": "JWT"});
        let claims = provider.id_claims(&login.nonce);
        format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
    })
    .await;
}

#[rocket::async_test]
async fn b42_an_hs256_id_token_maced_with_the_rsa_modulus_is_refused() {
    assert_id_token_refused(|provider, login| {
        let n = URL_SAFE_NO_PAD.decode(key().jwk()["n"].as_str().unwrap()).unwrap();
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": key().kid(), "ver": 4});
        hs256(&n, &header, &provider.id_claims(&login.nonce))
    })
    .await;
}

#[rocket::async_test]
async fn b42_an_hs256_id_token_maced_with_the_published_jwk_is_refused() {
    assert_id_token_refused(|provider, login| {
        let jwk = key().jwk().to_string();
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": key().kid(), "ver": 4});
        hs256(jwk.as_bytes(), &header, &provider.id_claims(&login.nonce))
    })
    .await;
}

#[rocket::async_test]
async fn b43_an_id_token_signed_by_another_key_with_the_real_kid_is_refused() {
    assert_id_token_refused(|provider, login| {
        other_key().sign(&header(key().kid()), &provider.id_claims(&login.nonce))
    })
    .await;
}

#[rocket::async_test]
async fn b45_an_unknown_kid_is_refused_and_the_keys_are_fetched_at_most_twice() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    for attempt in 0..3 {
        let response = provider
            .complete_login(&app, |login| {
                let kid = format!("appId-{TENANT}-unknown-{attempt}");
                let id = other_key().sign(&header(&kid), &provider.id_claims(&login.nonce));
                json_answer(token_body(&id, &provider.access_token()))
            })
            .await;
        assert_sign_in_failed(&app, response).await;
    }
    assert!(provider.calls(JWKS_PATH).await <= 2, "no stream of refetches");
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn b46_an_id_token_without_kid_is_refused_when_the_jwks_has_two_keys() {
    let provider = Provider::new().await;
    provider.answer("GET", JWKS_PATH, json_answer(json!({"keys": [key().jwk(), other_key().jwk()]}))).await;
    let app = provider.app().await;
    let no_kid = json!({"alg": "RS256", "typ": "JWT", "ver": 4});
    let response = provider
        .complete_login(&app, |login| {
            let id = key().sign(&no_kid, &provider.id_claims(&login.nonce));
            let access = key().sign(&no_kid, &provider.access_claims());
            json_answer(token_body(&id, &access))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn b46_tokens_without_kid_are_accepted_when_the_jwks_has_one_key() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let no_kid = json!({"alg": "RS256", "typ": "JWT", "ver": 4});
    let response = provider
        .complete_login(&app, |login| {
            let id = key().sign(&no_kid, &provider.id_claims(&login.nonce));
            let access = key().sign(&no_kid, &provider.access_claims());
            json_answer(token_body(&id, &access))
        })
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(session_of(&app).is_some());
}

#[rocket::async_test]
async fn b49_an_id_token_for_another_client_is_refused() {
    assert_id_claims_refused(|_, claims| claims["aud"] = json!(["other-client"])).await;
}

#[rocket::async_test]
async fn b49_an_id_token_with_an_extra_audience_is_refused() {
    assert_id_claims_refused(|_, claims| claims["aud"] = json!([CLIENT_ID, "other-client"])).await;
}

#[rocket::async_test]
async fn b49_an_id_token_without_audience_is_refused() {
    assert_id_claims_refused(|_, claims| {
        claims.as_object_mut().unwrap().remove("aud");
    })
    .await;
}

#[rocket::async_test]
async fn b50_an_id_token_authorized_for_another_party_is_refused() {
    assert_id_claims_refused(|_, claims| claims["azp"] = json!("other-client")).await;
}

#[rocket::async_test]
async fn b51_an_id_token_from_another_tenant_is_refused() {
    assert_id_claims_refused(|provider, claims| {
        claims["iss"] = json!(format!("{}/oauth/v4/tenant-2", provider.server.uri()));
    })
    .await;
}

#[rocket::async_test]
async fn b51_an_issuer_with_a_trailing_slash_is_refused() {
    assert_id_claims_refused(|provider, claims| {
        claims["iss"] = json!(format!("{}/", provider.issuer()));
    })
    .await;
}

#[rocket::async_test]
async fn b51_a_token_for_another_tenant_claim_is_refused() {
    assert_id_claims_refused(|_, claims| claims["tenant"] = json!("tenant-2")).await;
}

#[rocket::async_test]
async fn b52_an_id_token_expired_61_seconds_ago_is_refused() {
    assert_id_claims_refused(|_, claims| {
        claims["iat"] = json!(now() - 300);
        claims["exp"] = json!(now() - 61);
    })
    .await;
}

#[rocket::async_test]
async fn b52_an_id_token_expired_59_seconds_ago_is_accepted_within_the_leeway() {
    assert_id_claims_accepted(|_, claims| {
        claims["iat"] = json!(now() - 300);
        claims["exp"] = json!(now() - 59);
    })
    .await;
}

#[rocket::async_test]
async fn b53_an_id_token_issued_an_hour_in_the_future_is_refused() {
    assert_id_claims_refused(|_, claims| claims["iat"] = json!(now() + 3600)).await;
}

#[rocket::async_test]
async fn b53_an_id_token_issued_two_hours_ago_is_refused() {
    assert_id_claims_refused(|_, claims| claims["iat"] = json!(now() - 7200)).await;
}

#[rocket::async_test]
async fn b53_an_id_token_not_valid_for_another_hour_is_refused() {
    assert_id_claims_refused(|_, claims| claims["nbf"] = json!(now() + 3600)).await;
}

#[rocket::async_test]
async fn b54_an_id_token_without_nonce_is_refused() {
    assert_id_claims_refused(|_, claims| {
        claims.as_object_mut().unwrap().remove("nonce");
    })
    .await;
}

#[rocket::async_test]
async fn b55_an_id_token_with_the_nonce_of_another_login_is_refused() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let earlier = provider.begin(&app).await;
    let response = provider
        .complete_login(&app, |login| {
            assert_ne!(login.nonce, earlier.nonce);
            let id = key().sign_claims(&provider.id_claims(&earlier.nonce));
            json_answer(token_body(&id, &provider.access_token()))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn b55_an_id_token_with_a_prefix_of_our_nonce_is_refused() {
    assert_id_claims_refused(|_, claims| {
        let nonce = claims["nonce"].as_str().unwrap().to_string();
        claims["nonce"] = json!(nonce[..nonce.len() - 1]);
    })
    .await;
}

#[rocket::async_test]
async fn b55_an_id_token_with_our_nonce_in_another_case_is_refused() {
    assert_id_claims_refused(|_, claims| {
        let nonce = claims["nonce"].as_str().unwrap();
        let flipped: String = nonce
            .chars()
            .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        claims["nonce"] = json!(flipped);
    })
    .await;
}

/// Asserts a login whose tokens both name `sub` is refused before any management call.
async fn assert_subject_refused(sub: &str) {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut id = provider.id_claims(&login.nonce);
            id["sub"] = json!(sub);
            let mut access = provider.access_claims();
            access["sub"] = json!(sub);
            json_answer(token_body(&key().sign_claims(&id), &key().sign_claims(&access)))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    let management = provider
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/management/") || r.url.path() == IAM_PATH)
        .count();
    assert_eq!(management, 0, "sub {sub:?} never reaches a URL");
}

#[rocket::async_test]
async fn b56_a_subject_climbing_out_of_the_users_path_is_refused_before_the_management_api() {
    assert_subject_refused("../../applications").await;
}

#[rocket::async_test]
async fn b56_a_subject_with_a_slash_an_encoded_slash_or_a_nul_is_refused() {
    for sub in ["a/b", "a%2Fb", "..", "a\0b"] {
        assert_subject_refused(sub).await;
    }
}

#[rocket::async_test]
async fn b56_an_empty_or_256_character_subject_is_refused() {
    assert_subject_refused("").await;
    assert_subject_refused(&"a".repeat(256)).await;
}

#[rocket::async_test]
async fn b57_an_id_token_with_a_critical_header_is_refused() {
    assert_id_token_refused(|provider, login| {
        let mut header = header(key().kid());
        header["crit"] = json!(["exp"]);
        key().sign(&header, &provider.id_claims(&login.nonce))
    })
    .await;
}

#[rocket::async_test]
async fn b58_an_access_token_typed_id_token_is_refused() {
    assert_id_token_refused(|provider, login| {
        let mut header = header(key().kid());
        header["typ"] = json!("at+jwt");
        key().sign(&header, &provider.id_claims(&login.nonce))
    })
    .await;
}

#[rocket::async_test]
async fn b58_a_five_segment_jwe_is_refused() {
    assert_id_token_refused(|_, _| {
        let header = json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": key().kid()});
        format!("{}.AAAA.BBBB.CCCC.DDDD", b64(header.to_string()))
    })
    .await;
}

#[rocket::async_test]
async fn b60_an_id_token_with_padded_base64_is_refused() {
    assert_id_token_refused(|provider, login| {
        let token = key().sign_claims(&provider.id_claims(&login.nonce));
        let (header, rest) = token.split_once('.').unwrap();
        format!("{header}==.{rest}")
    })
    .await;
}

#[rocket::async_test]
async fn b62_an_id_token_over_app_ids_100_kb_is_refused() {
    assert_id_claims_refused(|_, claims| claims["padding"] = json!("x".repeat(100 * 1024))).await;
}

/// Issue 19 item 5: App ID lets custom claims grow a token to 100 KB; such an id_token is
/// verified like any other (the session keeps only its name and e-mail).
#[rocket::async_test]
async fn a_40_kb_id_token_within_app_ids_custom_claims_limit_is_accepted() {
    assert_id_claims_accepted(|_, claims| claims["padding"] = json!("x".repeat(40 * 1024))).await;
}

/// Issue 19 item 5: a 40 KB access token verifies, but does not fit in the session's
/// cookies: the "session too large" page, not a failed sign-in.
#[rocket::async_test]
async fn a_40_kb_access_token_gives_the_session_too_large_page() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut access = provider.access_claims();
            access["padding"] = json!("x".repeat(40 * 1024));
            json_answer(token_body(
                &key().sign_claims(&provider.id_claims(&login.nonce)),
                &key().sign_claims(&access),
            ))
        })
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.into_string().await.unwrap().contains("Session too large"));
    assert!(session_of(&app).is_none());
}

/// Issue 19 item 5: App ID's documentation shows `typ: JOSE` (its v3 tokens' type).
#[rocket::async_test]
async fn an_id_token_typed_jose_is_accepted() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut header = header(key().kid());
            header["typ"] = json!("JOSE");
            json_answer(token_body(
                &key().sign(&header, &provider.id_claims(&login.nonce)),
                &provider.access_token(),
            ))
        })
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(session_of(&app).is_some());
}

/// The app trusting the audience `spa-client` (another client of the tenant).
async fn app_trusting_a_spa(provider: &Provider) -> Client {
    provider.app_with(json!({ "trusted_audiences": "spa-client" })).await
}

/// Logs in through an app trusting `spa-client` with the id_token's `aud` and `azp` set;
/// the callback's status.
async fn login_with_audiences(aud: Value, azp: Option<&str>) -> Status {
    let provider = Provider::new().await;
    let app = app_trusting_a_spa(&provider).await;
    let response = provider
        .complete_login(&app, |login| {
            let mut claims = provider.id_claims(&login.nonce);
            claims["aud"] = aud;
            if let Some(azp) = azp {
                claims["azp"] = json!(azp);
            }
            json_answer(token_body(&key().sign_claims(&claims), &provider.access_token()))
        })
        .await;
    response.status()
}

/// Issue 19 item 5 (OIDC Core §3.1.3.7 steps 3–5): an extra audience is accepted only when
/// it is trusted and `azp` names us.
#[rocket::async_test]
async fn an_id_token_with_a_trusted_extra_audience_and_our_azp_is_accepted() {
    assert_eq!(
        login_with_audiences(json!([CLIENT_ID, "spa-client"]), Some(CLIENT_ID)).await,
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn an_id_token_with_a_trusted_extra_audience_but_without_azp_is_refused() {
    assert_eq!(login_with_audiences(json!([CLIENT_ID, "spa-client"]), None).await, Status::BadRequest);
}

#[rocket::async_test]
async fn an_id_token_with_an_untrusted_extra_audience_is_refused_even_with_our_azp() {
    assert_eq!(
        login_with_audiences(json!([CLIENT_ID, "other-client"]), Some(CLIENT_ID)).await,
        Status::BadRequest
    );
}

#[rocket::async_test]
async fn an_id_token_only_for_a_trusted_audience_is_refused_at_login() {
    assert_eq!(login_with_audiences(json!(["spa-client"]), Some(CLIENT_ID)).await, Status::BadRequest);
}

#[rocket::async_test]
async fn b63_a_token_response_without_id_token_is_refused_as_a_failed_sign_in() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |_| {
            json_answer(json!({
                "access_token": provider.access_token(), "token_type": "Bearer", "expires_in": 3600,
            }))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn b63_a_mac_token_type_is_refused_as_a_failed_sign_in() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut body =
                token_body(&key().sign_claims(&provider.id_claims(&login.nonce)), &provider.access_token());
            body["token_type"] = json!("mac");
            json_answer(body)
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn b63_an_incomplete_token_response_starts_no_session_and_uses_no_token() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let no_id_token = json!({
        "access_token": provider.access_token(), "token_type": "Bearer", "expires_in": 3600,
    });
    let response = provider.complete_login(&app, |_| json_answer(no_id_token)).await;
    assert!(response.status().code >= 400, "{}", response.status());
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.cookies().get("appid_session").is_none());

    let response = provider
        .complete_login(&app, |login| {
            let mut body =
                token_body(&key().sign_claims(&provider.id_claims(&login.nonce)), &provider.access_token());
            body["token_type"] = json!("mac");
            json_answer(body)
        })
        .await;
    assert!(response.status().code >= 400, "{}", response.status());
    assert!(response.headers().get_one("Location").is_none());
    assert!(response.cookies().get("appid_session").is_none());

    assert!(session_of(&app).is_none());
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
    assert_eq!(provider.calls(IAM_PATH).await, 0);
}

#[rocket::async_test]
async fn b64_an_access_token_for_another_subject_is_refused() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut access = provider.access_claims();
            access["sub"] = json!("user-2");
            json_answer(token_body(
                &key().sign_claims(&provider.id_claims(&login.nonce)),
                &key().sign_claims(&access),
            ))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

/// `at_hash` as OIDC Core §3.1.3.8 defines it for RS256.
fn at_hash(access_token: &str) -> String {
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

#[rocket::async_test]
async fn r_t12_an_at_hash_of_another_access_token_is_refused() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let mut id = provider.id_claims(&login.nonce);
            id["at_hash"] = json!(at_hash("some other access token"));
            json_answer(token_body(&key().sign_claims(&id), &provider.access_token()))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn r_t12_a_matching_at_hash_is_accepted() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let access_token = provider.access_token();
            let mut id = provider.id_claims(&login.nonce);
            id["at_hash"] = json!(at_hash(&access_token));
            json_answer(token_body(&key().sign_claims(&id), &access_token))
        })
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(session_of(&app).is_some());
}

/// R-A8 / RFC 9207: a provider that advertises `iss` on authorization responses.
async fn provider_advertising_iss() -> Provider {
    let provider = Provider::new().await;
    let mut discovery = provider.discovery();
    discovery["authorization_response_iss_parameter_supported"] = json!(true);
    provider.answer("GET", DISCOVERY_PATH, json_answer(discovery)).await;
    provider
}

#[rocket::async_test]
async fn b26_when_discovery_advertises_iss_a_callback_without_it_is_refused_without_a_token_call() {
    let provider = provider_advertising_iss().await;
    let app = provider.app().await;
    let login = provider.begin(&app).await;
    let response = callback(&app, &login).await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(TOKEN_PATH).await, 0);
}

#[rocket::async_test]
async fn b26_when_discovery_advertises_iss_a_callback_with_our_issuer_logs_in() {
    let provider = provider_advertising_iss().await;
    let app = provider.app().await;
    let login = provider.begin(&app).await;
    let answer = json_answer(token_body(
        &key().sign_claims(&provider.id_claims(&login.nonce)),
        &provider.access_token(),
    ));
    Mock::given(method("POST")).and(path(TOKEN_PATH)).respond_with(answer).mount(&provider.server).await;
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "code-1")
        .append_pair("state", &login.state)
        .append_pair("iss", &provider.issuer())
        .finish();
    let response = app.get(format!("/afterauth?{query}")).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(session_of(&app).is_some());
}

#[rocket::async_test]
async fn b65_invalid_grant_gives_the_start_again_page_without_a_retry() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |_| {
            ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_grant", "error_description": "<b>code expired</b>",
            }))
        })
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    let body = response.into_string().await.unwrap();
    assert!(body.contains(REFUSED));
    assert!(body.contains("took too long or was already used"));
    assert!(!body.contains("code expired"), "no provider text on the page");
    assert_eq!(provider.calls(TOKEN_PATH).await, 1, "never retried");
    assert!(session_of(&app).is_none());
}

#[rocket::async_test]
async fn b66_invalid_client_is_provider_trouble() {
    assert_token_answer_unavailable(
        ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})),
    )
    .await;
}

#[rocket::async_test]
async fn b67_an_html_token_answer_is_provider_trouble() {
    assert_token_answer_unavailable(
        ResponseTemplate::new(200).set_body_raw("<html><body>Welcome</body></html>", "text/html"),
    )
    .await;
}

#[rocket::async_test]
async fn b67_an_empty_token_answer_is_provider_trouble() {
    assert_token_answer_unavailable(
        ResponseTemplate::new(200).insert_header("content-type", "application/json"),
    )
    .await;
}

#[rocket::async_test]
async fn b67_a_truncated_json_token_answer_is_provider_trouble() {
    assert_token_answer_unavailable(
        ResponseTemplate::new(200).set_body_raw(r#"{"access_token":"abc","id_tok"#, "application/json"),
    )
    .await;
}

#[rocket::async_test]
async fn b68_a_2_mb_token_answer_is_provider_trouble() {
    let mut body = br#"{"access_token":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    body.extend(br#"","token_type":"Bearer"}"#);
    assert_token_answer_unavailable(ResponseTemplate::new(200).set_body_raw(body, "application/json")).await;
}

#[rocket::async_test]
async fn b69_a_token_endpoint_redirect_is_not_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(json_answer(json!({"access_token": "x", "token_type": "Bearer"})))
        .mount(&elsewhere)
        .await;
    assert_token_answer_unavailable(
        ResponseTemplate::new(302).insert_header("Location", format!("{}/token", elsewhere.uri())),
    )
    .await;
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0, "the other host is never contacted");
}

#[rocket::async_test]
async fn b70_a_token_endpoint_that_hangs_gives_503_within_the_timeout() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let login = provider.begin(&app).await;
    let good = token_body(&key().sign_claims(&provider.id_claims(&login.nonce)), &provider.access_token());
    provider.answer("POST", TOKEN_PATH, json_answer(good).set_delay(Duration::from_secs(5))).await;
    let started = Instant::now();
    let response = callback(&app, &login).await;
    let elapsed = started.elapsed();
    assert_unavailable(&app, response).await;
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}

#[rocket::async_test]
async fn discovery_naming_another_issuer_stops_logins_with_503() {
    let provider = Provider::new().await;
    let mut discovery = provider.discovery();
    discovery["issuer"] = json!("https://evil.example/oauth/v4/tenant-1");
    provider.answer("GET", DISCOVERY_PATH, json_answer(discovery)).await;
    let app = provider.app().await;

    let response = visit(&app, "/auth_route").await;
    assert_unavailable(&app, response).await;
    assert!(app.cookies().get_private("appid_login").is_none());
}

#[rocket::async_test]
async fn discovery_pointing_the_token_endpoint_at_another_host_stops_logins_with_503() {
    let provider = Provider::new().await;
    let elsewhere = MockServer::start().await;
    let mut discovery = provider.discovery();
    discovery["token_endpoint"] = json!(format!("{}/token", elsewhere.uri()));
    provider.answer("GET", DISCOVERY_PATH, json_answer(discovery)).await;
    let app = provider.app().await;

    let response = visit(&app, "/auth_route").await;
    assert_unavailable(&app, response).await;
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
}

#[rocket::async_test]
async fn discovery_down_gives_503_and_the_next_visit_after_recovery_starts_a_login() {
    let provider = Provider::new().await;
    let outage = provider.outage("GET", DISCOVERY_PATH, json_answer(provider.discovery())).await;
    let app = provider.app().await;

    let response = visit(&app, "/auth_route").await;
    assert_unavailable(&app, response).await;

    outage.store(false, Ordering::SeqCst);
    let response = visit(&app, "/auth_route").await;
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with(&format!("{}/authorization?", provider.issuer())));
}

#[rocket::async_test]
async fn b71_jwks_down_at_first_use_gives_503_and_a_later_login_succeeds() {
    let provider = Provider::new().await;
    let outage = provider.outage("GET", JWKS_PATH, json_answer(json!({"keys": [key().jwk()]}))).await;
    let app = provider.app().await;
    let good = |login: &Login| {
        json_answer(token_body(
            &key().sign_claims(&provider.id_claims(&login.nonce)),
            &provider.access_token(),
        ))
    };

    let response = provider.complete_login(&app, good).await;
    assert_unavailable(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);

    outage.store(false, Ordering::SeqCst);
    let response = provider.complete_login(&app, good).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(visit(&app, "/auth_route").await.status(), Status::Ok);
}

/// Logs in against `provider` with good tokens; returns the callback's response.
async fn good_login<'c>(provider: &Provider, app: &'c Client) -> LocalResponse<'c> {
    provider
        .complete_login(app, |login| {
            json_answer(token_body(
                &key().sign_claims(&provider.id_claims(&login.nonce)),
                &provider.access_token(),
            ))
        })
        .await
}

#[rocket::async_test]
async fn b83_a_management_403_is_provider_trouble_not_a_role() {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, ResponseTemplate::new(403)).await;
    let app = provider.app().await;
    let response = good_login(&provider, &app).await;
    assert_unavailable(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 1);
}

#[rocket::async_test]
async fn b84_a_management_json_404_means_no_role_and_the_unauthorized_page() {
    let provider = Provider::new().await;
    let not_found = json!({"errorCode": "NOT_FOUND", "message": "User not found"});
    provider.answer("GET", ROLES_PATH, ResponseTemplate::new(404).set_body_json(not_found)).await;
    let app = provider.app().await;
    let response = good_login(&provider, &app).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/auth_route");

    let page = visit(&app, "/auth_route").await;
    assert_eq!(page.status(), Status::Forbidden);
    assert!(page.headers().get_one("Location").is_none());
    let body = page.into_string().await.unwrap();
    assert!(body.contains("Unauthorized") && body.contains("Pat Tester"));
}

/// Logs in with the roles lookup answering `answer`: the 503 page, one error line naming
/// `reason` and `fix`, and `/ready` naming `reason`.
async fn assert_management_misconfigured(answer: ResponseTemplate, reason: &str, fix: &str) {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, answer).await;
    let app = provider.app().await;
    let (logs, _guard) = capture_logs();
    let response = good_login(&provider, &app).await;
    assert_unavailable(&app, response).await;
    let logged = logs.text();
    let line =
        logged.lines().find(|l| l.contains(reason)).unwrap_or_else(|| panic!("no {reason} line: {logged}"));
    assert!(line.contains("ERROR") && line.contains(fix), "{line}");
    let ready = app.get("/ready").dispatch().await;
    let body: Value = serde_json::from_str(&ready.into_string().await.unwrap()).unwrap();
    assert_eq!(body["configuration_error"], json!(reason), "{body}");
}

/// Issue 19 item 2: a wrong tenant, region or management path answers a plain-text 404
/// (through Cloudflare), which is a configuration error, never "this user has no roles".
#[rocket::async_test]
async fn a_plain_text_management_404_is_a_configuration_error_not_no_role() {
    let not_found = ResponseTemplate::new(404).set_body_raw("Not Found", "text/plain");
    assert_management_misconfigured(not_found, "mgmt_not_found", "APPID_MANAGEMENT_URL").await;
}

/// Issue 19 item 2: a 403 means the API key's identity lacks the Reader role.
#[rocket::async_test]
async fn a_management_403_is_a_configuration_error_naming_the_reader_role() {
    assert_management_misconfigured(ResponseTemplate::new(403), "mgmt_forbidden", "Reader").await;
}

/// Issue 19 item 2: the roles answer is read leniently (App ID's API marks both fields
/// optional): no `roles` member is no role, and entries without a name are skipped.
#[rocket::async_test]
async fn a_roles_answer_without_roles_or_with_nameless_entries_is_read_leniently() {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, json_answer(json!({}))).await;
    let app = provider.app().await;
    assert_eq!(good_login(&provider, &app).await.status(), Status::SeeOther);
    assert_eq!(visit(&app, "/auth_route").await.status(), Status::Forbidden, "no roles member: no role");

    let provider = Provider::new().await;
    let roles = json!({"roles": [{"id": "role-0"}, {"id": "role-1", "name": null}, {"id": "role-2", "name": "user"}]});
    provider.answer("GET", ROLES_PATH, json_answer(roles)).await;
    let app = provider.app().await;
    assert_eq!(good_login(&provider, &app).await.status(), Status::SeeOther);
    let page = visit(&app, "/auth_route").await;
    assert_eq!(page.status(), Status::Ok);
    assert!(page.into_string().await.unwrap().contains(">user<"));
}

#[rocket::async_test]
async fn b82_a_management_401_twice_renews_the_iam_token_once_then_gives_503() {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, ResponseTemplate::new(401)).await;
    let app = provider.app().await;
    let response = good_login(&provider, &app).await;
    assert_unavailable(&app, response).await;
    assert_eq!(provider.calls(IAM_PATH).await, 2, "one token, one renewal");
    assert_eq!(provider.calls(ROLES_PATH).await, 2, "one retry");
}

#[rocket::async_test]
async fn b89_roles_that_are_not_a_list_are_provider_trouble() {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, json_answer(json!({"roles": "x"}))).await;
    let app = provider.app().await;
    let response = good_login(&provider, &app).await;
    assert_unavailable(&app, response).await;
}

#[rocket::async_test]
async fn b48_keys_named_in_the_token_header_are_never_fetched_or_used() {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(json_answer(json!({"keys": [other_key().jwk()]})))
        .mount(&elsewhere)
        .await;
    let jku = format!("{}/jwks.json", elsewhere.uri());
    assert_id_token_refused(|provider, login| {
        let header = json!({
            "alg": "RS256", "typ": "JWT", "ver": 4, "kid": other_key().kid(),
            "jku": jku, "x5u": jku, "jwk": other_key().jwk(),
        });
        other_key().sign(&header, &provider.id_claims(&login.nonce))
    })
    .await;
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
}

#[rocket::async_test]
async fn b72_a_published_encryption_key_or_hmac_secret_never_verifies_a_token() {
    let provider = Provider::new().await;
    let mut encryption = other_key().jwk();
    encryption["kid"] = json!("enc-1");
    encryption["use"] = json!("enc");
    let mut other_alg = other_key().jwk();
    other_alg["kid"] = json!("rs512-1");
    other_alg["alg"] = json!("RS512");
    let secret = json!({"kty": "oct", "kid": "hmac-1", "k": b64("secret")});
    provider
        .answer("GET", JWKS_PATH, json_answer(json!({"keys": [key().jwk(), encryption, other_alg, secret]})))
        .await;
    let app = provider.app().await;
    for kid in ["enc-1", "rs512-1"] {
        let response = provider
            .complete_login(&app, |login| {
                let id = other_key().sign(&header(kid), &provider.id_claims(&login.nonce));
                json_answer(token_body(&id, &provider.access_token()))
            })
            .await;
        assert_sign_in_failed(&app, response).await;
    }
    let response = provider
        .complete_login(&app, |login| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hmac-1", "ver": 4});
            let id = hs256(b"secret", &header, &provider.id_claims(&login.nonce));
            json_answer(token_body(&id, &provider.access_token()))
        })
        .await;
    assert_sign_in_failed(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
}

#[rocket::async_test]
async fn b73_a_jwks_with_25_keys_is_refused_as_provider_trouble() {
    let provider = Provider::new().await;
    let keys: Vec<Value> = (0..25)
        .map(|i| {
            let mut jwk = key().jwk();
            if i > 0 {
                jwk["kid"] = json!(format!("extra-{i}"));
            }
            jwk
        })
        .collect();
    provider.answer("GET", JWKS_PATH, json_answer(json!({ "keys": keys }))).await;
    let app = provider.app().await;
    let response = good_login(&provider, &app).await;
    assert_unavailable(&app, response).await;
}

/// Asserts a login whose roles lookup answers `answer` gives the 503 page.
async fn assert_roles_answer_unavailable(answer: ResponseTemplate) {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, answer).await;
    let app = provider.app().await;
    let response = good_login(&provider, &app).await;
    assert_unavailable(&app, response).await;
    assert_eq!(provider.calls(ROLES_PATH).await, 1, "no retry storm");
}

#[rocket::async_test]
async fn b85_a_management_429_is_provider_trouble() {
    assert_roles_answer_unavailable(ResponseTemplate::new(429).insert_header("Retry-After", "5")).await;
}

#[rocket::async_test]
async fn b86_a_management_500_is_provider_trouble() {
    assert_roles_answer_unavailable(ResponseTemplate::new(500)).await;
}

#[rocket::async_test]
async fn b86_a_management_html_answer_is_provider_trouble() {
    assert_roles_answer_unavailable(
        ResponseTemplate::new(200).set_body_raw("<html>login</html>", "text/html"),
    )
    .await;
}

#[rocket::async_test]
async fn b86_a_management_api_that_hangs_gives_503_within_the_timeout() {
    let started = Instant::now();
    assert_roles_answer_unavailable(
        json_answer(json!({"roles": [{"name": "user"}]})).set_delay(Duration::from_secs(5)),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[rocket::async_test]
async fn b87_an_empty_role_list_gives_the_unauthorized_page() {
    let provider = Provider::new().await;
    provider.answer("GET", ROLES_PATH, json_answer(json!({"roles": []}))).await;
    let app = provider.app().await;
    assert_eq!(good_login(&provider, &app).await.status(), Status::SeeOther);
    let page = visit(&app, "/auth_route").await;
    assert_eq!(page.status(), Status::Forbidden);
    assert!(page.into_string().await.unwrap().contains("Unauthorized"));
}

// --- Repeated JSON keys, algorithm spellings, hostile key ids, dot floods (R-T2, R-T4, R-T11).

/// The key id of [`raw_key`] in the provider's key set.
const RAW_KID: &str = "appId-tenant-1-raw";

/// A provider key that signs exact header and claims *text*: the emulator's key signs JSON
/// values, which cannot hold a repeated key.
struct RawKey {
    pair: aws_lc_rs::rsa::KeyPair,
    jwk: Value,
}

fn raw_key() -> &'static RawKey {
    use aws_lc_rs::signature::KeyPair as _;
    static KEY: OnceLock<RawKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "kid": RAW_KID,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        RawKey { pair, jwk }
    })
}

impl RawKey {
    /// A compact RS256 JWS over exactly these texts.
    fn sign(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature)
            .unwrap();
        format!("{input}.{}", b64(signature))
    }
}

/// App ID's header for the raw key, as text.
fn raw_header() -> String {
    format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{RAW_KID}","ver":4}}"#)
}

/// A login whose id_token is signed by the raw key over the texts `make` returns
/// (header, claims), the provider publishing both keys; asserts a session (`accepted`) or
/// the sign-in page with no token used.
async fn raw_id_token_login(accepted: bool, make: impl FnOnce(&Provider, &Login) -> (String, String)) {
    let provider = Provider::new().await;
    let keys = json!({"keys": [key().jwk(), raw_key().jwk.clone()]});
    provider.answer("GET", JWKS_PATH, json_answer(keys)).await;
    let app = provider.app().await;
    let response = provider
        .complete_login(&app, |login| {
            let (header, claims) = make(&provider, login);
            json_answer(token_body(&raw_key().sign(&header, &claims), &provider.access_token()))
        })
        .await;
    if accepted {
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response), "/auth_route");
        assert!(session_of(&app).is_some());
    } else {
        assert_sign_in_failed(&app, response).await;
        assert_eq!(provider.calls(TOKEN_PATH).await, 1);
        assert_eq!(provider.calls(ROLES_PATH).await, 0, "no token was used");
        assert_eq!(provider.calls(IAM_PATH).await, 0);
    }
}

/// `json` (an object's text) with `member` (`"name":value`) inserted first.
fn with_first_member(json: &str, member: &str) -> String {
    format!("{{{member},{}", &json[1..])
}

#[rocket::async_test]
async fn raw_signed_id_tokens_without_repeated_keys_are_accepted() {
    // The control for the tests below: the raw key and texts make a good token.
    raw_id_token_login(true, |provider, login| (raw_header(), provider.id_claims(&login.nonce).to_string()))
        .await;
}

#[rocket::async_test]
async fn b44_an_id_token_with_two_alg_members_is_refused() {
    raw_id_token_login(false, |provider, login| {
        (with_first_member(&raw_header(), r#""alg":"none""#), provider.id_claims(&login.nonce).to_string())
    })
    .await;
}

#[rocket::async_test]
async fn b44_an_alg_other_than_exactly_rs256_is_refused_even_with_a_good_rs256_signature() {
    for alg in ["rs256", "Rs256", "RS256 ", "RS512", "PS256", "ES256", "HS256"] {
        assert_id_token_refused(|provider, login| {
            let mut header = header(key().kid());
            header["alg"] = json!(alg);
            key().sign(&header, &provider.id_claims(&login.nonce))
        })
        .await;
    }
}

#[rocket::async_test]
async fn b47_an_id_token_with_two_kid_members_is_refused() {
    // A parser that kept the last `kid` would find the raw key and a good signature.
    raw_id_token_login(false, |provider, login| {
        let header = with_first_member(&raw_header(), &format!(r#""kid":"{}""#, key().kid()));
        (header, provider.id_claims(&login.nonce).to_string())
    })
    .await;
}

#[rocket::async_test]
async fn b47_a_repeated_unknown_header_member_is_refused() {
    raw_id_token_login(false, |provider, login| {
        let header =
            with_first_member(&raw_header(), r#""x5u":"https://a.example","x5u":"https://b.example""#);
        (header, provider.id_claims(&login.nonce).to_string())
    })
    .await;
}

#[rocket::async_test]
async fn b47_hostile_key_ids_are_only_map_keys() {
    let provider = Provider::new().await;
    let app = provider.app().await;
    let hostile = [
        "../../../etc/passwd".to_string(),
        "' OR '1'='1".to_string(),
        "https://attacker.example/jwks.json".to_string(),
        "appId-tenant-1\r\nX-Injected: 1".to_string(),
        "%2e%2e%2fpublickeys".to_string(),
        "k".repeat(4000),
    ];
    for kid in &hostile {
        let response = provider
            .complete_login(&app, |login| {
                let id = key().sign(&header(kid), &provider.id_claims(&login.nonce));
                json_answer(token_body(&id, &provider.access_token()))
            })
            .await;
        assert_sign_in_failed(&app, response).await;
    }
    assert_eq!(provider.calls(ROLES_PATH).await, 0);
    assert!(provider.calls(JWKS_PATH).await <= 2, "no fetch per key id");
    let known = [DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH];
    for request in provider.server.received_requests().await.unwrap() {
        assert!(known.contains(&request.url.path()), "unexpected request to {}", request.url);
    }
}

#[rocket::async_test]
async fn b59_an_id_token_made_of_thousands_of_dots_is_refused() {
    assert_id_token_refused(|_, _| ".".repeat(16 * 1024 - 1)).await;
    assert_id_token_refused(|_, _| "a.".repeat(8 * 1024 - 1) + "a").await;
}

#[rocket::async_test]
async fn b59_an_id_token_with_a_repeated_claim_is_refused() {
    // A parser that kept the last `sub` would log in user-1; one that kept the first, someone else.
    raw_id_token_login(false, |provider, login| {
        let claims =
            with_first_member(&provider.id_claims(&login.nonce).to_string(), r#""sub":"someone-else""#);
        (raw_header(), claims)
    })
    .await;
}

#[rocket::async_test]
async fn b59_a_repeated_key_deep_inside_the_claims_is_refused() {
    raw_id_token_login(false, |provider, login| {
        let claims = with_first_member(
            &provider.id_claims(&login.nonce).to_string(),
            r#""ext":{"roles":["a"],"roles":["admin"]}"#,
        );
        (raw_header(), claims)
    })
    .await;
}
