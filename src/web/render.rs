//! Renders pages with the Tera instance that `rocket_dyn_templates` loaded, straight from
//! the page's Tera context.
//!
//! Why not `Template::render`: it converts the context into a figment `Value`, and its Tera
//! engine converts that into a Tera context again: two deep copies of every page's data
//! per request, which cost more than the guard itself on the protected page. Here Tera
//! reads the page's own context.
//!
//! The templates are still found, compiled and (in debug) reloaded by the
//! `rocket_dyn_templates` fairing: [`fairing`] keeps a handle to its current Tera.

use std::sync::Arc;

use parking_lot::RwLock;
use rocket::fairing::Fairing;
use rocket::http::ContentType;
use rocket_dyn_templates::tera::{Context, Tera};
use rocket_dyn_templates::Template;

use super::account::AccountBlocks;
use crate::auth::session::Session;

/// The Tera instance of this Rocket's template fairing (managed state), and the header
/// blocks of signed-in sessions rendered with it.
#[derive(Clone, Default)]
pub struct Renderer {
    tera: Arc<RwLock<Option<Arc<Tera>>>>,
    accounts: AccountBlocks,
}

impl Renderer {
    /// The template fairing, wired to keep this renderer up to date. Attach it instead of
    /// `Template::fairing()`, and manage the renderer.
    pub fn fairing(&self) -> impl Fairing {
        let slot = self.tera.clone();
        let accounts = self.accounts.clone();
        // Called at ignite, and again whenever debug mode reloads changed templates.
        Template::custom(move |engines| {
            engines.tera.set_escape_fn(super::escape::escape_html);
            let tera = Arc::new(engines.tera.clone());
            *slot.write() = Some(tera);
            accounts.clear();
        })
    }

    /// Renders `name` (e.g. `"protected"`) with `context`, or `None` when
    /// no templates are loaded or rendering fails (the caller answers 500).
    pub fn render(&self, name: &str, context: &Context) -> Option<(ContentType, String)> {
        let tera = self.tera.read().clone()?;
        match tera.render(name, context) {
            Ok(html) => Some((ContentType::HTML, html)),
            Err(error) => {
                // Tera's error names the template and the missing variable, never data.
                tracing::error!(event = "template_failed", template = name, %error);
                None
            }
        }
    }
}

impl Renderer {
    /// The signed-in part of the header for `session` (`partials/account` with `context`,
    /// which holds who is signed in and the logout token), rendered once per session.
    pub fn account(&self, session: &Session, context: impl FnOnce() -> Context) -> Option<Arc<str>> {
        self.accounts.of(session, || self.render("partials/account", &context()).map(|(_, html)| html))
    }
}
