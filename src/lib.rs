//! rocket-appid: login (OpenID Connect authorization code flow) and role-based access
//! with IBM Cloud App ID for a Rocket web application.
//!
//! [`rocket()`] builds the app from Rocket.toml and the environment; [`build`] takes
//! any figment (tests use it to point the app at an emulator or a fake provider).

pub mod appid;
pub mod auth;
mod clock;
pub mod config;
pub mod metrics;
pub mod secret;
pub mod web;

use rocket::figment::Figment;
use rocket::fs::FileServer;
use rocket::{Build, Rocket};

pub use appid::fairing::AppIdFairing;
pub use auth::AuthorizedUser;

/// The app configured from Rocket.toml and the environment.
pub fn rocket() -> Rocket<Build> {
    build(config::figment())
}

/// The app configured from `figment`.
pub fn build(figment: Figment) -> Rocket<Build> {
    let static_dir: String = figment.extract_inner("static_dir").unwrap_or_else(|_| "static".to_string());
    let renderer = web::render::Renderer::default();
    rocket::custom(figment)
        .attach(AppIdFairing)
        .attach(renderer.fairing())
        .manage(renderer)
        .attach(web::headers::SecurityHeaders)
        .attach(web::request_log::RequestLog)
        .mount(
            "/",
            rocket::routes![
                web::pages::index,
                web::pages::auth_route,
                web::pages::noauth_route,
                web::pages::health,
                web::pages::ready,
                web::pages::metrics,
                auth::callback::afterauth,
                auth::logout::logout,
            ],
        )
        .mount("/static", FileServer::from(static_dir))
        .register("/", web::catchers::all())
}
