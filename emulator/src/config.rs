//! Emulator configuration, test users and role definitions.

use std::net::{IpAddr, Ipv4Addr};

use crate::util;

/// Tenant id used when none is configured (UUID-shaped, fixed so URLs are predictable).
pub const DEFAULT_TENANT_ID: &str = "8794b41b-4705-4381-a96e-46dfabf3f249";
/// Client id used when none is configured (UUID-shaped, fixed).
pub const DEFAULT_CLIENT_ID: &str = "d12e3375-fee1-4b35-95cd-df03ee2013d6";

/// Everything that shapes one emulator instance. Build with struct update syntax over
/// `EmulatorConfig::default()` so new fields do not break callers.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// App ID tenant id (appears in every URL and in the `tenant` claim).
    pub tenant_id: String,
    /// The one registered application's client id.
    pub client_id: String,
    /// That application's secret (random per `EmulatorConfig::default()` call).
    pub client_secret: String,
    /// Exact-match allow-list for `redirect_uri`; empty = any http/https URL whose host is
    /// loopback (127.0.0.1, localhost, [::1]).
    pub redirect_uris: Vec<String>,
    /// IBM Cloud API key accepted by the IAM token endpoint (random by default).
    pub api_key: String,
    /// The API key's identity holds the Reader service role on the instance (default). Off:
    /// IAM still issues tokens, and every management call answers 403.
    pub api_key_reader: bool,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: u64,
    /// ID-token lifetime in seconds.
    pub id_token_ttl: u64,
    /// Issue refresh tokens (App ID's default token configuration has them off).
    pub refresh_tokens: bool,
    /// Lifetime of refresh tokens in seconds (App ID default: 30 days).
    pub refresh_token_ttl: u64,
    /// Whether a refresh token stays usable after it was exchanged for a new one. App ID
    /// rotates refresh tokens on every use; whether the previous one keeps working is not
    /// documented, so both behaviours can be tested. Default: refused after use.
    pub refresh_token_reuse: bool,
    /// Send a new refresh token with every refresh, as App ID does (default). Off: the
    /// refresh answer carries none and the presented token stays valid, as RFC 6749 §6
    /// allows and some OpenID providers do.
    pub refresh_token_rotation: bool,
    /// Emulate Cloud Directory single sign-on: after a login the browser gets an SSO cookie
    /// and the next authorization request signs the same user in without asking, until
    /// `/cloud_directory/sso/logout` ends that session. Off by default, as in App ID.
    pub sso: bool,
    /// List an OIDC RP-Initiated Logout `end_session_endpoint` in discovery (App ID lists
    /// none): for testing clients against providers that have one. It ends the same SSO
    /// session as `/cloud_directory/sso/logout`.
    pub end_session_endpoint: bool,
    /// List `introspection_endpoint` (and `revocation_endpoint`) in discovery (App ID lists
    /// neither; clients derive the paths): for testing clients that, like a generic OpenID
    /// client, use only what discovery lists.
    pub introspection_listed: bool,
    /// Allow-list for the `redirect_uri` of `/cloud_directory/sso/logout` (App ID's SSO
    /// `logoutRedirectUris`); empty = the same rule as `redirect_uris`.
    pub logout_redirect_uris: Vec<String>,
    /// Advertise `code_challenge_methods_supported: ["S256"]` in discovery. Off by default,
    /// as App ID's discovery for web apps lists none: a client that sends PKCE only where
    /// it is advertised then takes production's path. A PKCE challenge sent anyway is still
    /// checked at the token endpoint.
    pub pkce_advertised: bool,
    /// Add a `roles` claim (role names) to access and ID tokens, like a token config mapping
    /// `{"source":"roles"}`.
    pub roles_claim: bool,
    /// The HTTP status of an `invalid_grant` answer from the token endpoint: 400 (RFC 6749
    /// §5.2) or 401, as IBM's own SDK test mocks answer; App ID's real status is not known.
    pub invalid_grant_status: u16,
    /// Put the profile claims (`name`, `given_name`, `family_name`, `email`) into id_tokens.
    /// Off: they come from `/userinfo` only, as with OpenID providers that release profile
    /// claims there.
    pub id_token_profile: bool,
    /// The Cloud Directory users offered on the login page.
    pub users: Vec<TestUser>,
    /// Roles of the tenant and the scopes each grants to this application.
    pub roles: Vec<RoleDef>,
    /// Address to bind.
    pub address: IpAddr,
    /// Port to bind; 0 picks an ephemeral port.
    pub port: u16,
    /// Base URL to publish (issuer, discovery) instead of `http://{address}:{port}`, e.g. when
    /// the emulator sits behind a proxy or in a container. No trailing slash.
    pub public_base_url: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: util::random_token(32),
            redirect_uris: Vec::new(),
            api_key: util::random_token(32),
            api_key_reader: true,
            access_token_ttl: 3600,
            id_token_ttl: 3600,
            refresh_tokens: false,
            refresh_token_ttl: 2_592_000,
            refresh_token_reuse: false,
            refresh_token_rotation: true,
            sso: false,
            logout_redirect_uris: Vec::new(),
            end_session_endpoint: false,
            introspection_listed: false,
            pkce_advertised: false,
            roles_claim: false,
            invalid_grant_status: 400,
            id_token_profile: true,
            users: test_users(),
            roles: vec![RoleDef::new("user", &["read"]), RoleDef::new("admin", &["read", "write", "manage"])],
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            public_base_url: None,
        }
    }
}

