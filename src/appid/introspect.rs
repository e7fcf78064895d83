//! Token introspection (RFC 7662) at App ID's `/introspect`.

use serde::Deserialize;

use super::discovery::ProviderMetadata;
use super::error::ProviderError;
use super::http::Http;
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
    // Only an `oidc` provider may lack the endpoint; the caller then does not introspect.
    let endpoint = metadata
        .introspection_endpoint
        .as_ref()
        .ok_or(ProviderError::Untrusted("the provider lists no introspection_endpoint"))?;
    let mut form = vec![("token", token)];
    let auth = super::token::client_auth(config, metadata, &mut form);
    let answer: Introspection = http.post_form("introspect", endpoint.as_str(), auth, &form, false).await?;
    Ok(answer.active)
}
