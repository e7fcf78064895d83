//! Finishing a login at the redirect URI (`GET /afterauth`, mounted by the web layer):
//! checks the transaction, exchanges the code, verifies the tokens, reads the roles,
//! starts the session and says where the user goes next, or why the login is refused.

use rocket::http::CookieJar;

use super::login::{self, LoginState, NoLogin, LOGIN_TTL_SECS};
use super::return_to;
use super::session::{NotStored, Session, SessionSettings};
use super::store::SessionStore;
use crate::appid::{AppId, ProviderError, VerifyError};

/// Longest `code` we pass on (App ID's are far shorter).
const MAX_CODE_LEN: usize = 4096;
/// Longest `state` we compare (ours are 43 characters).
const MAX_STATE_LEN: usize = 512;

/// The callback's query, read strictly: each parameter at most once.
#[derive(Debug, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
    /// App ID's `flow=sign_up|forgot_password`: a Cloud Directory self-service flow ended.
    flow: Option<String>,
}

/// What the user is told about a refused login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The callback does not belong to a login of this browser, or its tokens failed a check.
    Failed,
    /// The provider says the user cancelled or it refused.
    Cancelled,
    /// The login took too long, its code was used, or its transaction no longer opens:
    /// starting again works.
    Expired,
    /// The tokens do not fit in the session cookies.
    SessionTooLarge,
    /// The provider could not be asked.
    Unavailable,
    /// This instance has spent its budget of provider calls for the moment: try again.
    TooMany,
}

/// A refused callback: the reason code for the log and what the user is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub &'static str, pub LoginFailure);

impl CallbackQuery {
    /// Parses the raw query. Rocket would silently take the first of repeated values;
    /// RFC 6749 §3.1 says parameters must not repeat, so repeats are refused.
    fn parse(raw: Option<&str>) -> Result<Self, &'static str> {
        let mut query = CallbackQuery::default();
        // Which names were seen, separately from the values: an empty value counts as
        // absent, yet `code=&code=x` still repeats `code`.
        let mut seen = [false; 5];
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let (index, slot) = match key.as_ref() {
                "code" => (0, &mut query.code),
                "state" => (1, &mut query.state),
                "error" => (2, &mut query.error),
                "iss" => (3, &mut query.iss),
                "flow" => (4, &mut query.flow),
                _ => continue,
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err("duplicate_param");
            }
            // An empty value counts as absent (RFC 6749 §3.1).
            *slot = Some(value.into_owned()).filter(|v| !v.is_empty());
        }
        if query.code.as_ref().is_some_and(|c| c.len() > MAX_CODE_LEN)
            || query.state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN)
        {
            return Err("param_too_long");
        }
        Ok(query)
    }
}

/// Finishes the login that the callback with query `raw_query` answers. Returns where the
/// user goes next (validated: a local path), or the refusal, counted and logged.
pub async fn finish(
    raw_query: Option<&str>,
    jar: &CookieJar<'_>,
    appid: &AppId,
    store: &SessionStore,
    sessions: &SessionSettings,
) -> Result<String, Refusal> {
    let query = CallbackQuery::parse(raw_query);
    let outcome = match query {
        // An error redirect without `state` (whether App ID sends one with errors is not
        // documented) names no login of ours: nothing in it is used, so it need not consume
        // any, and the logins other tabs have in progress stay. The user is told the sign-in
        // was cancelled and may try again.
        Ok(query) if query.error.is_some() && query.state.is_none() && query.code.is_none() => {
            let error = query.error.as_deref().map_or("other", known_error);
            tracing::info!(event = "provider_refused_login", error, state = "absent");
            Err(Refusal("provider_error_without_state", LoginFailure::Cancelled))
        }
        // Otherwise the transaction is consumed whatever happens next: the pending login
        // this callback names by its `state` (other tabs' logins stay), or all of them if it
        // names none.
        query => {
            let state = query.as_ref().ok().and_then(|q| q.state.as_deref());
            let pending = login::take(jar, appid.config(), state);
            complete(query, pending, jar, appid, store, sessions).await
        }
    };
    match outcome {
        Ok(destination) => Ok(return_to::safe_or_root(&destination)),
        Err(refusal) => {
            appid.metrics().login_refused(refusal.0);
            tracing::warn!(event = "login_refused", reason = refusal.0);
            Err(refusal)
        }
    }
}

