//! Where the user goes after login: only a path on this app, never another host.
//!
//! One validator, [`is_safe`], serves every entry point: the 401 catcher stores
//! [`from_request`]'s result in the login transaction, and the callback passes the stored
//! value through [`safe_or_root`] again and puts exactly the string it returns in
//! `Location` (security.md R-X1..R-X5). It is strict on purpose: anything odd becomes `/`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use rocket::http::uri::Origin;

/// Longest return path we keep (longer ones become `/`).
pub const MAX_LEN: usize = 2048;

/// Characters encoded again when a decoded path segment is put back into a URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'\'');

/// Routes that must never be a login's destination (they would loop).
const NEVER: &[&str] = &["/afterauth", "/logout"];

/// The return path for a request: Rocket's decoded, non-empty path segments, each encoded
/// again (so `//evil.example` becomes `/evil.example`), plus the query, then validated.
pub fn from_request(uri: &Origin<'_>) -> String {
    let mut path = String::new();
    for segment in uri.path().segments() {
        path.push('/');
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(query) = uri.query() {
        path.push('?');
        path.push_str(query.as_str());
    }
    safe_or_root(&path)
}

/// `candidate` if it is a safe local path, otherwise `/`.
pub fn safe_or_root(candidate: &str) -> String {
    if is_safe(candidate) {
        candidate.to_string()
    } else {
        "/".to_string()
    }
}

/// True when `candidate` can only ever mean a path on this app's origin.
pub fn is_safe(candidate: &str) -> bool {
    if candidate.is_empty() || candidate.len() > MAX_LEN || !candidate.is_ascii() {
        return false;
    }
    // Visible ASCII only, no backslash (browsers read `\` as `/`), nothing raw in the query.
    if candidate.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
        return false;
    }
    let (path, _query) = candidate.split_once('?').unwrap_or((candidate, ""));
    // Decode until stable (double and triple encoding), checking every layer.
    let mut layer = path.to_string();
    for _ in 0..4 {
        if !is_plain_local_path(&layer) {
            return false;
        }
        let decoded = percent_decode_str(&layer).decode_utf8_lossy().into_owned();
        if decoded == layer {
            // `/afterauth/` and `/logout//` reach the same routes: compare without them.
            let route = layer.trim_end_matches('/');
            return !NEVER.iter().any(|never| route.eq_ignore_ascii_case(never));
        }
        layer = decoded;
    }
    false
}

/// One layer of the path: starts with `/`; no backslash (browsers read it as `/`); no
/// control character; no `/`, whitespace, `/` run (`//`, `/ /`, `/\t/` all become `//host`
/// in some parser, oauth2-proxy GHSA-j7px-6hwj-hpjg); no `.` or `..` segment; beyond
/// ASCII only letters and digits (look-alikes such as `／` U+FF0F, `＼`, `。` U+3002 and
/// invisible format characters are punctuation, symbols or controls: a normalising
/// parser could turn them into `/`, `\` or `.`).
fn is_plain_local_path(path: &str) -> bool {
    if !path.starts_with('/')
        || path.contains('\\')
        || path.chars().any(|c| c.is_control() || (!c.is_ascii() && !c.is_alphanumeric()))
    {
        return false;
    }
    let chars: Vec<char> = path.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '/' && chars[i + 1..].iter().find(|c| !c.is_whitespace()) == Some(&'/') {
            return false;
        }
    }
    path[1..].split('/').all(|segment| !matches!(segment.trim(), "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_and_queries_are_kept() {
        for ok in [
            "/",
            "/auth_route",
            "/auth_route?next=https://evil.example",
            "/a/b%20c?x=1&y=%2F",
            "/caf%C3%A9/%E6%97%A5%E6%9C%AC",
        ] {
            assert!(is_safe(ok), "{ok}");
        }
    }

    #[test]
    fn paths_that_could_leave_the_origin_become_root() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\evil.example",
            "https://evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%252F%252Fevil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%0d/evil.example",
            "/%0b/evil.example",
            "/%20/evil.example",
            "/./evil",
            "/../evil",
            "/%2e%2e/evil",
            "/a/../b",
            "evil.example",
            "",
            "/afterauth",
            "/logout",
            "/AfterAuth",
            "/%61fterauth",
            "/\t/evil.example",
            "/x\u{7f}",
            "/%EF%BC%8Fevil.example",
            "/%EF%BC%BCevil.example",
            "/evil%E3%80%82example",
            "/%E2%80%AEelpmaxe.live",
            "/%FF",
            "/afterauth/",
            "/logout?x=1",
        ] {
            assert!(!is_safe(bad), "{bad:?}");
            assert_eq!(safe_or_root(bad), "/");
        }
        assert!(!is_safe(&format!("/{}", "a".repeat(MAX_LEN))));
    }

    #[test]
    fn request_paths_are_rebuilt_from_their_segments() {
        let uri = Origin::parse("//evil.example/x?y=1").unwrap();
        assert_eq!(from_request(&uri), "/evil.example/x?y=1");
        let uri = Origin::parse("//auth_route").unwrap();
        assert_eq!(from_request(&uri), "/auth_route");
        let uri = Origin::parse("/a%2F%2Fb").unwrap();
        // an encoded `//` decodes to an empty segment: refused rather than guessed at
        assert_eq!(from_request(&uri), "/");
    }
}
