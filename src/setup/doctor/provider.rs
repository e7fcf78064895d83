//! The checks against the live provider: discovery, clock, keys, client credentials and
//! the IAM API key, then the tenant's configuration ([`tenant`]).

use super::report::Report;
use super::tenant;
use crate::appid::{AppId, ProviderError};
use crate::secret::RefreshToken;

/// Where App ID's console shows an application's credentials.
const CREDENTIALS_FIX: &str =
    "copy clientId and secret from App ID's console: Applications, your application, \
     View credentials (APPID_CLIENT_ID, APPID_CLIENT_SECRET)";
/// Runs every provider check in order; a check whose prerequisite failed is skipped.
pub(super) async fn check(appid: &AppId, report: &mut Report) {
    let discovered = discovery(appid, report).await;
    clock(appid, report).await;
    if discovered {
        keys(appid, report).await;
        client_credentials(appid, report).await;
        revocation(appid, report).await;
    } else {
        for name in ["signing keys", "client secret", "revocation"] {
            report.skip(name, "needs discovery");
        }
    }
    let config = appid.config();
    if !config.is_app_id() {
        report.skip("management API", "APPID_PROVIDER=oidc: App ID's management API does not apply");
        return;
    }
    if config.api_key.is_none() {
        report.skip(
            "management API",
            "IBM_CLOUD_APIKEY is not set: set it (Reader role) to check the redirect URI and token configuration",
        );
        return;
    }
    let missing = match (api_key(appid, report).await, discovered) {
        (true, true) => None,
        (false, _) => Some("needs an IAM token"),
        (true, false) => Some("needs discovery (its management_endpoint)"),
    };
    if let Some(why) = missing {
        report.skip("management API", why);
        return;
    }
    if tenant::roles_readable(appid, report).await {
        tenant::redirect_uri(appid, report).await;
        tenant::token_configuration(appid, report).await;
        tenant::unknown_user(appid, report).await;
    } else {
        for name in ["redirect URI", "roles in tokens"] {
            report.skip(name, "needs the management API");
        }
    }
}

async fn discovery(appid: &AppId, report: &mut Report) -> bool {
    let configured = appid.config().issuer();
    let url = format!("{configured}/.well-known/openid-configuration");
    match appid.discovery_document().await {
        Ok(doc) if doc.issuer != configured => {
            report.fail(
                "discovery",
                format!("the issuer is {}, not APPID_OAUTH_SERVER_URL {configured}", doc.issuer),
                "set APPID_OAUTH_SERVER_URL to the oAuthServerUrl of the application's credentials, exactly",
            );
            false
        }
        Ok(_) => match appid.metadata().await {
            Ok(_) => {
                report.ok("discovery", format!("{url} answers; its issuer is APPID_OAUTH_SERVER_URL"));
                true
            }
            Err(error) => {
                report.fail(
                    "discovery",
                    format!("the document is refused: {error}"),
                    "every endpoint must be on the issuer's own origin; check APPID_MANAGEMENT_URL",
                );
                false
            }
        },
        Err(ProviderError::Status { status: 404, .. }) => {
            report.fail(
                "discovery",
                format!("{url} answered 404"),
                "the region or tenant id in APPID_OAUTH_SERVER_URL is wrong: copy oAuthServerUrl \
                 from the application's credentials in App ID's console",
            );
            false
        }
        Err(error) => {
            report.fail(
                "discovery",
                format!("{url}: {error}"),
                "check the host in APPID_OAUTH_SERVER_URL, and that this machine reaches it (DNS, proxy, firewall)",
            );
            false
        }
    }
}

async fn clock(appid: &AppId, report: &mut Report) {
    let leeway = appid.config().clock_leeway_secs as i64;
    match appid.provider_time().await {
        Ok(Some(theirs)) => {
            let skew = crate::clock::now() - theirs;
            let text = format!("this machine is {skew:+} s from the provider's Date (leeway {leeway} s)");
            if skew.abs() <= leeway {
                report.ok("clock", text);
            } else {
                report.fail(
                    "clock",
                    text,
                    "synchronise this machine's clock (NTP): tokens would be refused as not yet valid or expired",
                );
            }
        }
        Ok(None) => report.warn("clock", "the provider sent no Date header to compare with"),
        Err(error) => report.skip("clock", format!("no answer to compare with ({error})")),
    }
}

