//! Checks of App ID's JWTs (OIDC Core §3.1.3.7 for id_tokens, RFC 8725 for both kinds).
//! Pure functions: the caller supplies the key set and the clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use std::collections::HashSet;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::TokenError;
use super::jwks::KeySet;
use crate::config::is_safe_segment;
use crate::secret::{AccessToken, Nonce};

/// Largest token we look at (RFC 8725 §3.7 resource limits): App ID's custom claims may
/// make a token up to 100 KB. (Whether a session can hold it is the session's own limit,
/// which gives the "session too large" page; a server-side session holds any of them.)
pub const MAX_TOKEN_BYTES: usize = 100 * 1024;
/// An id_token may not be older than this when it arrives (R-T7).
const MAX_ID_TOKEN_AGE_SECS: i64 = 600;

/// What a token must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// Audiences besides `client_id` that are trusted (`trusted_audiences`): an access
    /// token may be for one of them, an id_token may name them besides us.
    pub trusted_audiences: &'a [String],
    /// App ID's tenant id. Empty for a generic OpenID provider (`provider = "oidc"`): then
    /// no `tenant` claim and no `ver` header are required, an access token may be typed
    /// `at+jwt` (RFC 9068), and `sub` need only be printable (it never goes into a URL).
    pub tenant: &'a str,
    pub leeway_secs: u64,
    /// Seconds since the epoch.
    pub now: i64,
}

impl Expected<'_> {
    /// App ID's rules apply (see [`Expected::tenant`]).
    fn is_app_id(&self) -> bool {
        !self.tenant.is_empty()
    }

    /// `aud` is our client id or a trusted audience.
    fn accepts_audience(&self, aud: &str) -> bool {
        aud == self.client_id || self.trusted_audiences.iter().any(|trusted| trusted == aud)
    }
}

/// Whom an id_token must have been issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdTokenFor {
    /// Our own login or refresh: we are an audience, every other one is trusted, and with
    /// several `azp` names us (OIDC Core §3.1.3.7 steps 3-5). It must be fresh.
    Us,
    /// An API caller's, sent after its access token: issued to us or to a trusted client
    /// (`azp`, if any, one of those), of any age up to its expiry.
    ApiCaller,
}

/// Which kind of token is being verified (the `typ` header each may carry differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Id,
    Access,
}

/// The parts of the JOSE header we check before trusting anything else.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    ver: Option<serde_json::Value>,
}

/// Audience: App ID v4 sends an array; a bare string is accepted too.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(all) => all.iter().map(String::as_str).collect(),
        }
    }
}

/// Claims that passed the checks of this module: only its verify functions make one (the
/// field is private, and there is no constructor or `Deserialize`), so a function that takes
/// a `&Verified<IdClaims>` cannot be handed the claims of a token nobody checked. Reading
/// goes through `Deref`.
///
/// ```compile_fail,E0423
/// # use rocket_appid::appid::verify::{IdClaims, Verified};
/// # fn claims() -> IdClaims { unimplemented!() }
/// let forged: Verified<IdClaims> = Verified(claims()); // private field: does not compile
/// ```
///
/// ```compile_fail,E0277
/// # use rocket_appid::appid::verify::{IdClaims, Verified};
/// // Nor can it be read from JSON (say, from a cookie).
/// let forged: Verified<IdClaims> = serde_json::from_str("{}").unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Verified<T>(T);

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Claims of an id_token that the app uses; those of a checked one come as
/// [`Verified<IdClaims>`].
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    /// Role names from the configured roles claim, read from the verified payload when the
    /// roles source reads tokens; empty otherwise.
    #[serde(skip)]
    pub token_roles: Vec<String>,
    /// How the user authenticated (App ID: `cloud_directory`, `google`, ...), for the log
    /// only; kept loose so an odd shape never blocks a login.
    #[serde(default)]
    amr: Option<serde_json::Value>,
    /// Hash of the access token issued with this id_token (optional in the code flow).
    #[serde(default)]
    at_hash: Option<String>,
}

