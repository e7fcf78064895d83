//! The crate's error type.

/// Everything that can stop the emulator from being built or started.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// RSA key generation failed inside aws-lc-rs.
    #[error("could not generate the RSA signing key")]
    KeyGeneration,
    /// Rocket failed to ignite or bind (message of the underlying Rocket error).
    #[error("the emulator server could not start: {0}")]
    Launch(String),
    /// The server task ended before it reported liftoff.
    #[error("the emulator server stopped before it was ready")]
    NotStarted,
    /// An environment variable for the standalone binary had an unusable value.
    #[error("invalid configuration: {0}")]
    Config(String),
}
