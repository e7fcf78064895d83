//! The web side of authentication: login transactions, the callback, the session
//! cookie, the guards (`AuthorizedUser`, `Authorized<R>`, `Bearer<R>`), the route audit
//! and logout.

pub mod audit;
pub mod bearer;
pub mod callback;
pub mod cookie_store;
pub mod cookies;
pub mod guard;
pub mod login;
pub mod logout;
pub mod require;
pub mod return_to;
pub mod session;

pub use audit::{Guarded, RouteAudit};
pub use bearer::Bearer;
pub use guard::{AuthError, AuthorizedUser, Viewer};
pub use require::{Admin, AllOf, AnyOf, AnyRole, Authorized, Requirement, Requirements};