impl Verified<IdClaims> {
    /// OIDC Core §3.1.3.8: when the id_token carries `at_hash`, it must be the base64url
    /// left half of the SHA-256 of the access token it came with (RS256 → SHA-256). Only
    /// a verified id_token's `at_hash` vouches for anything.
    pub fn at_hash_matches(&self, access_token: &AccessToken) -> bool {
        use sha2::{Digest, Sha256};
        let Some(at_hash) = &self.at_hash else { return true };
        let digest = Sha256::digest(access_token.secret().as_bytes());
        let expected = URL_SAFE_NO_PAD.encode(&digest[..16]);
        bool::from(expected.as_bytes().ct_eq(at_hash.as_bytes()))
    }
}

impl Verified<IdClaims> {
    /// True when the id_token gives no name or no e-mail address (blank counts as none).
    pub fn lacks_profile(&self) -> bool {
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
        blank(&self.name) || blank(&self.email)
    }

    /// These claims with the name and e-mail they lack taken from a UserInfo answer about
    /// `sub`. OIDC Core §5.3.2: an answer about another subject must not be used.
    pub fn with_profile(
        mut self,
        sub: &str,
        name: Option<String>,
        email: Option<String>,
    ) -> Result<Self, TokenError> {
        if sub != self.0.sub {
            return Err(TokenError::SubjectMismatch);
        }
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
        if blank(&self.0.name) {
            self.0.name = name;
        }
        if blank(&self.0.email) {
            self.0.email = email;
        }
        Ok(self)
    }
}

#[cfg(test)]
impl Verified<IdClaims> {
    /// Claims for unit tests elsewhere in the crate, which have no signed token at hand.
    pub(crate) fn for_test(sub: &str, name: Option<&str>, email: Option<&str>) -> Self {
        let json =
            serde_json::json!({ "sub": sub, "name": name, "email": email, "exp": 0, "iat": 0, "aud": "c" });
        Verified(serde_json::from_value(json).expect("test claims"))
    }
}

impl IdClaims {
    /// The authentication methods as one log-safe string: short lower-case names only,
    /// anything else left out (the value comes from the provider, not from us).
    pub fn amr_for_log(&self) -> String {
        let Some(serde_json::Value::Array(methods)) = &self.amr else { return String::new() };
        let safe = |m: &&str| m.len() <= 32 && m.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        methods.iter().filter_map(serde_json::Value::as_str).filter(safe).collect::<Vec<_>>().join(",")
    }
}

/// Claims of a verified access token that the app uses.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub exp: i64,
    /// When the token was issued, if it says: with `exp`, its lifetime, which bounds how
    /// early a session renews it (see `auth::renewal`).
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    /// Role names from the configured roles claim (filled in by the client after
    /// verification when the roles source reads tokens; empty otherwise).
    #[serde(skip)]
    pub token_roles: Vec<String>,
    /// The names in `scope`, split once when the claims are made: verified claims are
    /// cached and shared by every request of the token, so no request splits them again.
    #[serde(skip)]
    pub scopes: Arc<[String]>,
}

impl AccessClaims {
    /// With [`Self::scopes`] filled in from `scope`.
    fn with_scopes(mut self) -> Self {
        self.scopes =
            self.scope.as_deref().unwrap_or("").split_ascii_whitespace().map(str::to_string).collect();
        self
    }

    /// Claims vouched for by something other than the token's own signature: an
    /// introspection answer, or (`oidc`, opaque access token, no introspection) the id_token
    /// verified at login. Built through serde so members added later keep their defaults;
    /// `None` if that is impossible.
    pub fn vouched(sub: String, exp: i64, scope: Option<String>, token_roles: Vec<String>) -> Option<Self> {
        let mut claims: AccessClaims =
            serde_json::from_value(serde_json::json!({ "sub": sub, "exp": exp, "scope": scope })).ok()?;
        claims.token_roles = token_roles;
        Some(claims.with_scopes())
    }
}

