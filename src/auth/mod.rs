//! Authentication decisions: login transactions and the login policy, the callback, the
//! session cookie and its store (deny-list, renewals), silent renewal, the guards
//! (`AuthorizedUser`, `Authorized<R>`, `Bearer<R>`), the route audit and logout. Each
//! returns an outcome; `web` turns outcomes into pages and redirects.

pub mod audit;
pub mod bearer;
pub mod callback;
pub mod challenge;
pub mod compact_text;
pub mod cookie_store;
pub mod cookies;
pub mod guard;
pub mod limits;
pub mod login;
pub mod logout;
pub mod renewal;
pub mod require;
pub mod return_to;
pub mod session;
pub mod session_cookie;
pub mod store;
pub mod ticket;

pub use audit::{Guarded, RouteAudit};
pub use bearer::Bearer;
pub use guard::{AuthError, AuthorizedUser, Viewer};
pub use require::{Admin, AllOf, AnyOf, AnyRole, Authorized, Requirement, Requirements};