async fn complete(
    query: Result<CallbackQuery, &'static str>,
    pending: Result<LoginState, NoLogin>,
    jar: &CookieJar<'_>,
    appid: &AppId,
    store: &SessionStore,
    sessions: &SessionSettings,
) -> Result<String, Refusal> {
    let failed = |reason| Refusal(reason, LoginFailure::Failed);
    let query = query.map_err(failed)?;
    // After sign-up or a password reset started from its login page, App ID comes back
    // with `?flow=…` and no code (appid-api.md §2; IBM's SDKs then go to the return path).
    // Nothing is accepted from such a request, so it is not refused either: the user goes
    // back where the login started (validated again by the caller), which starts a new one.
    if query.code.is_none() && query.error.is_none() {
        let flow = ["sign_up", "forgot_password"].into_iter().find(|f| query.flow.as_deref() == Some(*f));
        if let Some(flow) = flow {
            tracing::info!(event = "provider_flow_finished", flow);
            return Ok(pending.map_or_else(|_| "/".to_string(), |login| login.return_to));
        }
    }
    let login = match pending {
        Ok(login) => login,
        Err(NoLogin::Absent) => return Err(failed("no_transaction")),
        // Logins are pending in this browser, but not this one (replayed, forged, or
        // another browser's callback).
        Err(NoLogin::NoMatch) => return Err(failed("state_mismatch")),
        // Most often the key changed while the user was at the provider: "start again"
        // says what to do.
        Err(NoLogin::Unreadable) => {
            return Err(Refusal("transaction_unreadable", LoginFailure::Expired));
        }
    };
    // The state must match before anything the provider sent is believed.
    let state = query.state.as_deref().ok_or(failed("state_missing"))?;
    if !login.state.matches(state) {
        return Err(failed("state_mismatch"));
    }
    if let Some(error) = &query.error {
        tracing::info!(event = "provider_refused_login", error = known_error(error));
        return Err(Refusal("provider_error", LoginFailure::Cancelled));
    }
    if crate::clock::now() - login.created_at > LOGIN_TTL_SECS {
        return Err(Refusal("transaction_expired", LoginFailure::Expired));
    }
    // RFC 9207: if the provider names itself, it must be ours.
    if query.iss.as_deref().is_some_and(|iss| iss != appid.config().issuer()) {
        return Err(failed("iss_mismatch"));
    }
    // RFC 9207 §2.4: a provider that advertises `iss` on authorization responses always
    // sends it, so one without it did not come from that provider. (When discovery is
    // unreachable the code exchange below fails anyway.)
    if query.iss.is_none() && appid.metadata().await.is_ok_and(|m| m.iss_parameter_required) {
        return Err(failed("iss_missing"));
    }
    let code = query.code.as_deref().ok_or(failed("code_missing"))?;

    let tokens = appid.exchange_code(code, login.verifier.as_ref()).await.map_err(|e| {
        if e.is_over_budget() {
            Refusal("token_budget", LoginFailure::TooMany)
        } else if e.is_invalid_grant() {
            Refusal("invalid_grant", LoginFailure::Expired)
        } else if e.is_incomplete() {
            tracing::warn!(event = "token_response_refused", %e);
            failed("token_response_incomplete")
        } else {
            unavailable(e)
        }
    })?;
    // OIDC Core §3.1.3.7 and RFC 9700 §4.5.3.2: no token is used before the id_token,
    // with our nonce, has been verified.
    let id = appid
        .verify_id_token(tokens.id_token.expose(), &login.nonce)
        .await
        .map_err(|e| verify_refusal(e, "id_token"))?;
    let access = appid
        .verify_login_access_token(&tokens.access_token, &id, tokens.expires_in)
        .await
        .map_err(|e| verify_refusal(e, "access_token"))?;
    if access.sub != id.sub {
        return Err(failed("sub_mismatch"));
    }
    if !id.at_hash_matches(&tokens.access_token) {
        return Err(failed("at_hash_mismatch"));
    }
    // A provider may release the name and e-mail at its UserInfo endpoint only.
    let id = appid.with_userinfo(id, &tokens.access_token).await;
    // By the configured source (management API, token claims or both); remembered, so the
    // first protected page needs no further call.
    let roles = appid.login_roles(&id, &access).await.map_err(unavailable)?;

    let config = appid.config();
    let expires_at = access.exp.min(crate::clock::now() + config.session_max_age_secs as i64);
    let role_count = roles.len();
    let mut session = Session::new(&id, tokens.access_token, expires_at);
    if let Some(refresh_token) = tokens.refresh_token {
        session = session.with_refresh_token(refresh_token, config.session_max_age_secs);
    }
    // A new session replaces whatever this browser had (no fixation), in as many cookies
    // as it needs up to the configured ceiling (App ID custom claims make large tokens).
    let chunks = session.write_new(jar, store, sessions).await.map_err(|why| match why {
        NotStored::TooLarge => Refusal("session_too_large", LoginFailure::SessionTooLarge),
        NotStored::StoreUnavailable => {
            tracing::warn!(event = "session_not_stored", reason = "store_unavailable");
            Refusal("store_unavailable", LoginFailure::Unavailable)
        }
    })?;
    if chunks > 1 {
        tracing::info!(event = "session_chunked", cookies = chunks);
    }
    appid.metrics().login_succeeded();
    tracing::info!(event = "login_success", sub = %id.sub, amr = %id.amr_for_log(), roles = role_count);
    Ok(login.return_to)
}

