//! Builds and signs the access and ID tokens App ID would issue, and checks presented ones.

use serde_json::{json, Map, Value};

use crate::config::TestUser;
use crate::state::{Emulator, RefreshGrant};
use crate::util;

/// Scopes App ID puts in every user access token.
pub(crate) const DEFAULT_SCOPES: [&str; 6] = [
    "openid",
    "appid_default",
    "appid_readprofile",
    "appid_readuserattr",
    "appid_writeuserattr",
    "appid_authenticated",
];

/// A token response's content before it becomes JSON.
pub(crate) struct Issued {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub scope: String,
}

impl Issued {
    /// The token endpoint's success body.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(id) = &self.id_token {
            body["id_token"] = json!(id);
        }
        if let Some(rt) = &self.refresh_token {
            body["refresh_token"] = json!(rt);
        }
        body
    }
}

/// The default scopes plus the bare scope names of the user's roles for this client,
/// without duplicates. (Whether App ID adds the scopes of roles for other applications is
/// not known; the emulator leaves them out.)
pub(crate) fn user_scope(emu: &Emulator, user: &TestUser) -> String {
    let mut scopes: Vec<&str> = DEFAULT_SCOPES.to_vec();
    let cfg = emu.config();
    let ours = |r: &&crate::config::RoleDef| r.application_id.as_ref().is_none_or(|id| *id == cfg.client_id);
    for role in cfg.roles.iter().filter(ours).filter(|r| user.roles.contains(&r.name)) {
        for s in &role.scopes {
            if !scopes.contains(&s.as_str()) {
                scopes.push(s);
            }
        }
    }
    scopes.join(" ")
}

/// Access + ID token (and a refresh token when enabled) for a signed-in user.
pub(crate) fn issue_for_user(
    emu: &Emulator,
    user: &TestUser,
    client_id: &str,
    nonce: Option<&str>,
) -> Issued {
    let cfg = emu.config();
    let key = emu.signing_key();
    let iss = emu.oauth_server_url();
    let iat = emu.now();
    let access_ttl = emu.access_token_ttl();
    let scope = user_scope(emu, user);
    let roles = json!(user.roles);

    let mut access = json!({
        "iss": iss, "exp": add(iat, access_ttl), "iat": iat, "aud": [client_id],
        "sub": user.sub, "amr": ["cloud_directory"], "tenant": cfg.tenant_id,
        "scope": scope, "email_verified": true,
    });
    // App ID's id tokens always live as long as its access tokens; a runtime change of the
    // access lifetime applies to both unless the configuration set them apart.
    let id_ttl = if cfg.id_token_ttl == cfg.access_token_ttl { access_ttl } else { cfg.id_token_ttl };
    let mut id = json!({
        "iss": iss, "aud": [client_id], "exp": add(iat, id_ttl), "iat": iat,
        "tenant": cfg.tenant_id, "sub": user.sub,
        "identities": [{"provider": "cloud_directory", "id": user.identity_id()}],
        "amr": ["cloud_directory"],
    });
    if cfg.id_token_profile {
        id["name"] = json!(user.name);
        id["given_name"] = json!(user.given_name());
        id["family_name"] = json!(user.family_name());
        id["email"] = json!(user.email);
        id["email_verified"] = json!(true);
    }
    if let Some(n) = nonce {
        id["nonce"] = json!(n);
    }
    if cfg.roles_claim {
        access["roles"] = roles.clone();
        id["roles"] = roles;
    }
    let refresh_token = emu.refresh_tokens().then(|| {
        let rt = util::random_token(32);
        let now = emu.now();
        let mut store = emu.store();
        // Expired grants are dropped here so the map stays small in long-running emulators.
        store.refresh.retain(|_, g| g.expires_at > now);
        store.refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: client_id.to_owned(),
                sub: user.sub.clone(),
                expires_at: add(now, emu.refresh_token_ttl()),
            },
        );
        rt
    });
    Issued {
        access_token: key.sign_claims(&access),
        id_token: Some(key.sign_claims(&id)),
        refresh_token,
        expires_in: access_ttl,
        scope,
    }
}

/// An application's own access token (client_credentials): no ID or refresh token, and
/// `amr: ["appid_client_credentials"]` as in App ID's app-to-app tokens.
pub(crate) fn issue_for_client(emu: &Emulator, client_id: &str) -> Issued {
    let iat = emu.now();
    let ttl = emu.access_token_ttl();
    let scope = "appid_default".to_owned();
    let claims = json!({
        "iss": emu.oauth_server_url(), "exp": add(iat, ttl), "iat": iat, "aud": [client_id],
        "sub": client_id, "amr": ["appid_client_credentials"], "tenant": emu.config().tenant_id,
        "scope": scope,
    });
    Issued {
        access_token: emu.signing_key().sign_claims(&claims),
        id_token: None,
        refresh_token: None,
        expires_in: ttl,
        scope,
    }
}

/// Claims of a token this emulator issued with its current key, if it is unexpired on the
/// emulator clock, not revoked and carries our issuer.
pub(crate) fn active_claims(emu: &Emulator, token: &str) -> Option<Map<String, Value>> {
    let claims = emu.signing_key().verify(token)?;
    let claims = claims.as_object()?.clone();
    let exp = claims.get("exp")?.as_i64()?;
    let iss = claims.get("iss")?.as_str()?;
    if exp <= emu.now() || iss != emu.oauth_server_url() {
        return None;
    }
    if emu.store().revoked.contains(&util::fingerprint(token)) {
        return None;
    }
    Some(claims)
}

fn add(t: i64, secs: u64) -> i64 {
    t.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}
