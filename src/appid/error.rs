//! What can go wrong when talking to the provider or checking its tokens.
//! Messages carry reason codes and endpoint names, never tokens or response bodies.

/// A failed call to one of the provider's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No answer: connection refused, DNS, TLS or timeout.
    #[error("{endpoint}: no answer ({kind})")]
    Unreachable { endpoint: &'static str, kind: &'static str },
    /// A status other than 2xx; `error` is the OAuth `error` code when the body had one.
    #[error("{endpoint}: HTTP {status}{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status { endpoint: &'static str, status: u16, error: Option<String> },
    /// The body was larger than we accept from that endpoint.
    #[error("{endpoint}: response too large")]
    TooLarge { endpoint: &'static str },
    /// The body was not the JSON we expect.
    #[error("{endpoint}: malformed response ({what})")]
    Malformed { endpoint: &'static str, what: &'static str },
    /// A well-formed answer that lacks what the protocol requires for this login
    /// (no id_token, a token type other than Bearer): the login fails, the provider is up.
    #[error("{endpoint}: incomplete answer ({what})")]
    Incomplete { endpoint: &'static str, what: &'static str },
    /// The discovery document names another issuer or points elsewhere.
    #[error("discovery: {0}")]
    Untrusted(&'static str),
}

impl ProviderError {
    /// True when the token endpoint refused the code itself (expired, used, wrong verifier):
    /// the user should simply start again. RFC 6749 §5.2 answers it with 400; IBM's own SDK
    /// test mocks answer App ID's `invalid_grant` with 401, so both count.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, ProviderError::Status { status: 400 | 401, error: Some(e), .. } if e == "invalid_grant")
    }

    /// True when the call was not made because this instance's budget of token-endpoint
    /// calls for this second is spent: the user should try again in a moment.
    pub fn is_over_budget(&self) -> bool {
        matches!(self, ProviderError::Unreachable { kind: "budget", .. })
    }

    /// True when the provider could not be asked: no answer (connection, DNS, TLS,
    /// timeout), 5xx, 429, or our own circuit breaker or call limit refused the call. Not
    /// for an answer we refuse (4xx, malformed): the provider is up and said something.
    /// The last known answer may then be served for the outage window (security.md R-S2).
    pub fn cannot_be_asked(&self) -> bool {
        matches!(
            self,
            ProviderError::Unreachable { .. } | ProviderError::Status { status: 429 | 500..=599, .. }
        )
    }

    /// True when this login cannot complete although the provider answered properly.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, ProviderError::Incomplete { .. })
    }
}

/// Why a token was refused. Each variant has a stable reason code for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token too large")]
    TooLarge,
    #[error("algorithm not allowed")]
    AlgNotAllowed,
    #[error("critical header not understood")]
    CritHeader,
    #[error("token type not allowed")]
    TypNotAllowed,
    #[error("token version not supported")]
    VersionNotSupported,
    #[error("unknown key id")]
    UnknownKid,
    #[error("no key id and several keys")]
    AmbiguousKey,
    #[error("bad signature")]
    BadSignature,
    #[error("issuer mismatch")]
    IssuerMismatch,
    #[error("audience mismatch")]
    AudienceMismatch,
    #[error("authorized party mismatch")]
    AzpMismatch,
    #[error("tenant mismatch")]
    TenantMismatch,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("issued too long ago")]
    TooOld,
    #[error("nonce missing")]
    NonceMissing,
    #[error("nonce mismatch")]
    NonceMismatch,
    #[error("subject missing or unsafe")]
    BadSubject,
    #[error("access and id token subjects differ")]
    SubjectMismatch,
}

impl TokenError {
    /// The reason code written to the security log.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::TooLarge => "token_too_large",
            TokenError::AlgNotAllowed => "alg_not_allowed",
            TokenError::CritHeader => "crit_header",
            TokenError::TypNotAllowed => "typ_not_allowed",
            TokenError::VersionNotSupported => "ver_not_supported",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::AmbiguousKey => "ambiguous_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::IssuerMismatch => "iss_mismatch",
            TokenError::AudienceMismatch => "aud_mismatch",
            TokenError::AzpMismatch => "azp_mismatch",
            TokenError::TenantMismatch => "tenant_mismatch",
            TokenError::Expired => "expired",
            // Issued (or valid from) more than the leeway in our future: App ID's clock and
            // ours disagree (F5); an operator should check NTP.
            TokenError::NotYetValid => "clock_skew_suspected",
            TokenError::TooOld => "iat_too_old",
            TokenError::NonceMissing => "nonce_missing",
            TokenError::NonceMismatch => "nonce_mismatch",
            TokenError::BadSubject => "bad_sub",
            TokenError::SubjectMismatch => "sub_mismatch",
        }
    }
}

/// Verifying a token needs the provider's keys, so it can fail either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token itself is not acceptable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The keys could not be had.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_grant_is_a_refused_grant_with_400_or_401_only() {
        let answer = |status, error: Option<&str>| ProviderError::Status {
            endpoint: "token",
            status,
            error: error.map(str::to_string),
        };
        assert!(answer(400, Some("invalid_grant")).is_invalid_grant());
        assert!(answer(401, Some("invalid_grant")).is_invalid_grant());
        assert!(!answer(401, Some("invalid_client")).is_invalid_grant());
        assert!(!answer(403, Some("invalid_grant")).is_invalid_grant());
        assert!(!answer(401, None).is_invalid_grant());
    }

    #[test]
    fn only_no_answer_5xx_429_and_refused_calls_mean_the_provider_cannot_be_asked() {
        let status = |status| ProviderError::Status { endpoint: "introspect", status, error: None };
        for kind in ["connect", "timeout", "tls", "circuit_open", "overloaded"] {
            assert!(ProviderError::Unreachable { endpoint: "introspect", kind }.cannot_be_asked(), "{kind}");
        }
        for code in [429, 500, 502, 503, 504, 599] {
            assert!(status(code).cannot_be_asked(), "{code}");
        }
        for code in [400, 401, 403, 404, 600] {
            assert!(!status(code).cannot_be_asked(), "{code}");
        }
        assert!(!ProviderError::Malformed { endpoint: "introspect", what: "not JSON" }.cannot_be_asked());
        assert!(!ProviderError::TooLarge { endpoint: "introspect" }.cannot_be_asked());
        assert!(!ProviderError::Untrusted("issuer").cannot_be_asked());
    }
}