/// A provider's `error` code for the log: one of the codes we know, else `other` (the value
/// comes from the query string, so it is never logged as sent).
fn known_error(error: &str) -> &'static str {
    ["access_denied", "login_required", "consent_required", "server_error", "temporarily_unavailable"]
        .into_iter()
        .find(|known| *known == error)
        .unwrap_or("other")
}

fn unavailable(error: ProviderError) -> Refusal {
    tracing::warn!(event = "provider_unavailable", %error);
    Refusal("provider_unavailable", LoginFailure::Unavailable)
}

fn verify_refusal(error: VerifyError, which: &'static str) -> Refusal {
    match error {
        VerifyError::Token(error) => {
            // An id_token straight from the token endpoint was issued moments ago: if it is
            // already past `exp` (beyond the leeway), App ID's clock and ours disagree (F5).
            let reason = match (which, error) {
                ("id_token", crate::appid::TokenError::Expired) => "clock_skew_suspected",
                _ => error.reason(),
            };
            tracing::warn!(event = "token_refused", token = which, reason);
            Refusal(reason, LoginFailure::Failed)
        }
        VerifyError::Provider(error) => unavailable(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(CallbackQuery::parse(Some("code=a&state=b&state=c")).unwrap_err(), "duplicate_param");
        assert_eq!(CallbackQuery::parse(Some("code=a&code=b&state=c")).unwrap_err(), "duplicate_param");
        // An empty value is absent, but its name still counts.
        assert_eq!(CallbackQuery::parse(Some("code=&state=s&code=b")).unwrap_err(), "duplicate_param");
        assert_eq!(CallbackQuery::parse(Some("code=a&state=&state=s")).unwrap_err(), "duplicate_param");
        assert_eq!(CallbackQuery::parse(Some("code=a&state=s&iss&iss=x")).unwrap_err(), "duplicate_param");
    }

    #[test]
    fn app_ids_flow_parameter_is_read_once() {
        assert_eq!(CallbackQuery::parse(Some("flow=sign_up")).unwrap().flow.as_deref(), Some("sign_up"));
        assert_eq!(CallbackQuery::parse(Some("flow=sign_up&flow=x")).unwrap_err(), "duplicate_param");
    }

    #[test]
    fn empty_values_count_as_absent() {
        let q = CallbackQuery::parse(Some("code=&state=s")).unwrap();
        assert!(q.code.is_none());
        assert_eq!(q.state.as_deref(), Some("s"));
    }

    #[test]
    fn overlong_values_are_refused() {
        let long = format!("code={}&state=s", "a".repeat(MAX_CODE_LEN + 1));
        assert_eq!(CallbackQuery::parse(Some(&long)).unwrap_err(), "param_too_long");
    }
}
