//! Pages, error pages (catchers), the sign-in and sign-out routes, and response headers:
//! everything the user sees. `auth` decides; this module renders.

pub mod account;
pub mod catchers;
pub mod drain;
pub mod escape;
pub mod headers;
pub mod page;
pub mod pages;
pub mod render;
pub mod request_log;
pub mod sign_in;
pub mod when;