/// Verifies an id_token: signature, issuer, audience (ours only), tenant, times, nonce,
/// subject. With `roles_claim`, the role names in that claim (see [`roles_in_claims`]) go
/// into `token_roles`.
pub fn verify_id_token(
    token: &str,
    keys: &KeySet,
    expected: &Expected,
    nonce: &Nonce,
    roles_claim: Option<&str>,
) -> Result<Verified<IdClaims>, TokenError> {
    let claims = verify_id_claims(token, keys, expected, roles_claim, IdTokenFor::Us)?;
    // Step 11: the nonce we sent must come back, compared in constant time.
    let sent = claims.nonce.as_deref().ok_or(TokenError::NonceMissing)?;
    if !nonce.matches(sent) {
        return Err(TokenError::NonceMismatch);
    }
    check_subject(&claims.sub, expected)?;
    Ok(Verified(claims))
}

/// Verifies an id_token that came with a refresh (OIDC Core §12.2): the same checks as at
/// login except the nonce (none is sent with a refresh), and it must name the same `sub`.
pub fn verify_refreshed_id_token(
    token: &str,
    keys: &KeySet,
    expected: &Expected,
    sub: &str,
    roles_claim: Option<&str>,
) -> Result<Verified<IdClaims>, TokenError> {
    let claims = verify_id_claims(token, keys, expected, roles_claim, IdTokenFor::Us)?;
    check_subject(&claims.sub, expected)?;
    if claims.sub != sub {
        return Err(TokenError::SubjectMismatch);
    }
    Ok(Verified(claims))
}

/// Verifies the id_token an API client sends after its access token (`Authorization:
/// Bearer <access_token> <id_token>`, as App ID's client SDKs do): the checks of a login
/// except the nonce (the API sent none) and its age (it lives as long as the access
/// token), issued to us or a trusted audience, and naming the access token's `sub`.
pub fn verify_api_id_token(
    token: &str,
    keys: &KeySet,
    expected: &Expected,
    sub: &str,
) -> Result<Verified<IdClaims>, TokenError> {
    let claims = verify_id_claims(token, keys, expected, None, IdTokenFor::ApiCaller)?;
    check_subject(&claims.sub, expected)?;
    if claims.sub != sub {
        return Err(TokenError::SubjectMismatch);
    }
    Ok(Verified(claims))
}

/// The id_token checks shared by login, refresh and API callers (OIDC Core §3.1.3.7
/// steps 2-10).
fn verify_id_claims(
    token: &str,
    keys: &KeySet,
    expected: &Expected,
    roles_claim: Option<&str>,
    issued_to: IdTokenFor,
) -> Result<IdClaims, TokenError> {
    let payload = verify_signed(token, keys, expected, Kind::Id)?;
    let token_roles = roles_claim.map(|path| roles_in_claims(&payload, path)).unwrap_or_default();
    let mut claims: IdClaims = serde_json::from_value(payload).map_err(|_| TokenError::Malformed)?;
    claims.token_roles = token_roles;
    let audiences = claims.aud.values();
    // Step 3: an audience we do not trust is refused (and at login we must be one).
    if audiences.is_empty()
        || !audiences.iter().all(|aud| expected.accepts_audience(aud))
        || (issued_to == IdTokenFor::Us && !audiences.contains(&expected.client_id))
    {
        return Err(TokenError::AudienceMismatch);
    }
    // Steps 4-5: with several audiences `azp` must say which one the token was issued to,
    // and at login that is us.
    let azp_ok = match (claims.azp.as_deref(), issued_to) {
        (None, _) => audiences.len() == 1,
        (Some(azp), IdTokenFor::Us) => azp == expected.client_id,
        (Some(azp), IdTokenFor::ApiCaller) => expected.accepts_audience(azp),
    };
    if !azp_ok {
        return Err(TokenError::AzpMismatch);
    }
    check_tenant(claims.tenant.as_deref(), expected)?;
    // Step 10: iat bounds the age of the token we accept at login.
    let leeway = expected.leeway_secs as i64;
    if claims.iat > expected.now + leeway {
        return Err(TokenError::NotYetValid);
    }
    if issued_to == IdTokenFor::Us && claims.iat < expected.now - MAX_ID_TOKEN_AGE_SECS - leeway {
        return Err(TokenError::TooOld);
    }
    Ok(claims)
}

