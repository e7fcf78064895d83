//! Tokens and ids as the session record keeps them. Access tokens are JWTs, whose parts
//! are base64url. Ids and digests are base64url too. Kept as their raw bytes, they take a
//! quarter less room in the cookie, and every request carries that cookie. A text that
//! would not come back exactly the same is kept as it is.

use std::borrow::Cow;

use base64_simd::URL_SAFE_NO_PAD as BASE64URL;
use serde::{Deserialize, Serialize};

/// A text, compacted where that is exact.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Compact<'a> {
    /// Not dot-separated base64url: the text itself.
    #[serde(borrow)]
    Text(&'a str),
    /// Dot-separated base64url parts (unpadded, canonical), each as its raw bytes.
    #[serde(borrow)]
    Parts(Vec<Part<'a>>),
}

/// One part's raw bytes (read from the record without a copy).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part<'a>(#[serde(borrow, with = "serde_bytes")] Cow<'a, [u8]>);

impl<'a> Compact<'a> {
    /// `text` compacted, when every part decodes and encodes back to exactly itself.
    pub fn of(text: &'a str) -> Self {
        let parts: Option<Vec<Part<'a>>> = text
            .split('.')
            .map(|part| {
                let raw = BASE64URL.decode_to_vec(part).ok()?;
                (BASE64URL.encode_to_string(&raw) == part).then_some(Part(Cow::Owned(raw)))
            })
            .collect();
        match parts {
            Some(parts) => Compact::Parts(parts),
            None => Compact::Text(text),
        }
    }

    /// The text again.
    pub fn text(&self) -> String {
        match self {
            Compact::Text(text) => text.to_string(),
            Compact::Parts(parts) => {
                let length = parts.iter().map(|part| BASE64URL.encoded_length(part.0.len()) + 1).sum();
                let mut text = String::with_capacity(length);
                for (index, part) in parts.iter().enumerate() {
                    if index > 0 {
                        text.push('.');
                    }
                    BASE64URL.encode_append(&part.0, &mut text);
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> (String, usize) {
        let bytes = postcard::to_allocvec(&Compact::of(text)).unwrap();
        let read: Compact<'_> = postcard::from_bytes(&bytes).unwrap();
        (read.text(), bytes.len())
    }

    #[test]
    fn a_jwt_comes_back_exactly_in_a_quarter_less_room() {
        let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ";
        let (text, bytes) = round_trip(jwt);
        assert_eq!(text, jwt);
        assert!(bytes * 100 < jwt.len() * 80, "{bytes} bytes for {}", jwt.len());
        assert!(matches!(Compact::of(jwt), Compact::Parts(ref parts) if parts.len() == 3));
    }

    #[test]
    fn texts_that_would_not_come_back_the_same_are_kept_as_they_are() {
        for text in ["has space", "padded==", "plus+slash/", "a", "abcde", "é", "a..b", "", "x.y."] {
            let (back, _) = round_trip(text);
            assert_eq!(back, text, "{text:?}");
        }
        // Base64url whose last character carries bits beyond the data is not canonical:
        // "ab" and "aQ" would decode to the same byte.
        assert_eq!(Compact::of("ab"), Compact::Text("ab"));
        assert_eq!(Compact::of("aQ"), Compact::Parts(vec![Part(Cow::Owned(vec![0x69]))]));
    }
}
