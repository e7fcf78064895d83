//! Strings that never show themselves in logs or `Debug` output: [`Secret`] for
//! configuration secrets, and one type per protocol value (after openidconnect-rs's
//! `new_secret_type!`), so that a nonce cannot be passed where a state is expected and a
//! token cannot reach a log line through `{:?}`.

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret value (client secret, API key, token): `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Declares a protocol value type: a `String` inside, `Debug` that names the type but not
/// the value, no `Display`, and serde as the bare string (`#[serde(transparent)]`) so that
/// cookies written when these fields were plain strings still open.
macro_rules! new_secret_type {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: String) -> Self {
                $name(value)
            }

            /// The value itself, for the one place that must send or hash it.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Whether `other` is this value, compared in constant time (the value is
            /// secret, so the time taken must not say how much of it matched).
            pub fn matches(&self, other: &str) -> bool {
                bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

new_secret_type!(
    /// The `state` of a login (OAuth 2.0 CSRF protection), kept in the login cookie.
    State
);
new_secret_type!(
    /// The `nonce` of a login (OIDC Core §3.1.2.1), which the id_token must carry back.
    Nonce
);
new_secret_type!(
    /// The PKCE code verifier of a login (RFC 7636), sent only with the code exchange.
    PkceVerifier
);
new_secret_type!(
    /// An access token (a bearer credential): in the session cookie and sent to the provider.
    AccessToken
);
new_secret_type!(
    /// A refresh token: in the session cookie, sent only to the token and revocation endpoints.
    RefreshToken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn protocol_values_debug_shows_no_value() {
        let canary = || "CANARY-value".to_string();
        let debug = [
            format!("{:?}", State::new(canary())),
            format!("{:?}", Nonce::new(canary())),
            format!("{:?}", PkceVerifier::new(canary())),
            format!("{:?}", AccessToken::new(canary())),
            format!("{:?}", RefreshToken::new(canary())),
        ];
        for (debug, name) in
            debug.iter().zip(["State", "Nonce", "PkceVerifier", "AccessToken", "RefreshToken"])
        {
            assert_eq!(debug, &format!("{name}([redacted])"));
        }
        // Inside a derived `Debug` too (the login transaction, a token response).
        assert!(!format!("{:?}", Some(vec![AccessToken::new(canary())])).contains("CANARY"));
    }

    #[test]
    fn protocol_values_are_plain_strings_in_json() {
        let token: RefreshToken = serde_json::from_str(r#""rt-1""#).unwrap();
        assert_eq!(token.secret(), "rt-1");
        assert_eq!(serde_json::to_string(&token).unwrap(), r#""rt-1""#);
    }

    #[test]
    fn matches_compares_the_whole_value() {
        let state = State::new("abc".to_string());
        assert!(state.matches("abc"));
        assert!(!state.matches("ab") && !state.matches("abcd") && !state.matches(""));
    }
}
