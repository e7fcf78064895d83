//! Private cookies that stay within what browsers keep, and that survive a key rotation:
//! the login transaction's cookie, and the session cookies older versions wrote (read so
//! that an upgrade signs nobody out; the session's own format is `session_cookie`).
//!
//! Browsers keep a cookie of at most 4096 bytes (RFC 6265 §6.1, name + value + attributes)
//! and silently drop a larger one, which loops the login. Older versions split a value that
//! would not fit in one cookie across numbered cookies (`appid_session`, `appid_session.1`,
//! …, with the `__Host-` prefix over https), as oauth2-proxy does.
//!
//! Every such chunk is sealed on its own by Rocket's private jar (AES-256-GCM with the
//! cookie's name as associated data, so a chunk cannot move to another index), and starts
//! with a header naming a random id of the write it belongs to, its index and the chunk
//! count. Chunks combine only when every one opens and all name the same write, index and
//! count: a chunk of another session, of an earlier write of this one, or a missing chunk
//! gives no value at all.

use rocket::http::{Cookie, CookieJar};

use super::cookies;
use crate::config::SessionKey;

/// Most chunks there can ever be (the bound of `session_max_chunks`): also how far stale
/// chunks are looked for.
pub const HARD_MAX_CHUNKS: usize = crate::config::MAX_SESSION_CHUNKS;
/// Budget of `name=value` of one cookie as estimated by [`sealed_size`] (which allows for
/// percent-encoding). Leaves over 190 bytes of the 4096 for the attributes (`Path`,
/// `Max-Age`, `Expires`, `HttpOnly`, `Secure`, `SameSite`: about 95 bytes).
pub const MAX_COOKIE_BYTES: usize = 3900;
/// Starts a chunk's plaintext; a single-cookie value is JSON and starts with `{`.
const CHUNK_MARK: &str = "~c1.";
/// Random bytes of the id shared by the chunks of one write.
#[cfg(test)]
const WRITE_ID_BYTES: usize = 12;

/// How values are stored and read.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Over https: `Secure` and the `__Host-` prefix.
    pub secure: bool,
    /// Most chunks one value may take.
    pub max_chunks: usize,
    /// The session key before the last rotation, still accepted for reading.
    pub previous_key: Option<SessionKey>,
}

impl StoreSettings {
    /// Settings for re-writing a value that was accepted before (its size was checked then):
    /// every chunk count up to the hard maximum, no previous key.
    pub fn rewrite(secure: bool) -> Self {
        StoreSettings { secure, max_chunks: HARD_MAX_CHUNKS, previous_key: None }
    }
}

/// What the cookies named after one base name hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// No such cookie.
    Absent,
    /// Present but unusable, with the reason code for the log: `undecryptable` (another
    /// key, forged, tampered, moved) or `chunks_mismatch` (chunks missing, or not of one write).
    Unreadable(&'static str),
    /// The plaintext; `with_previous_key` when it opened only with the previous key.
    Value { plaintext: String, with_previous_key: bool },
}

/// The value is too large for `max_chunks` cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The name of chunk `index` (0 is the base name itself, so a value that fits in one
/// cookie is stored exactly as before chunking existed).
pub fn chunk_name(base: &str, index: usize, secure: bool) -> String {
    let name = cookies::name(base, secure);
    if index == 0 {
        name
    } else {
        format!("{name}.{index}")
    }
}

/// Bytes of `name=value` once sealed: base64 of nonce (12) + plaintext + tag (16), plus
/// the percent-encoding of `/` and `=` in the header. A random base64 string has 1/64 of
/// `/` (3 bytes once encoded): about 3 % more; we allow 1/16, more than 7 standard
/// deviations above the mean for a 3,600-character value.
pub fn sealed_size(name: &str, plaintext: usize) -> usize {
    let base64 = (plaintext + 28).div_ceil(3) * 4;
    name.len() + 1 + base64 + base64 / 16
}

/// True if `plaintext` sealed under `name` stays within [`MAX_COOKIE_BYTES`].
pub fn fits(name: &str, plaintext: &str) -> bool {
    sealed_size(name, plaintext.len()) <= MAX_COOKIE_BYTES
}

/// Opens the private cookie `name` with the current key, else with the previous one.
/// `None` if it is absent; `Some(None)` if it opens with neither.
pub fn open_one(
    jar: &CookieJar<'_>,
    name: &str,
    previous: Option<&SessionKey>,
) -> Option<Option<(String, bool)>> {
    let sealed = jar.get(name)?;
    if let Some(cookie) = jar.get_private(name) {
        return Some(Some((cookie.value().to_string(), false)));
    }
    Some(previous.and_then(|key| key.open(sealed)).map(|plaintext| (plaintext, true)))
}