/// Verifies an access token: signature, issuer, audience contains us, tenant, expiry, subject.
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    expected: &Expected,
    roles_claim: Option<&str>,
) -> Result<AccessClaims, TokenError> {
    let payload = verify_signed(token, keys, expected, Kind::Access)?;
    // Read from the payload that was just verified, never from the token again.
    let token_roles = roles_claim.map(|path| roles_in_claims(&payload, path)).unwrap_or_default();
    let mut claims: AccessClaims = serde_json::from_value(payload).map_err(|_| TokenError::Malformed)?;
    check_tenant(claims.tenant.as_deref(), expected)?;
    check_subject(&claims.sub, expected)?;
    claims.token_roles = token_roles;
    Ok(claims.with_scopes())
}

/// The `kid` a token names, after the shape and header checks (used to decide
/// whether the key set must be fetched again).
pub fn key_id(token: &str) -> Result<Option<String>, TokenError> {
    Ok(header(token)?.kid)
}

fn header(token: &str) -> Result<Header, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    // Exactly three segments of unpadded base64url: a JWE (five) or junk is refused early.
    let segments: Vec<&str> = token.splitn(4, '.').collect();
    if segments.len() != 3 || segments.iter().any(|s| !s.bytes().all(is_base64url)) {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(segments[0]).map_err(|_| TokenError::Malformed)?;
    // RFC 7515 §4: header parameter names must be unique; parsers disagree on which of two
    // `alg`s or `kid`s wins, so a token that has two is refused outright.
    if !has_unique_keys(&bytes) {
        return Err(TokenError::Malformed);
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    // RFC 8725 §3.1: the algorithm is ours to choose, never the token's.
    if header.alg != "RS256" {
        return Err(TokenError::AlgNotAllowed);
    }
    if header.crit.is_some() {
        return Err(TokenError::CritHeader);
    }
    Ok(header)
}

/// True if `json` is one JSON object (R-T11: header and claims are objects) in which no
/// object repeats a key, at any depth. (serde_json keeps the last of repeated keys without
/// a word; serde_json's own nesting limit bounds the recursion.)
fn has_unique_keys(json: &[u8]) -> bool {
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    UniqueKeys.deserialize(&mut deserializer).is_ok() && deserializer.end().is_ok()
}

/// Walks a JSON value and fails on the first object with a repeated key.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Signature (RS256 with the key named by `kid`), `iss`, `aud` contains us, `exp`/`nbf`
/// with leeway; the payload, for the caller's own checks.
fn verify_signed(
    token: &str,
    keys: &KeySet,
    expected: &Expected,
    kind: Kind,
) -> Result<serde_json::Value, TokenError> {
    let header = header(token)?;
    // `JWT`, `JOSE` (App ID's documentation and its v3 tokens) or none; a generic
    // provider's JWT access tokens are `at+jwt` (RFC 9068 §2.1), which an id_token must
    // never be (RFC 9068 §4: no access token passes as an id_token).
    let typ_ok = match header.typ.as_deref() {
        None => true,
        Some(t) if t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("JOSE") => true,
        Some(t) => {
            kind == Kind::Access
                && !expected.is_app_id()
                && (t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"))
        }
    };
    if !typ_ok {
        return Err(TokenError::TypNotAllowed);
    }
    // App ID marks its v4 tokens with a `ver` header; other providers know no such thing.
    if expected.is_app_id() && header.ver.as_ref().is_some_and(|v| v != &serde_json::json!(4)) {
        return Err(TokenError::VersionNotSupported);
    }
    // The same for the claims (RFC 7519 §4): which `sub` or `aud` counts must not depend on
    // the parser. `header` has checked the shape, so the payload is the second segment.
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    if !has_unique_keys(&payload) {
        return Err(TokenError::Malformed);
    }
    let key = keys.find(header.kid.as_deref())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = expected.leeway_secs;
    validation.set_issuer(&[expected.issuer]);
    // At least one audience we accept; the id_token checks say more.
    let mut audiences = vec![expected.client_id];
    audiences.extend(expected.trusted_audiences.iter().map(String::as_str));
    validation.set_audience(&audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    // jsonwebtoken checks exp against the system clock; our own check below uses `now`
    // so that tests and skewed clocks are handled the same way.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidIssuer => TokenError::IssuerMismatch,
            ErrorKind::InvalidAudience => TokenError::AudienceMismatch,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidAlgorithm => TokenError::AlgNotAllowed,
            _ => TokenError::Malformed,
        }
    })?;
    let exp = data.claims.get("exp").and_then(serde_json::Value::as_i64).ok_or(TokenError::Malformed)?;
    if exp + (expected.leeway_secs as i64) < expected.now {
        return Err(TokenError::Expired);
    }
    Ok(data.claims)
}

