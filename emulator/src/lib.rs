//! A development identity provider that speaks IBM Cloud App ID's HTTP API: OAuth 2.0 /
//! OpenID Connect endpoints under `/oauth/v4/{tenant}`, an IAM API-key token endpoint and the
//! management role lookups, so an App ID app can run and be tested offline.
//!
//! Start one with [`spawn`]; drive it with the [`Emulator`] handle; forge tokens with
//! [`jwt::SigningKey`]. Not for production: anyone can sign in as anyone.

#![warn(missing_docs)]

mod config;
mod env_config;
mod error;
mod fault;
mod guards;
pub mod jwt;
mod reply;
mod routes;
mod server;
mod state;
mod tokens;
mod util;

pub use config::{
    role_id, test_users, EmulatorConfig, RoleDef, TestUser, DEFAULT_CLIENT_ID, DEFAULT_TENANT_ID,
};
pub use env_config::DEFAULT_STANDALONE_PORT;
pub use error::EmulatorError;
pub use fault::Fault;
pub use server::{rocket, run_standalone, spawn, RunningEmulator};
pub use state::{Emulator, Endpoint};
