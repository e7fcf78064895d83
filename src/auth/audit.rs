//! The launch-time route audit: one log line per mounted route with what it requires
//! (`public`, `any role`, `role admin`, `scope x`, `bearer any role`, …).
//!
//! Rocket does not expose a route's guard types, so the table pairs each handler's name
//! with the guard *type* it declares; the requirement text comes from that type
//! ([`Guarded`]), never from a hand-written string. Two checks keep the table honest:
//! a mounted route missing from it is logged as `UNDECLARED` (and the app's test suite
//! fails on any), and the tests request every declared route as an anonymous user and as
//! a user without the named role, so a route that silently lost its guard fails CI.
//!
//! ```
//! use rocket_appid::{Authorized, AuthorizedUser, Admin, RouteAudit};
//!
//! let audit = RouteAudit::new()
//!     .public("home")
//!     .route::<AuthorizedUser>("profile")
//!     .route::<Authorized<Admin>>("settings");
//! assert_eq!(audit.requirement("settings").as_deref(), Some("role admin"));
//! ```

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Orbit, Rocket, Route};

use super::bearer::Bearer;
use super::guard::AuthorizedUser;
use super::require::{Authorized, Requirement};

/// A guard type whose requirement the audit can name.
pub trait Guarded {
    /// What the guard requires, as the audit shows it.
    fn requirement() -> String;
}

impl Guarded for AuthorizedUser {
    fn requirement() -> String {
        "any role".to_string()
    }
}

impl Guarded for &AuthorizedUser {
    fn requirement() -> String {
        AuthorizedUser::requirement()
    }
}

impl<R: Requirement> Guarded for Authorized<R> {
    fn requirement() -> String {
        R::description()
    }
}

impl<R: Requirement> Guarded for Bearer<R> {
    fn requirement() -> String {
        format!("bearer {}", R::description())
    }
}

/// One mounted route and what it requires (`None`: not declared in the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub method: String,
    pub uri: String,
    pub handler: String,
    pub requirement: Option<String>,
}

impl std::fmt::Display for AuditLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let requirement = self.requirement.as_deref().unwrap_or("UNDECLARED");
        write!(f, "{} {} -> {requirement}", self.method, self.uri)
    }
}

/// The requirement of each route handler, by handler (function) name. Attach it as a
/// fairing to log the table at liftoff.
#[derive(Debug, Clone, Default)]
pub struct RouteAudit {
    entries: Vec<(&'static str, String)>,
}

impl RouteAudit {
    /// An empty table.
    pub fn new() -> Self {
        RouteAudit::default()
    }

    /// The handler named `handler` declares the guard `G`.
    pub fn route<G: Guarded>(mut self, handler: &'static str) -> Self {
        self.entries.push((handler, G::requirement()));
        self
    }

    /// The handler named `handler` has no authorization guard.
    pub fn public(mut self, handler: &'static str) -> Self {
        self.entries.push((handler, "public".to_string()));
        self
    }

    /// What the table says `handler` requires.
    pub fn requirement(&self, handler: &str) -> Option<String> {
        self.entries.iter().find(|(name, _)| *name == handler).map(|(_, r)| r.clone())
    }

    /// The audit of `routes`, in their order. Static file servers are public.
    pub fn table<'a>(&self, routes: impl Iterator<Item = &'a Route>) -> Vec<AuditLine> {
        routes
            .map(|route| {
                let handler = route.name.as_deref().unwrap_or("").to_string();
                let requirement = if handler.starts_with("FileServer:") {
                    Some("public".to_string())
                } else {
                    self.requirement(&handler)
                };
                AuditLine {
                    method: route.method.to_string(),
                    uri: route.uri.to_string(),
                    handler,
                    requirement,
                }
            })
            .collect()
    }
}

#[rocket::async_trait]
impl Fairing for RouteAudit {
    fn info(&self) -> Info {
        Info { name: "Route audit", kind: Kind::Liftoff }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        for line in self.table(rocket.routes()) {
            match &line.requirement {
                Some(requirement) => tracing::info!(
                    event = "route_requirement",
                    method = %line.method,
                    uri = %line.uri,
                    requirement = %requirement,
                    "{line}"
                ),
                None => tracing::warn!(
                    event = "route_requirement",
                    method = %line.method,
                    uri = %line.uri,
                    handler = %line.handler,
                    requirement = "UNDECLARED",
                    "{line} (handler `{}` is missing from the route audit table)",
                    line.handler
                ),
            }
        }
    }
}