/// A Cloud Directory user that can sign in on the emulator's login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// App ID profile id (the token `sub`).
    pub sub: String,
    /// Display name; split at the first space into given and family name.
    pub name: String,
    /// E-mail address (also the login hint).
    pub email: String,
    /// Names of the roles assigned to the user.
    pub roles: Vec<String>,
}

impl TestUser {
    /// A user with the given fields; `roles` are role names.
    pub fn new(sub: &str, name: &str, email: &str, roles: &[&str]) -> Self {
        TestUser {
            sub: sub.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    /// A user created on the fly for an unknown e-mail: no roles, and a sub derived from the
    /// e-mail so the same address always maps to the same profile.
    pub fn from_email(email: &str) -> Self {
        let local = email.split('@').next().unwrap_or(email);
        TestUser {
            sub: util::uuid_from(&format!("sub:{}", email.to_ascii_lowercase())),
            name: local.to_owned(),
            email: email.to_owned(),
            roles: Vec::new(),
        }
    }

    /// The Cloud Directory identity id (distinct from the profile id `sub`, as in App ID).
    pub fn identity_id(&self) -> String {
        util::uuid_from(&format!("cloud_directory:{}", self.sub))
    }

    /// Given name: the part of `name` before the first space.
    pub fn given_name(&self) -> &str {
        self.name.split_once(' ').map_or(&self.name, |(g, _)| g)
    }

    /// Family name: the part of `name` after the first space (empty if none).
    pub fn family_name(&self) -> &str {
        self.name.split_once(' ').map_or("", |(_, f)| f)
    }
}

/// A role of the tenant and the bare scope names it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDef {
    /// Role name (what the management API and the `roles` claim show).
    pub name: String,
    /// Scope names added to the access token's `scope` for holders of the role.
    pub scopes: Vec<String>,
    /// The application the role's access is for (`GET /roles` lists it under `access`);
    /// `None`: the configured client. App ID's roles are tenant-wide: a role for another
    /// application is still among a user's roles, but grants this client no scopes.
    pub application_id: Option<String>,
}

impl RoleDef {
    /// A role with the given name and scopes for the configured client.
    pub fn new(name: &str, scopes: &[&str]) -> Self {
        RoleDef {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            application_id: None,
        }
    }

    /// The same role, with access for application `client_id` instead.
    pub fn for_application(mut self, client_id: &str) -> Self {
        self.application_id = Some(client_id.to_owned());
        self
    }

    /// Stable role id (UUID-shaped, derived from the name) as the management API reports it.
    pub fn id(&self) -> String {
        role_id(&self.name)
    }
}

/// Stable id for a role name, also used for role names that have no `RoleDef`.
pub fn role_id(name: &str) -> String {
    util::uuid_from(&format!("role:{name}"))
}

/// The default users: Alice (user), Bob (no roles), Carol (user, admin).
pub fn test_users() -> Vec<TestUser> {
    vec![
        TestUser::new(
            "a1ce0000-0000-4000-8000-000000000001",
            "Alice Example",
            "alice@example.com",
            &["user"],
        ),
        TestUser::new("b0b00000-0000-4000-8000-000000000002", "Bob Example", "bob@example.com", &[]),
        TestUser::new(
            "ca201000-0000-4000-8000-000000000003",
            "Carol Example",
            "carol@example.com",
            &["user", "admin"],
        ),
    ]
}
