//! Integration tests: the app driven through Rocket's local client against the App ID
//! emulator (real HTTP on loopback) or a scripted hostile provider (wiremock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod callback;
mod common;
mod config;
mod guard;
mod hostile_provider;
mod login_flow;
mod observability;
