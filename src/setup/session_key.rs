//! The session key policy: where the key of the sealed cookies comes from, which keys are
//! refused, and the fingerprint that lets operators compare instances' keys.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;

use crate::config::{derive_secret_key, ConfigProblems};

/// The example `secret_key` printed in Rocket's documentation: public, so never a key.
const PUBLISHED_EXAMPLE_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";

const PUBLISHED_KEY_PROBLEM: &str =
    "is a published example key (generate your own with `openssl rand -base64 64`)";

fn is_published_example_key(key: &[u8]) -> bool {
    STANDARD.decode(PUBLISHED_EXAMPLE_KEY).is_ok_and(|example| example == key) || key.iter().all(|b| *b == 0)
}

/// 8 hex digits derived from the session key (HKDF-SHA256 with a fixed label), to compare
/// instances' keys in their logs without showing the key.
fn key_fingerprint(key: &[u8]) -> String {
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"rocket-appid key fingerprint"), key);
    let mut out = [0u8; 4];
    match hkdf.expand(b"fingerprint v1", &mut out) {
        Ok(()) => out.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => String::from("unknown"),
    }
}

/// Applies `SESSION_SECRET_KEY` (`configured`) to `figment` as Rocket's `secret_key`, or
/// checks the `secret_key` it already has; records what is wrong in `problems`.
/// `may_be_random`: only `cargo run` against the embedded development provider may go
/// without a key (Rocket then makes a random one per process); anything talking to a real
/// provider needs one (R-C8).
pub fn apply(
    figment: Figment,
    configured: Option<&str>,
    may_be_random: bool,
    problems: &mut ConfigProblems,
) -> Figment {
    let mut figment = figment;
    let mut fingerprint = None;
    match configured.filter(|v| !v.trim().is_empty()) {
        Some(value) => match derive_secret_key(value) {
            Ok(key) if is_published_example_key(&key) => {
                problems.push("SESSION_SECRET_KEY", PUBLISHED_KEY_PROBLEM)
            }
            Ok(key) => {
                fingerprint = Some(key_fingerprint(&key));
                // Global: SESSION_SECRET_KEY wins over any profile's `secret_key`.
                figment = figment.merge(Serialized::global("secret_key", STANDARD.encode(key)));
            }
            Err(why) => problems.push("SESSION_SECRET_KEY", why.to_string()),
        },
        None if figment
            .extract_inner::<rocket::config::SecretKey>("secret_key")
            .is_ok_and(|key| key.is_provided()) =>
        {
            let text: String = figment.extract_inner("secret_key").unwrap_or_default();
            let bytes = STANDARD.decode(text.trim()).unwrap_or_else(|_| text.trim().as_bytes().to_vec());
            if is_published_example_key(&bytes) {
                problems.push("ROCKET_SECRET_KEY", PUBLISHED_KEY_PROBLEM);
            } else {
                fingerprint = Some(key_fingerprint(&bytes));
            }
        }
        None if may_be_random => tracing::warn!(
            "SESSION_SECRET_KEY is not set: using a random key, so sessions end when the process stops"
        ),
        None => {
            problems.push("SESSION_SECRET_KEY", "is missing (generate one with `openssl rand -base64 64`)")
        }
    }
    if let Some(fingerprint) = fingerprint {
        // Instances behind one load balancer must share the key (F8): their logs show
        // the same fingerprint. It reveals nothing usable about the key.
        tracing::info!(event = "session_key", fingerprint = %fingerprint);
    }
    figment
}

/// What `doctor` says of a configured session key (the value of `SESSION_SECRET_KEY`, or of
/// Rocket's `secret_key` when `rocket_format`): its fingerprint when the app would accept
/// it, else why not. Neither ever contains the key.
pub(super) fn assess(value: &str, rocket_format: bool) -> Result<String, &'static str> {
    let key = if rocket_format {
        STANDARD.decode(value.trim()).unwrap_or_else(|_| value.trim().as_bytes().to_vec())
    } else {
        derive_secret_key(value).map_err(|_| {
            "is too short: use a base64 key of 32 or 64 bytes (`openssl rand -base64 64`) or a \
             passphrase of at least 32 characters"
        })?
    };
    if is_published_example_key(&key) {
        return Err(PUBLISHED_KEY_PROBLEM);
    }
    if rocket_format && key.len() < 32 {
        return Err("is shorter than the 32 bytes Rocket requires");
    }
    // A passphrase of a few characters repeated passes the length rule and is still guessable.
    let distinct = value.trim().chars().collect::<std::collections::HashSet<_>>().len();
    if distinct < 8 {
        return Err("repeats a few characters: generate a key with `openssl rand -base64 64`");
    }
    Ok(key_fingerprint(&key))
}
