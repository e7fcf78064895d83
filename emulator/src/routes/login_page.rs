//! HTML of the development login page and of the emulator's error pages.

use rocket::http::Status;

use crate::guards::Params;
use crate::reply::Reply;
use crate::state::Emulator;
use crate::util::escape_html as esc;

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;\
line-height:1.5;color:#161616;background:#e8ecf2}\
.dev{background:#fcf4d6;border-bottom:3px solid #b28600;padding:.6rem 1rem;text-align:center;font-size:.95rem}\
.dev strong{text-transform:uppercase;letter-spacing:.03em}\
main{max-width:28rem;margin:2rem auto;padding:0 1rem}\
.box{background:#fff;border:1px solid #d0d4da;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.08);padding:1.75rem}\
.idp{display:flex;align-items:center;gap:.6rem;margin:0 0 1.25rem;font-weight:700;color:#393939}\
.mark{width:2rem;height:2rem;border-radius:50%;background:#8e6a00;color:#fff;display:inline-flex;\
align-items:center;justify-content:center;font-size:.9rem}\
.tag{margin-left:auto;font-size:.75rem;font-weight:700;border:1px solid #8e6a00;color:#684e00;\
border-radius:1rem;padding:.05rem .6rem}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .5rem}\
h2{font-size:1rem;margin:1.5rem 0 .5rem}\
p{margin:0 0 1rem}.muted{color:#525252;font-size:.9rem}\
.users{list-style:none;margin:0;padding:0}.users li{margin:0 0 .6rem}.users form{margin:0}\
.user{display:flex;align-items:center;gap:.85rem;width:100%;text-align:left;font:inherit;color:inherit;\
background:#fff;border:1px solid #c6c6c6;border-radius:6px;padding:.7rem .85rem;cursor:pointer}\
.user:hover{border-color:#0f62fe;background:#f3f7ff}\
.avatar{flex:none;width:2.5rem;height:2.5rem;border-radius:50%;background:#0f62fe;color:#fff;font-weight:700;\
display:inline-flex;align-items:center;justify-content:center}\
.who{display:flex;flex-direction:column;min-width:0}.name{font-weight:600}\
.email{color:#525252;font-size:.9rem;overflow-wrap:anywhere}\
.chips{display:flex;flex-wrap:wrap;gap:.3rem;margin-top:.25rem}\
.chip{font-size:.8rem;font-weight:600;border-radius:1rem;padding:0 .55rem;background:#d0e2ff;color:#002d9c}\
.chip.none{background:#e0e0e0;color:#393939}\
.or{display:flex;align-items:center;gap:.75rem;color:#525252;font-size:.9rem;margin:1.25rem 0 .25rem}\
.or::before,.or::after{content:'';flex:1;border-top:1px solid #d0d4da}\
label{display:block;font-weight:600;margin:0 0 .3rem}\
input[type=email]{display:block;width:100%;font:inherit;padding:.6rem .7rem;border:1px solid #8d8d8d;\
border-radius:4px;margin:0 0 .75rem}\
.primary{display:block;width:100%;font:inherit;font-weight:600;color:#fff;background:#0f62fe;\
border:2px solid #0f62fe;border-radius:4px;padding:.6rem 1rem;cursor:pointer}\
.primary:hover{background:#0043ce;border-color:#0043ce}\
:focus-visible{outline:3px solid #0f62fe;outline-offset:2px}\
code{overflow-wrap:anywhere}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
footer{max-width:28rem;margin:0 auto 2rem;padding:0 1rem;color:#525252;font-size:.85rem;text-align:center}";

/// Wraps a body in the common page frame with a clear not-for-production banner.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} - development identity provider</title><style>{STYLE}</style></head><body>\
         <header class=\"dev\"><strong>Development identity provider - not for production.</strong> \
         This is the App ID emulator; anyone can sign in as anyone.</header>\
         <main><div class=\"box\">\
         <p class=\"idp\"><span class=\"mark\" aria-hidden=\"true\">ID</span>App ID emulator\
         <span class=\"tag\">DEV</span></p>\
         <h1>{t}</h1>{body}</div></main>\
         <footer>Emulates IBM Cloud App ID for local development and tests. \
         Real users never see this page.</footer></body></html>",
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
    let mut body = format!(
        "<p>Development identity provider: choose a test user to sign in as. \
         You are then sent back to <code>{}</code>.</p><ul class=\"users\">",
        esc(redirect_uri)
    );
    for user in emu.users() {
        let chips = if user.roles.is_empty() {
            "<span class=\"chip none\">no roles</span>".to_owned()
        } else {
            let chips: String =
                user.roles.iter().map(|r| format!("<span class=\"chip\">{}</span>", esc(r))).collect();
            format!("<span class=\"sr\">roles: </span>{chips}")
        };
        let initial: String =
            user.name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
        body.push_str(&format!(
            "<li><form method=\"post\" action=\"{a}\">{hidden}\
             <input type=\"hidden\" name=\"login_hint\" value=\"{e}\">\
             <button type=\"submit\" class=\"user\"><span class=\"sr\">Sign in as </span>\
             <span class=\"avatar\" aria-hidden=\"true\">{i}</span>\
             <span class=\"who\"><span class=\"name\">{n}</span><span class=\"email\">{e}</span>\
             <span class=\"chips\">{chips}</span></span></button></form></li>",
            a = esc(&action),
            e = esc(&user.email),
            n = esc(&user.name),
            i = esc(&initial),
        ));
    }
    body.push_str(&format!(
        "</ul><p class=\"or\">or</p><h2>Any other user</h2>\
         <p class=\"muted\">An unknown address signs in a new user without roles.</p>\
         <form method=\"post\" action=\"{a}\">{hidden}\
         <label for=\"login_hint\">E-mail address</label>\
         <input type=\"email\" id=\"login_hint\" name=\"login_hint\" autocomplete=\"email\" \
         placeholder=\"name@example.com\" required>\
         <button type=\"submit\" class=\"primary\">Sign in</button></form>",
        a = esc(&action),
    ));
    Reply::html(Status::Ok, page("Sign in", &body))
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
