//! Security headers on every response (R-H3): CSP without any script, nosniff, frame
//! denial, no referrer, HSTS behind https, and `Cache-Control: no-store` on everything
//! but the static assets.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};

use crate::appid::AppId;
use crate::auth::cookies;

/// Adds the security headers (see the module documentation).
#[derive(Debug, Default)]
pub struct SecurityHeaders;

/// No script at all; styles and images from our origin only; forms post to us only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info { name: "Security headers", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        response.set_raw_header("Content-Security-Policy", CSP);
        response.set_raw_header("Referrer-Policy", "no-referrer");
        // Rocket's Shield sends these too, but it can be switched off by configuration;
        // they are part of our contract (R-H3), so they are set here as well.
        response.set_raw_header("X-Content-Type-Options", "nosniff");
        response.set_raw_header("X-Frame-Options", "DENY");
        // Nothing this app generates may be kept by a shared or browser cache: pages show
        // who is signed in, redirects carry login state, error pages are per request.
        // Only the static assets (no personal data) may be cached.
        if response.headers().get_one("Cache-Control").is_none()
            && !request.uri().path().starts_with("/static/")
        {
            response.set_raw_header("Cache-Control", "no-store");
        }
        let secure = request.rocket().state::<AppId>().is_some_and(|a| a.config().secure_cookies());
        if secure {
            response.set_raw_header("Strict-Transport-Security", "max-age=31536000");
        }
        // The first response after a logout page removes its marker (see cookies::SIGNED_OUT).
        if request.cookies().get(&cookies::name(cookies::SIGNED_OUT, secure)).is_some() {
            response.adjoin_raw_header("Set-Cookie", cookies::signed_out_removal(secure));
        }
    }
}
