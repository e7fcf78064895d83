//! Pages, error pages (catchers) and response headers.

pub mod catchers;
pub mod escape;
pub mod headers;
pub mod page;
pub mod pages;
pub mod render;
pub mod request_log;
pub mod when;
