//! Integration tests: the app driven through Rocket's local client against the App ID
//! emulator (real HTTP on loopback) or a scripted hostile provider (wiremock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod afterauth_fuzz;
mod api;
mod authz;
mod callback;
mod canary;
mod chunking;
mod common;
mod config;
mod cookies;
mod doctor;
mod faults;
mod guard;
mod headers;
mod hostile_provider;
mod instances;
mod introspection;
mod key_rotation;
mod login_flow;
mod logout;
mod observability;
mod outage;
mod provider_oidc;
mod refresh;
mod return_to;
mod roles_source;
mod server_sessions;
mod session_faults;
mod tabs;
mod timeouts;
