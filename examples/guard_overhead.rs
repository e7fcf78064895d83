//! For the load benchmark (`bench/bench.py`): the app exactly as `rocket-appid` serves it,
//! plus the open page once more behind the `AuthorizedUser` guard at
//! `/noauth_route/guarded`. The two routes render the same template with the same header
//! for the same session, so their throughput ratio is what the guard itself costs a real
//! server; `/noauth_route` against `/auth_route` also counts the protected page's larger
//! content. Configured like the app (Rocket.toml and the environment).
use rocket::{get, routes};
use rocket_appid::web::page::Page;
use rocket_appid::AuthorizedUser;

#[get("/noauth_route/guarded")]
fn guarded_open_page(_user: &AuthorizedUser) -> Page {
    rocket_appid::web::pages::noauth_route()
}

#[rocket::launch]
fn rocket() -> _ {
    rocket_appid::rocket().mount("/", routes![guarded_open_page])
}