fn check_tenant(tenant: Option<&str>, expected: &Expected) -> Result<(), TokenError> {
    if !expected.is_app_id() {
        // A generic provider has no tenant claim to check.
        return Ok(());
    }
    match tenant {
        Some(t) if t == expected.tenant => Ok(()),
        _ => Err(TokenError::TenantMismatch),
    }
}

/// With App ID, `sub` becomes a path segment of the management API URL, so it must be
/// plain. A generic provider's `sub` (e.g. `auth0|123`) never goes into a URL; it is shown
/// and logged, so it must be short and free of control characters.
fn check_subject(sub: &str, expected: &Expected) -> Result<(), TokenError> {
    let ok = if expected.is_app_id() {
        is_safe_segment(sub)
    } else {
        !sub.is_empty() && sub.len() <= 255 && !sub.chars().any(char::is_control)
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadSubject)
    }
}

/// Most role names read from one token, and the longest name kept.
const MAX_TOKEN_ROLES: usize = 100;
const MAX_ROLE_NAME: usize = 100;

/// The role names in claim `path` of a verified token's payload or of an introspection
/// answer. `path` names a top-level claim (tried first, as is, so
/// `https://example.com/roles` works) or nested members joined by dots
/// (`realm_access.roles`). The value may be an array of strings or one string; other
/// values, empty or overlong names give no roles rather than an error, so an odd claim
/// means "no role" (403), never a failed login.
pub fn roles_in_claims(claims: &serde_json::Value, path: &str) -> Vec<String> {
    let value = claims.get(path).or_else(|| path.split('.').try_fold(claims, |v, name| v.get(name)));
    let names: Vec<&str> = match value {
        Some(serde_json::Value::String(one)) => vec![one.as_str()],
        Some(serde_json::Value::Array(all)) => all.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut roles: Vec<String> = names
        .into_iter()
        .filter(|n| !n.is_empty() && n.len() <= MAX_ROLE_NAME && !n.chars().any(char::is_control))
        .take(MAX_TOKEN_ROLES)
        .map(str::to_string)
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        assert!(has_unique_keys(br#"{"a":1,"b":[{"c":true,"d":null}],"e":{"f":"g"}}"#));
        assert!(!has_unique_keys(br#"{"sub":"a","sub":"b"}"#));
        assert!(!has_unique_keys(br#"{"a":{"x":1,"x":2}}"#));
        assert!(!has_unique_keys(br#"{"a":[{"x":1,"x":2}]}"#));
        // The same key in sibling objects is fine.
        assert!(has_unique_keys(br#"{"a":[{"x":1},{"x":2}]}"#));
        // Escapes are compared after decoding: "\u0073ub" is "sub".
        assert!(!has_unique_keys(br#"{"sub":"a","\u0073ub":"b"}"#));
        // Junk and trailing data are refused too.
        assert!(!has_unique_keys(br#"{"a":1} {"b":2}"#));
        assert!(!has_unique_keys(b"{"));
    }

    /// B61: a header or payload that is not a UTF-8 JSON object is refused as malformed,
    /// before any key is looked up.
    #[test]
    fn b61_a_header_or_payload_that_is_not_a_utf8_json_object_is_refused() {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let good_header = br#"{"alg":"RS256","typ":"JWT","kid":"k1","ver":4}"#;
        let good_claims = br#"{"sub":"a","iss":"i","aud":["c"],"exp":2000000000,"iat":1}"#;
        let not_objects: [&[u8]; 6] =
            [b"[]", br#""RS256""#, b"42", b"null", b"\xff\xfe{}", b"{\"alg\":\"RS\xff\"}"];
        let keys = KeySet::parse(serde_json::json!({ "keys": [] })).unwrap();
        let expected = Expected {
            issuer: "i",
            client_id: "c",
            trusted_audiences: &[],
            tenant: "t",
            leeway_secs: 60,
            now: 1,
        };
        for bad in not_objects {
            let bad_header = format!("{}.{}.c2ln", b64(bad), b64(good_claims));
            assert_eq!(key_id(&bad_header).unwrap_err(), TokenError::Malformed);
            let bad_claims = format!("{}.{}.c2ln", b64(good_header), b64(bad));
            assert_eq!(
                verify_access_token(&bad_claims, &keys, &expected, None).unwrap_err(),
                TokenError::Malformed
            );
        }
        // The same token with good parts gets as far as the key lookup.
        let good = format!("{}.{}.c2ln", b64(good_header), b64(good_claims));
        assert_eq!(verify_access_token(&good, &keys, &expected, None).unwrap_err(), TokenError::UnknownKid);
    }

    #[test]
    fn roles_are_read_from_a_claim_by_name_or_dotted_path() {
        let claims = serde_json::json!({
            "roles": ["user", "admin", "user", ""],
            "realm_access": { "roles": ["manager"] },
            "https://example.com/roles": "auditor",
            "scope": 42
        });
        assert_eq!(roles_in_claims(&claims, "roles"), vec!["admin", "user"]);
        assert_eq!(roles_in_claims(&claims, "realm_access.roles"), vec!["manager"]);
        assert_eq!(roles_in_claims(&claims, "https://example.com/roles"), vec!["auditor"]);
        assert!(roles_in_claims(&claims, "scope").is_empty());
        assert!(roles_in_claims(&claims, "missing").is_empty());
    }

    #[test]
    fn app_id_header_rules_apply_only_to_app_id() {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let claims = br#"{"sub":"a","iss":"i","aud":["c"],"exp":2000000000,"iat":1}"#;
        let keys = KeySet::parse(serde_json::json!({ "keys": [] })).unwrap();
        let app_id = Expected {
            issuer: "i",
            client_id: "c",
            trusted_audiences: &[],
            tenant: "t",
            leeway_secs: 60,
            now: 1,
        };
        let generic = Expected { tenant: "", ..app_id };
        let token = |header: &[u8]| format!("{}.{}.c2ln", b64(header), b64(claims));
        let at_jwt = token(br#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#);
        let ver3 = token(br#"{"alg":"RS256","typ":"JWT","kid":"k1","ver":3}"#);
        // App ID: neither an at+jwt type nor another version.
        assert_eq!(
            verify_access_token(&at_jwt, &keys, &app_id, None).unwrap_err(),
            TokenError::TypNotAllowed
        );
        assert_eq!(
            verify_access_token(&ver3, &keys, &app_id, None).unwrap_err(),
            TokenError::VersionNotSupported
        );
        // A generic provider: both get as far as the key lookup.
        assert_eq!(verify_access_token(&at_jwt, &keys, &generic, None).unwrap_err(), TokenError::UnknownKid);
        assert_eq!(verify_access_token(&ver3, &keys, &generic, None).unwrap_err(), TokenError::UnknownKid);
        // An access token type never passes as an id_token.
        let nonce = Nonce::new("n".to_string());
        assert_eq!(
            verify_id_token(&at_jwt, &keys, &generic, &nonce, None).unwrap_err(),
            TokenError::TypNotAllowed
        );
    }
}