async fn keys(appid: &AppId, report: &mut Report) {
    match appid.refresh_keys().await {
        Ok(0) => report.fail(
            "signing keys",
            "the key set holds no usable RSA signing key (RS256, 2048 bits or more)",
            "APPID_OAUTH_SERVER_URL must be App ID's; a generic provider must publish RSA keys",
        ),
        Ok(count) => report.ok("signing keys", format!("{count} usable RS256 key(s) fetched")),
        Err(error) => report.fail(
            "signing keys",
            format!("the key set could not be read: {error}"),
            "check that jwks_uri of the discovery document answers from this machine",
        ),
    }
}

/// The client credentials, by a code exchange that must fail: a made-up code is refused
/// with `invalid_grant` once the client is authenticated, with `invalid_client` before.
async fn client_credentials(appid: &AppId, report: &mut Report) {
    match appid.exchange_code("doctor-made-up-code", None).await {
        Err(error) if error.is_invalid_grant() => {
            report.ok("client secret", "the token endpoint authenticated APPID_CLIENT_ID with its secret");
            if let ProviderError::Status { status, .. } = error {
                report.info(
                    "token errors",
                    format!(
                        "a refused code is answered HTTP {status} invalid_grant (UNCONFIRMED for App ID \
                         in our notes; the app reads 400 and 401 alike)"
                    ),
                );
            }
        }
        Err(ProviderError::Status { status: 400 | 401, error: Some(code), .. })
            if code == "invalid_client" =>
        {
            report.fail(
                "client secret",
                "the token endpoint refused the client (invalid_client)",
                CREDENTIALS_FIX,
            )
        }
        Err(ProviderError::Status { status: 401, error: None, .. }) => {
            report.fail("client secret", "the token endpoint refused the client (401)", CREDENTIALS_FIX)
        }
        Err(error) => {
            report.warn("client secret", format!("cannot tell, the token endpoint answered: {error}"))
        }
        Ok(_) => report.warn("client secret", "the token endpoint accepted a made-up code"),
    }
}

/// What `/revoke` answers for a token it does not know (logout revokes refresh tokens).
async fn revocation(appid: &AppId, report: &mut Report) {
    match appid.metadata().await.map(|m| m.revocation_endpoint.is_some()) {
        Ok(true) => {}
        _ => return report.skip("revocation", "the provider has no revocation endpoint"),
    }
    let unknown = RefreshToken::new("doctor-made-up-refresh-token".to_string());
    match appid.revoke_refresh_token(&unknown).await {
        Ok(()) => report.info(
            "revocation",
            "an unknown token is answered 2xx, as RFC 7009 says (UNCONFIRMED for App ID in our notes)",
        ),
        Err(error) => report.info(
            "revocation",
            format!("an unknown token is answered {error}; logout logs such answers and completes anyway"),
        ),
    }
}

async fn api_key(appid: &AppId, report: &mut Report) -> bool {
    match appid.check_api_key().await {
        Ok(()) => {
            report.ok("IAM API key", "IAM issued a token for IBM_CLOUD_APIKEY");
            true
        }
        Err(ProviderError::Status { status, .. }) if (400..500).contains(&status) => {
            report.fail(
                "IAM API key",
                format!("IAM refused IBM_CLOUD_APIKEY (HTTP {status})"),
                "create an API key (IBM Cloud console: Manage, Access (IAM), API keys) and set IBM_CLOUD_APIKEY to it",
            );
            false
        }
        Err(error) => {
            report.fail(
                "IAM API key",
                format!("IAM: {error}"),
                "check IBM_CLOUD_IAM_URL and that this machine reaches it",
            );
            false
        }
    }
}
