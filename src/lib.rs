//! rocket-appid: login (OpenID Connect authorization code flow) and role-based access
//! with IBM Cloud App ID for a Rocket web application.
//!
//! [`rocket()`] builds the app from Rocket.toml and the environment; [`build`] takes
//! any figment (tests use it to point the app at an emulator or a fake provider).
//!
//! # Use it as a library
//!
//! [`protect`] adds login to any Rocket application: the [`AppIdFairing`] (configuration
//! from the `appid` table / `APPID_*` variables, keys, caches), the callback and logout
//! routes, the catchers that send browsers to the login page, and the page templates.
//! Routes then state what they need in their signature:
//!
//! - [`AuthorizedUser`]: logged in with any App ID role;
//! - [`Authorized<R>`]: also meeting `R`: a role ([`role!`], e.g. the built-in [`Admin`]),
//!   a scope ([`scope!`]), or [`AnyOf`] / [`AllOf`] of them;
//! - [`Bearer<R>`]: API clients sending `Authorization: Bearer <access token>`, answered
//!   with JSON 401/403 and `WWW-Authenticate` (RFC 6750), never a redirect.
//!
//! ```no_run
//! use rocket_appid::{scope, Admin, Authorized, AuthorizedUser, Bearer};
//!
//! scope!(pub Write = "write");
//!
//! #[rocket::get("/hello")]
//! fn hello(user: AuthorizedUser) -> String {
//!     format!("Hello, {}", user.name.as_deref().unwrap_or("you"))
//! }
//!
//! #[rocket::get("/admin")]
//! fn admin(user: Authorized<Admin>) -> String {
//!     format!("{} is an admin", user.sub)
//! }
//!
//! #[rocket::post("/api/notes")]
//! fn write_note(caller: Bearer<Write>) -> String {
//!     format!("noted for {}", caller.sub)
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     let audit = rocket_appid::RouteAudit::new()
//!         .route::<AuthorizedUser>("hello")
//!         .route::<Authorized<Admin>>("admin")
//!         .route::<Bearer<Write>>("write_note");
//!     rocket_appid::protect(rocket::custom(rocket_appid::config::figment()))
//!         .attach(rocket_appid::auth_routes_audited(audit))
//!         .mount("/", rocket::routes![hello, admin, write_note])
//! }
//! ```

pub mod appid;
pub mod auth;
mod clock;
pub mod config;
pub mod metrics;
pub mod secret;
pub mod setup;
pub mod web;

use rocket::figment::Figment;
use rocket::fs::FileServer;
use rocket::{Build, Rocket};

pub use auth::audit::{AuditLine, Guarded, RouteAudit};
pub use auth::{Admin, AllOf, AnyOf, AnyRole, Authorized, AuthorizedUser, Bearer, Requirement, Requirements};
pub use setup::AppIdFairing;

/// The app configured from Rocket.toml and the environment.
pub fn rocket() -> Rocket<Build> {
    build(config::figment())
}

/// The app configured from `figment`.
pub fn build(figment: Figment) -> Rocket<Build> {
    let static_dir: String = figment.extract_inner("static_dir").unwrap_or_else(|_| "static".to_string());
    let drain = web::drain::Drain::default();
    protect(rocket::custom(figment))
        .attach(drain.clone())
        .manage(drain)
        .attach(web::headers::SecurityHeaders)
        .attach(web::request_log::RequestLog)
        .attach(route_requirements())
        .mount(
            "/",
            rocket::routes![
                web::pages::index,
                web::pages::auth_route,
                web::pages::admin_route,
                web::pages::api_me,
                web::pages::noauth_route,
                web::pages::health,
                web::pages::ready,
                web::pages::metrics,
            ],
        )
        .mount("/static", FileServer::from(static_dir))
}

/// Adds App ID login to `rocket`: the [`AppIdFairing`], the templates (from the
/// `template_dir` setting), the login callback (`/afterauth`), logout (`POST /logout`,
/// `/signed_out`) and the catchers (401 → login redirect for browsers, JSON for API
/// clients; 403 and error pages). The callback URL must be the configured `redirect_uri`.
pub fn protect(rocket: Rocket<Build>) -> Rocket<Build> {
    let renderer = web::render::Renderer::default();
    // The emulator first: it supplies the provider settings the App ID fairing reads.
    #[cfg(feature = "emulator")]
    let rocket = rocket.attach(setup::EmbeddedEmulator);
    rocket
        .attach(AppIdFairing)
        .attach(auth::session::ResolveSession)
        .attach(renderer.fairing())
        .manage(renderer)
        .mount("/", rocket::routes![web::sign_in::afterauth, web::sign_in::logout, web::sign_in::signed_out])
        .register("/", web::catchers::all())
}

/// `audit` plus the routes [`protect`] mounts, as a fairing that logs the table at liftoff.
pub fn auth_routes_audited(audit: RouteAudit) -> RouteAudit {
    audit.public("afterauth").public("logout").public("signed_out")
}

/// What each of the app's own routes requires (see [`RouteAudit`]): the guard type of
/// each handler. The tests check it against the mounted routes and probe every entry.
pub fn route_requirements() -> RouteAudit {
    auth_routes_audited(RouteAudit::new())
        .public("index")
        .route::<&AuthorizedUser>("auth_route")
        .route::<Authorized<Admin>>("admin_route")
        .route::<Bearer>("api_me")
        .public("noauth_route")
        .public("health")
        .public("ready")
        .route::<web::pages::MetricsAccess>("metrics")
}
