//! Security headers on every response (Rocket's Shield adds nosniff, frame options
//! and permissions policy; this adds the rest).

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};

use crate::appid::AppId;
use crate::auth::cookies;

/// Adds Content-Security-Policy, Referrer-Policy and, behind https, HSTS.
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
