//! The web side of authentication: login transactions, the callback, the session
//! cookie, the `AuthorizedUser` guard and logout.

pub mod callback;
pub mod cookies;
pub mod guard;
pub mod login;
pub mod logout;
pub mod return_to;
pub mod session;

pub use guard::{AuthError, AuthorizedUser, Viewer};
