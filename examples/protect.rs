//! Another Rocket app protecting its own routes with rocket-appid as a library.
//! `cargo run --example protect` (debug: signs in through the embedded emulator).
use rocket::figment::Figment;
use rocket::{get, routes, Build, Rocket};
use rocket_appid::{Admin, Authorized, AuthorizedUser};

#[get("/hello")]
fn hello(user: AuthorizedUser) -> String {
    format!("Hello {}, your roles: {}", user.name.as_deref().unwrap_or("you"), user.roles.join(", "))
}

#[get("/admin")]
fn admin(user: Authorized<Admin>) -> String {
    format!("{} may administer this app", user.sub)
}

/// The app for `figment` (a test points it at its own identity provider).
pub fn app(figment: Figment) -> Rocket<Build> {
    rocket_appid::protect(rocket::custom(figment)).mount("/", routes![hello, admin])
}

#[rocket::launch]
fn rocket() -> _ {
    app(rocket_appid::config::figment())
}
