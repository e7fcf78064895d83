//! Integration tests: the app driven through Rocket's local client against the App ID
//! emulator (real HTTP on loopback) or a scripted hostile provider (wiremock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod afterauth_fuzz;
mod callback;
mod canary;
mod common;
mod config;
mod cookies;
mod faults;
mod guard;
mod headers;
mod hostile_provider;
mod introspection;
mod login_flow;
mod observability;
mod return_to;
mod session_faults;
