//! The composition root: turns configuration into the app's managed state. At ignite it
//! reads and validates the `appid` settings (every problem at once), applies the session
//! key policy, and manages the App ID client, the app's metrics, the logout token key and
//! the session store; at liftoff it starts the background refresh of the provider's keys.
//! The embedded emulator for `cargo run` is a fairing of its own that runs first
//! ([`EmbeddedEmulator`]), so nothing here knows it exists beyond a marker in state.
//! [`doctor`] checks the same configuration against the live provider without a server.

pub mod doctor;
#[cfg(feature = "emulator")]
mod emulator;
mod session_key;
pub mod store;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Build, Orbit, Rocket};

#[cfg(feature = "emulator")]
pub use emulator::EmbeddedEmulator;

use crate::appid::AppId;
use crate::auth::limits::SignInLimits;
use crate::auth::logout::CsrfKey;
use crate::auth::session::SessionSettings;
use crate::auth::session_cookie::CookieKeys;
use crate::auth::store::SessionStore;
use crate::config::{validate, ConfigProblems, RawSettings};
use crate::metrics::Metrics;

/// Loads and validates App ID configuration at ignite and manages the app's state:
/// [`AppId`], [`Metrics`], [`CsrfKey`], [`SessionSettings`] and the [`SessionStore`] (the
/// one the settings choose, see [`store`], unless the app already manages one).
#[derive(Debug, Default)]
pub struct AppIdFairing;

/// Marks that the embedded development identity provider serves this app.
#[derive(Debug, Clone)]
pub struct EmulatorInUse {
    /// Where it listens.
    pub base_url: String,
}

#[rocket::async_trait]
impl Fairing for AppIdFairing {
    fn info(&self) -> Info {
        Info { name: "App ID configuration", kind: Kind::Ignite | Kind::Liftoff }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> rocket::fairing::Result {
        let raw: RawSettings = match rocket.figment().extract_inner("appid") {
            Ok(raw) => raw,
            Err(e) if e.missing() => RawSettings::default(),
            Err(e) => {
                // figment's message quotes the value (`found string "…"`), which may be a
                // secret: name the variable and the expected type only (R-E6).
                let field = e.path.iter().map(String::as_str).find(|p| *p != "appid").unwrap_or("appid");
                let expected = match &e.kind {
                    rocket::figment::error::Kind::InvalidType(_, expected) => format!("must be {expected}"),
                    _ => "has a value of the wrong type".to_string(),
                };
                tracing::error!("App ID configuration: APPID_{} {expected}", field.to_ascii_uppercase());
                return Err(rocket);
            }
        };
        let mut problems = ConfigProblems::default();
        let embedded = rocket.state::<EmulatorInUse>().is_some();
        let may_be_random_key = embedded && rocket.figment().profile() == "debug";
        let figment = session_key::apply(
            rocket.figment().clone(),
            raw.session_secret_key.as_deref(),
            may_be_random_key,
            &mut problems,
        );
        let store_choice = store::read(rocket.figment(), &mut problems);
        if raw.emulator && raw.oauth_server_url.is_none() && !embedded {
            problems.push("APPID_OAUTH_SERVER_URL", "is missing (this build has no embedded emulator)");
        }
        let config = match validate(&raw) {
            Ok(config) => Some(config),
            Err(more) => {
                problems.0.extend(more.0);
                None
            }
        };
        let Some(config) = config.filter(|_| problems.0.is_empty()) else {
            tracing::error!("{problems}");
            return Err(rocket);
        };
        let metrics = Metrics::new();
        let limits = SignInLimits::new(config.sign_in_per_minute, config.trusted_proxies);
        // A store managed before ignite is used as it is: apps (or instances in tests) that
        // are given one store share their deny-list and renewals.
        let (store, shared_budget) = match rocket.state::<SessionStore>() {
            Some(_) => (None, None),
            None => match store::build(store_choice, &config, &metrics) {
                Ok((store, shared_budget)) => (Some(store), shared_budget),
                Err(error) => {
                    tracing::error!("App ID configuration: APPID_STORE_URL {error}");
                    return Err(rocket);
                }
            },
        };
        let cookie_keys = CookieKeys::from_figment(&figment, config.previous_session_key.as_ref());
        let csrf_key = CsrfKey::from_figment(&figment);
        let session_settings = SessionSettings::of(&config, cookie_keys, Some(csrf_key.clone()));
        let appid = match AppId::sharing_budget(config, metrics.clone(), shared_budget) {
            Ok(appid) => appid,
            Err(_) => {
                tracing::error!("the HTTP client for App ID could not be built (TLS setup failed)");
                return Err(rocket);
            }
        };
        let rocket = rocket
            .configure(figment)
            .manage(appid)
            .manage(metrics)
            .manage(csrf_key)
            .manage(limits)
            .manage(session_settings);
        Ok(match store {
            Some(store) => rocket.manage(store),
            None => rocket,
        })
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let config = rocket.config();
        if let Some(appid) = rocket.state::<AppId>() {
            let origin = appid.config().redirect_uri.origin().ascii_serialization();
            tracing::info!(
                event = "launched",
                "rocket-appid is listening on {}:{}; open {origin}/ in a browser",
                config.address,
                config.port
            );
        }
        if let Some(emulator) = rocket.state::<EmulatorInUse>() {
            tracing::warn!(
                event = "emulator_in_use",
                "signing in through the DEVELOPMENT identity provider at {} (not App ID; never use this in production)",
                emulator.base_url
            );
        }
        if let Some(appid) = rocket.state::<AppId>() {
            rocket::tokio::spawn(appid.clone().keep_fresh(rocket.shutdown()));
        }
    }
}
