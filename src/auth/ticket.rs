//! Server-side sessions (`APPID_SESSION_STORE=server`), after oauth2-proxy's tickets: the
//! session cookie holds only the session id and a random secret; the session itself (the
//! tokens and the profile) lives in the session store, sealed with that secret as its
//! AES-128-GCM key. The store never holds the secret, so a copy of it (a dump, a replica, a backup)
//! opens no session; the cookie stays about 150 bytes whatever the tokens weigh; and a
//! logout deletes the session for every instance at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::store::seal;

/// Starts a ticket cookie's plaintext (a session in the cookie starts with `{`, a chunked
/// one with `~c1.`).
pub const MARK: &str = "~t1.";
/// Bytes of the ticket's secret: a random 128-bit AES-GCM key, used for this session's
/// record only (so no key derivation is needed, and none is paid for on every request).
const SECRET_BYTES: usize = 16;

/// The secret of one session's ticket. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    secret: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket([redacted])")
    }
}

impl Ticket {
    /// A fresh ticket (one per login).
    pub fn new() -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Ticket { secret }
    }

    /// The cookie's plaintext for session `sid` (sealed again by the private cookie jar).
    pub fn cookie_value(&self, sid: &str) -> String {
        format!("{MARK}{sid}.{}", URL_SAFE_NO_PAD.encode(self.secret))
    }

    /// The session id and ticket of a ticket cookie's plaintext, `None` if it is not one.
    pub fn parse(plaintext: &str) -> Option<(&str, Ticket)> {
        let (sid, secret) = plaintext.strip_prefix(MARK)?.split_once('.')?;
        let mut bytes = [0u8; SECRET_BYTES];
        let written = URL_SAFE_NO_PAD.decode_slice(secret, &mut bytes).ok()?;
        (written == SECRET_BYTES && !sid.is_empty()).then_some((sid, Ticket { secret: bytes }))
    }

    /// `session` sealed for the store, bound to session `sid` (a record copied to another
    /// session's key does not open).
    pub fn seal(&self, sid: &str, session: Vec<u8>) -> Option<Vec<u8>> {
        seal::seal_bytes(&self.secret, &bound_to(sid), session)
    }

    /// What [`Ticket::seal`] sealed for `sid`, if this ticket opens it.
    pub fn open(&self, sid: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        seal::open_bytes(&self.secret, &bound_to(sid), sealed)
    }
}

impl Default for Ticket {
    fn default() -> Self {
        Ticket::new()
    }
}

fn bound_to(sid: &str) -> String {
    format!("session:{sid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_round_trips_through_its_cookie_and_opens_only_its_own_record() {
        let ticket = Ticket::new();
        let value = ticket.cookie_value("sid-1");
        assert!(value.len() < 80, "{}", value.len());
        let (sid, parsed) = Ticket::parse(&value).unwrap();
        assert_eq!((sid, &parsed), ("sid-1", &ticket));
        let sealed = ticket.seal("sid-1", b"{\"tokens\":\"CANARY\"}".to_vec()).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("CANARY"));
        assert_eq!(parsed.open("sid-1", &sealed).as_deref(), Some(&b"{\"tokens\":\"CANARY\"}"[..]));
        assert!(Ticket::new().open("sid-1", &sealed).is_none(), "another ticket");
        assert!(ticket.open("sid-2", &sealed).is_none(), "bound to its session");
        assert!(!format!("{ticket:?}").contains(&value[value.len() - 10..]));
    }

    #[test]
    fn other_values_are_not_tickets() {
        for value in
            ["{\"v\":3}", "~c1.x.0.2.abc", "~t1.", "~t1.sid", "~t1.sid.short", "~t1..AAAAAAAAAAAAAAAAAAAAAA"]
        {
            assert!(Ticket::parse(value).is_none(), "{value}");
        }
    }
}
