//! Token introspection (RFC 7662) at App ID's `/introspect`.

use serde::Deserialize;

use super::discovery::ProviderMetadata;
use super::error::ProviderError;
use super::http::{Auth, Http};
use crate::config::AppIdConfig;

#[derive(Deserialize)]
struct Introspection {
    // Strictly a JSON boolean: "true", 1 or a missing member are malformed (fail closed).
    active: bool,
}

/// Asks the provider whether `token` is still active.
pub async fn is_active(
    http: &Http,
    config: &AppIdConfig,
    metadata: &ProviderMetadata,
    token: &str,
) -> Result<bool, ProviderError> {
    let auth = Auth::Basic(&config.client_id, config.client_secret.expose());
    let answer: Introspection = http
        .post_form("introspect", metadata.introspection_endpoint.as_str(), auth, &[("token", token)], false)
        .await?;
    Ok(answer.active)
}
