//! Configuration: raw settings from Rocket's figment (Rocket.toml + environment),
//! validated once into an [`AppIdConfig`] that lists every problem at once.

mod env;
mod secret_key;
mod settings;
mod validate;

pub use env::figment;
pub use secret_key::{derive_secret_key, SecretKeyError, SessionKey};
pub use settings::{IntrospectionPolicy, PkceMode, ProviderKind, RawSettings, RolesSource};
pub use validate::{
    is_safe_segment, validate, AppIdConfig, ConfigProblems, Problem, Timeouts, MAX_PENDING_LOGINS,
    MAX_SESSION_CHUNKS,
};
