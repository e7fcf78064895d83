//! HTML of the development login page and of the emulator's error pages.

use rocket::http::Status;

use crate::guards::Params;
use crate::reply::Reply;
use crate::state::Emulator;
use crate::util::escape_html as esc;

const STYLE: &str = "body{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}\
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5rem 1rem}\
form{margin:.5rem 0}button{width:100%;text-align:left;padding:.6rem;cursor:pointer}\
.roles{color:#555}";

/// Wraps a body in the common page frame with a clear not-for-production banner.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\
         <p class=\"warn\"><strong>Development identity provider - not for production.</strong> \
         This is the App ID emulator; anyone can sign in as anyone.</p>\
         <h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    )
}

/// A 4xx page that never redirects anywhere.
pub(crate) fn error_page(status: Status, message: &str) -> Reply {
    let body = format!("<p>{}</p>", esc(message));
    Reply::html(status, page("Sign-in request rejected", &body))
}

/// The login page: one form per known user plus one for any e-mail address. Each form posts
/// the original authorization parameters back as hidden inputs.
pub(crate) fn render(emu: &Emulator, p: &Params, redirect_uri: &str) -> Reply {
    let action = format!("/oauth/v4/{}/authorization", emu.config().tenant_id);
    let hidden = hidden_inputs(p, redirect_uri);
    let mut body = String::from("<p>Choose a test user to sign in as.</p>");
    for user in emu.users() {
        let roles = if user.roles.is_empty() {
            "no roles".to_owned()
        } else {
            format!("roles: {}", user.roles.join(", "))
        };
        body.push_str(&format!(
            "<form method=\"post\" action=\"{a}\">{hidden}\
             <input type=\"hidden\" name=\"login_hint\" value=\"{e}\">\
             <button type=\"submit\"><strong>{n}</strong> &lt;{e}&gt; \
             <span class=\"roles\">({r})</span></button></form>",
            a = esc(&action),
            e = esc(&user.email),
            n = esc(&user.name),
            r = esc(&roles),
        ));
    }
    body.push_str(&format!(
        "<h2>Any other user</h2><p>An unknown address signs in a new user without roles.</p>\
         <form method=\"post\" action=\"{a}\">{hidden}\
         <label>E-mail <input type=\"email\" name=\"login_hint\" required></label> \
         <button type=\"submit\" style=\"width:auto\">Sign in</button></form>",
        a = esc(&action),
    ));
    Reply::html(Status::Ok, page("Development identity provider", &body))
}

fn hidden_inputs(p: &Params, redirect_uri: &str) -> String {
    let fields = [
        ("client_id", p.client_id.as_deref()),
        ("response_type", p.response_type.as_deref()),
        ("redirect_uri", Some(redirect_uri)),
        ("scope", p.scope.as_deref()),
        ("state", p.state.as_deref()),
        ("nonce", p.nonce.as_deref()),
        ("code_challenge", p.code_challenge.as_deref()),
        ("code_challenge_method", p.code_challenge_method.as_deref()),
    ];
    fields
        .iter()
        .filter_map(|(name, value)| {
            value.map(|v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", esc(v)))
        })
        .collect()
}
