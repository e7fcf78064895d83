//! Configuration: raw settings from Rocket's figment (Rocket.toml + environment),
//! validated once into an [`AppIdConfig`] that lists every problem at once.

mod env;
mod limits;
mod problems;
mod secret_key;
mod settings;
mod validate;
mod validated;

pub use env::{figment, variables_for};
pub use limits::{MAX_PENDING_LOGINS, MAX_SESSION_CHUNKS};
pub use problems::{ConfigProblems, Problem};
pub use secret_key::{derive_secret_key, SecretKeyError, SessionKey};
pub use settings::{
    IntrospectionPolicy, ListSetting, PkceMode, ProviderKind, RawSettings, RolesSource, SessionStoreMode,
};
pub use validate::{is_safe_segment, validate};
pub use validated::{AppIdConfig, Timeouts};