/// Reads the value stored under `base`, joining its chunks.
pub fn read(jar: &CookieJar<'_>, base: &str, settings: &StoreSettings) -> Opened {
    let first = chunk_name(base, 0, settings.secure);
    let (plaintext, with_previous_key) = match open_one(jar, &first, settings.previous_key.as_ref()) {
        None => return Opened::Absent,
        Some(None) => return Opened::Unreadable("undecryptable"),
        Some(Some(opened)) => opened,
    };
    let Some(rest) = plaintext.strip_prefix(CHUNK_MARK) else {
        return Opened::Value { plaintext, with_previous_key };
    };
    let Some((write_id, 0, count, piece)) = parse_chunk(rest) else {
        return Opened::Unreadable("chunks_mismatch");
    };
    if !(2..=HARD_MAX_CHUNKS).contains(&count) {
        return Opened::Unreadable("chunks_mismatch");
    }
    let mut value = piece.to_string();
    // Every chunk must open with the key that opened the first one.
    let key = if with_previous_key { settings.previous_key.as_ref() } else { None };
    for index in 1..count {
        let name = chunk_name(base, index, settings.secure);
        let plaintext = match (jar.get(&name), key) {
            (None, _) => None,
            (Some(_), None) => jar.get_private(&name).map(|c| c.value().to_string()),
            (Some(sealed), Some(key)) => key.open(sealed),
        };
        let Some(plaintext) = plaintext else {
            return Opened::Unreadable("chunks_mismatch");
        };
        match plaintext.strip_prefix(CHUNK_MARK).and_then(parse_chunk) {
            Some((id, i, n, piece)) if id == write_id && i == index && n == count => value.push_str(piece),
            _ => return Opened::Unreadable("chunks_mismatch"),
        }
    }
    Opened::Value { plaintext: value, with_previous_key }
}

/// `{write id}.{index}.{count}.{piece}` (after [`CHUNK_MARK`]).
fn parse_chunk(rest: &str) -> Option<(&str, usize, usize, &str)> {
    let mut parts = rest.splitn(4, '.');
    let id = parts.next()?;
    let index = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    let piece = parts.next()?;
    Some((id, index, count, piece))
}

/// The chunk plaintexts of a value that needs more than one cookie, as older versions
/// wrote them: kept to test that [`read`] still joins them.
#[cfg(test)]
fn split(plaintext: &str, base: &str, secure: bool, max_chunks: usize) -> Result<Vec<String>, TooLarge> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rand::RngCore;
    let mut id = [0u8; WRITE_ID_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let id = URL_SAFE_NO_PAD.encode(id);
    // The header of the longest name and largest index, so every chunk fits.
    let header = format!("{CHUNK_MARK}{id}.{}.{}.", HARD_MAX_CHUNKS - 1, HARD_MAX_CHUNKS);
    let longest = chunk_name(base, HARD_MAX_CHUNKS - 1, secure);
    let mut capacity = 0;
    while sealed_size(&longest, header.len() + capacity + 1) <= MAX_COOKIE_BYTES {
        capacity += 1;
    }
    let mut pieces = Vec::new();
    let mut rest = plaintext;
    while !rest.is_empty() {
        if pieces.len() == max_chunks {
            return Err(TooLarge);
        }
        // Cut at a character boundary: each chunk's value is a string of its own.
        let mut end = capacity.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            return Err(TooLarge);
        }
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    let count = pieces.len();
    Ok(pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| format!("{CHUNK_MARK}{id}.{index}.{count}.{piece}"))
        .collect())
}

/// Removes every cookie of `base` (all chunks).
pub fn clear(jar: &CookieJar<'_>, base: &str, secure: bool) {
    remove_chunks_from(jar, base, 0, secure);
}

/// Removes the chunks of `base` from index `from` on that this request carried.
pub(crate) fn remove_chunks_from(jar: &CookieJar<'_>, base: &str, from: usize, secure: bool) {
    for index in from..HARD_MAX_CHUNKS {
        let name = chunk_name(base, index, secure);
        // Rocket sends a removal only for cookies the request carried.
        if jar.get(&name).is_some() {
            jar.remove(Cookie::build(name).path("/"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_estimate_covers_the_sealed_value() {
        // 1,000 bytes of plaintext seal to 1,372 base64 characters.
        assert_eq!(sealed_size("appid_session", 1000), 14 + 1372 + 85);
    }

    #[test]
    fn chunks_are_numbered_after_the_base_name() {
        assert_eq!(chunk_name("appid_session", 0, false), "appid_session");
        assert_eq!(chunk_name("appid_session", 2, true), "__Host-appid_session.2");
    }

    #[test]
    fn a_value_is_split_into_chunks_that_each_fit_and_rejoin() {
        let value = format!("{{\"x\":\"{}é{}\"}}", "a".repeat(5000), "b".repeat(3000));
        let chunks = split(&value, "appid_session", true, 4).unwrap();
        assert_eq!(chunks.len(), 3);
        let mut joined = String::new();
        let mut ids = Vec::new();
        for (index, chunk) in chunks.iter().enumerate() {
            assert!(fits(&chunk_name("appid_session", index, true), chunk));
            let (id, i, n, piece) = parse_chunk(chunk.strip_prefix(CHUNK_MARK).unwrap()).unwrap();
            assert_eq!((i, n), (index, 3));
            ids.push(id.to_string());
            joined.push_str(piece);
        }
        assert_eq!(joined, value);
        assert!(ids.iter().all(|id| *id == ids[0]));
        assert_eq!(split(&value, "appid_session", true, 2), Err(TooLarge));
    }
}
