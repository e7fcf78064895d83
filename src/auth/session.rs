//! The session: who is logged in, kept in a sealed (AES-256-GCM) cookie, or in several
//! numbered ones when it is larger than one cookie holds (see `session_cookie`), or, in the
//! server-side mode, in the session store with only a ticket in the cookie (see `ticket`).
//! In the cookie it is a compact binary record (postcard), which costs a fraction of JSON
//! to read on every request; cookies of older versions (JSON in Rocket's private jar) are
//! still read, and written back in the new form.
//! It holds only what the guard needs: the access token and, when the provider issued one,
//! the refresh token (for silent renewal); not the id_token (App ID has no
//! `end_session_endpoint` that would want it as `id_token_hint`, and the cookie budget is
//! better spent on the tokens that are used), not the roles (those are cached per user with
//! bounded staleness, see `AppId::roles`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::CookieJar;
use rocket::{Orbit, Request, Rocket};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

use super::compact_text::Compact;
use super::cookie_store::{self, Opened, StoreSettings};
use super::cookies;
use super::logout::CsrfKey;
use super::session_cookie::{self, CookieKeys, Read};
use super::store::{Held, SessionStore};
use super::ticket::Ticket;
use crate::appid::{IdClaims, Verified};
use crate::config::{AppIdConfig, SessionStoreMode};
use crate::metrics::Metrics;
use crate::secret::{AccessToken, RefreshToken};

/// Bumped when the layout changes incompatibly: older cookies then count as absent.
/// Optional fields added with `serde(default)` need no bump.
pub const VERSION: u8 = 3;
/// The default idle timeout (`appid.session_idle_secs`): a session not used for this long
/// has ended (ASVS 7.3.1), whatever its absolute expiry.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// The default absolute lifetime (`appid.session_max_age_secs`).
pub const MAX_AGE_SECS: i64 = 8 * 3600;
/// `last_seen` is written back at most this often: every refresh re-seals and resends the
/// cookie, which is not worth doing on every request.
pub const ACTIVITY_GRANULARITY_SECS: i64 = 60;
/// Starts a session's plaintext in the cookie (then the postcard record); a ticket's starts
/// with `~`.
const RECORD_LAYOUT: u8 = 5;
/// Browsers keep cookies of at most 4096 bytes (name + value + attributes); each cookie of
/// the session stays below this estimate (see `cookie_store`).
pub const MAX_COOKIE_BYTES: usize = cookie_store::MAX_COOKIE_BYTES;

/// The session stored in the cookie. `Debug` leaves the tokens out (see below).
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    v: u8,
    /// A fresh random id for every login (no session fixation).
    pub sid: String,
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub access_token: AccessToken,
    /// SHA-256 of the access token, base64url: the guard's cache key, computed once at
    /// login (the sealed cookie vouches that it belongs to this token).
    th: String,
    /// Seconds since the epoch when the session ends (checked by the server, not only the browser).
    pub expires_at: i64,
    pub created_at: i64,
    /// When the session was last used (seconds since the epoch, refreshed at most once per
    /// [`ACTIVITY_GRANULARITY_SECS`]): the idle timeout counts from here. Absent in cookies
    /// written before it existed: then it counts from `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<i64>,
    /// The refresh token, when the provider issued one: the guard renews an expiring access
    /// token with it, logout revokes it. Sealed like the rest; never shown or logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<RefreshToken>,
    /// The logout form's token for this session (see `logout::csrf_token`), kept so that
    /// pages need not compute it on every request. Absent in sessions written before it
    /// existed: then it is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lt: Option<String>,
    /// For a server-side session, the ticket its cookie holds (never stored with it).
    #[serde(skip)]
    ticket: Option<Box<Ticket>>,
}

/// Tokens never reach a log line, even through `{:?}` of a session.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &"[redacted]")
            .field("sub", &self.sub)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("refresh_token", &self.rt.as_ref().map(|_| "[redacted]"))
            .field("server_side", &self.ticket.is_some())
            .finish_non_exhaustive()
    }
}

/// What the session cookie of a request amounts to.
// One per request, in the request's cache: boxing the session would cost an allocation on
// every signed-in request to save bytes on the others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Loaded {
    /// No session cookie at all.
    Absent,
    /// A session cookie that does not count, with the reason code for the log
    /// (`undecryptable`, `malformed`, `old_version`, `expired`, `idle`, `logged_out`).
    Refused(&'static str),
    /// A readable, current session.
    Valid(Session),
    /// A session cookie that could not be checked against the deny-list (the store is down
    /// and set to fail closed): the request gets the 503 page and the cookie stays.
    Unchecked,
}

impl Loaded {
    /// The session, if it counts.
    pub fn valid(&self) -> Option<&Session> {
        match self {
            Loaded::Valid(session) => Some(session),
            _ => None,
        }
    }
}

/// The request-local copy of the session (a distinct type for Rocket's request cache).
struct RequestSession(Loaded);

/// Resolves the session of every request before routing, so responders, which cannot
/// wait, find it decided (the page header shows who is signed in).
#[derive(Debug, Default)]
pub struct ResolveSession;

#[rocket::async_trait]
impl rocket::fairing::Fairing for ResolveSession {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info { name: "Session", kind: rocket::fairing::Kind::Request }
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut rocket::Data<'_>) {
        Session::resolve(request).await;
    }
}

/// The session would not fit in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTooLarge;

/// Why a session was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// It would not fit in the cookies allowed.
    TooLarge,
    /// The session store could not keep a server-side session.
    StoreUnavailable,
}

/// What a request's session cookies carry, before the store has been asked.
enum Carried {
    Absent,
    Refused(&'static str),
    /// A session in the cookies.
    Session(Session),
    /// The ticket of a server-side session, and the session's id.
    Ticket(String, Ticket),
}

impl Session {
    /// A new session for a login that just completed: who it is comes from the id_token
    /// verified at that login.
    pub fn new(id: &Verified<IdClaims>, access_token: AccessToken, expires_at: i64) -> Self {
        let key = crate::appid::token_key(access_token.secret());
        let now = crate::clock::now();
        Session {
            v: VERSION,
            sid: super::login::random_token(),
            sub: id.sub.clone(),
            name: id.name.clone(),
            email: id.email.clone(),
            th: URL_SAFE_NO_PAD.encode(key),
            access_token,
            expires_at,
            created_at: now,
            last_seen: Some(now),
            rt: None,
            lt: None,
            ticket: None,
        }
    }

    /// The logout form's token, when the session carries it.
    pub fn logout_token(&self) -> Option<&str> {
        self.lt.as_deref()
    }

    /// With the refresh token issued at login: the guard renews the access token with it,
    /// so the session then lasts the configured session lifetime (from its start), not
    /// just the access token's.
    pub fn with_refresh_token(mut self, refresh_token: RefreshToken, session_max_age_secs: u64) -> Self {
        let max_age = i64::try_from(session_max_age_secs).unwrap_or(i64::MAX);
        self.expires_at = self.expires_at.max(self.created_at.saturating_add(max_age));
        self.rt = Some(refresh_token);
        self
    }

    /// The refresh token, if the provider issued one.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.rt.as_ref()
    }

    /// The same session (same id, subject, start and end) with renewed tokens. A provider
    /// that sends no new refresh token keeps the old one valid (RFC 6749 §6). Name and
    /// e-mail are updated when the renewal's verified id_token `id` carries them.
    pub fn renewed(
        &self,
        access_token: AccessToken,
        refresh_token: Option<RefreshToken>,
        id: Option<&Verified<IdClaims>>,
    ) -> Session {
        let mut session = self.clone();
        session.th = URL_SAFE_NO_PAD.encode(crate::appid::token_key(access_token.secret()));
        session.access_token = access_token;
        if refresh_token.is_some() {
            session.rt = refresh_token;
        }
        if let Some(name) = id.and_then(|id| id.name.clone()) {
            session.name = Some(name);
        }
        if let Some(email) = id.and_then(|id| id.email.clone()) {
            session.email = Some(email);
        }
        session.last_seen = Some(crate::clock::now());
        session
    }

    /// SHA-256 of the access token (see the `th` field).
    pub fn token_key(&self) -> Option<[u8; 32]> {
        let mut key = [0u8; 32];
        let written = URL_SAFE_NO_PAD.decode_slice(&self.th, &mut key).ok()?;
        (written == 32).then_some(key)
    }

    /// What this request's session cookies carry, and why they must be sealed again, if
    /// they must: `previous_key` (they opened only with it) or `older_format` (Rocket's
    /// jar, as older versions sealed them). Never logs a cookie's value.
    fn carried(
        jar: &CookieJar<'_>,
        settings: &SessionSettings,
        metrics: Option<&Metrics>,
    ) -> (Carried, Option<&'static str>) {
        let refused = |reason| {
            // Forged, tampered, moved from another cookie name, sealed with another key
            // (rotation, or instances with different keys: F6, F8), or pieces that do not
            // belong together.
            if let Some(metrics) = metrics {
                metrics.cookie_undecryptable();
            }
            (Carried::Refused(reason), None)
        };
        match session_cookie::read(jar, cookies::SESSION, settings.store.secure, &settings.keys) {
            Read::Absent => (Carried::Absent, None),
            Read::Unreadable(reason) => refused(reason),
            Read::Value { plaintext, with_previous_key } => match Session::decoded(&plaintext) {
                Some(carried) => (carried, with_previous_key.then_some("previous_key")),
                None => (Carried::Refused("malformed"), None),
            },
            Read::Legacy => match cookie_store::read(jar, cookies::SESSION, &settings.store) {
                Opened::Absent => (Carried::Absent, None),
                Opened::Unreadable(reason) => refused(reason),
                Opened::Value { plaintext, .. } => (Session::from_legacy(&plaintext), Some("older_format")),
            },
        }
    }

    /// A session or ticket of the cookie format (see [`Session::encoded`]).
    fn decoded(plaintext: &[u8]) -> Option<Carried> {
        match plaintext.first()? {
            &RECORD_LAYOUT => Session::from_record(plaintext).map(Carried::Session),
            _ => {
                let (sid, ticket) = Ticket::parse(std::str::from_utf8(plaintext).ok()?)?;
                Some(Carried::Ticket(sid.to_string(), ticket))
            }
        }
    }

    /// A server-side session's record: the cookie's binary form, or JSON as older versions
    /// stored it.
    fn from_record(record: &[u8]) -> Option<Session> {
        match record.split_first()? {
            (&RECORD_LAYOUT, wire) => postcard::from_bytes::<Wire<'_>>(wire).ok().map(Session::from),
            _ => serde_json::from_slice(record).ok(),
        }
    }

    /// A session or ticket as older versions sealed it in Rocket's jar: JSON, or the
    /// ticket's text.
    fn from_legacy(plaintext: &str) -> Carried {
        if plaintext.starts_with(super::ticket::MARK) {
            return match Ticket::parse(plaintext) {
                Some((sid, ticket)) => Carried::Ticket(sid.to_string(), ticket),
                None => Carried::Refused("malformed"),
            };
        }
        match serde_json::from_str::<Session>(plaintext) {
            Ok(session) => Carried::Session(session),
            Err(_) => Carried::Refused(old_or_malformed(plaintext)),
        }
    }

    /// The cookie's plaintext of this session: its layout byte, then the postcard record.
    fn encoded(&self) -> Option<Vec<u8>> {
        postcard::to_extend(&Wire::from(self), vec![RECORD_LAYOUT]).ok()
    }

    /// The session the request's cookies carry, opened but not checked (no lifetime,
    /// idle time or deny-list): for tools and tests that look inside a cookie.
    pub fn peek(jar: &CookieJar<'_>, settings: &SessionSettings) -> Option<Session> {
        match Session::carried(jar, settings, None).0 {
            Carried::Session(session) => Some(session),
            _ => None,
        }
    }

    /// The session, if its layout, lifetime and idle time allow it (the deny-list apart).
    fn checked(self, settings: &SessionSettings) -> Loaded {
        let now = crate::clock::now();
        if self.v != VERSION {
            Loaded::Refused("old_version")
        } else if self.expires_at <= now
            // The absolute lifetime counts from the login, however often the tokens were
            // renewed since.
            || self.created_at.saturating_add(settings.max_age_secs) <= now
        {
            Loaded::Refused("expired")
        } else if now - self.last_seen() > settings.idle_secs {
            Loaded::Refused("idle")
        } else {
            Loaded::Valid(self)
        }
    }

    /// The server-side session `sid` that `ticket` opens, checked like a cookie's, or what
    /// the store says instead.
    async fn fetched(
        sid: String,
        ticket: Ticket,
        store: &SessionStore,
        settings: &SessionSettings,
    ) -> Loaded {
        let sealed = match store.session_record(&sid).await {
            Ok(Held::Record(sealed)) => sealed,
            // Expired, evicted, deleted at logout, or from another store.
            Ok(Held::Absent) => return Loaded::Refused("session_unknown"),
            Ok(Held::LoggedOut) => return Loaded::Refused("logged_out"),
            // Server-side sessions fail closed: without the store there is no session to
            // read; the request gets the 503 page and the cookie stays.
            Err(_) => {
                tracing::warn!(event = "session_unchecked", reason = "store_unavailable");
                return Loaded::Unchecked;
            }
        };
        let session = ticket
            .open(&sid, &sealed)
            .and_then(|plaintext| Session::from_record(&plaintext))
            .filter(|session| session.sid == sid);
        match session {
            Some(mut session) => {
                session.ticket = Some(Box::new(ticket));
                session.checked(settings)
            }
            None => Loaded::Refused("undecryptable"),
        }
    }

    /// The session of this request, decided once per request however many guards,
    /// catchers and responders ask: opened from the cookies, then checked against the
    /// deny-list of the app's [`SessionStore`]. A session that opened only with the
    /// previous key (a key rotation in progress) is sealed again with the current key.
    pub async fn resolve<'r>(request: &'r Request<'_>) -> &'r Loaded {
        &request
            .local_cache_async(async {
                let rocket = request.rocket();
                let settings = SessionSettings::of_app(rocket);
                let (carried, reseal) =
                    Session::carried(request.cookies(), &settings, rocket.state::<Metrics>());
                let loaded = match (carried, rocket.state::<SessionStore>()) {
                    (Carried::Absent, _) => Loaded::Absent,
                    (Carried::Refused(reason), _) => Loaded::Refused(reason),
                    // Without a store there is no deny-list to honour: no session counts.
                    (_, None) => Loaded::Refused("no_store"),
                    (Carried::Ticket(sid, ticket), Some(store)) => {
                        Session::fetched(sid, ticket, store, &settings).await
                    }
                    (Carried::Session(session), Some(store)) => match session.checked(&settings) {
                        Loaded::Valid(session) => match store.check_denied(&session.sid).await {
                            Some(false) => Loaded::Valid(session),
                            Some(true) => Loaded::Refused("logged_out"),
                            None => {
                                tracing::warn!(event = "session_unchecked", reason = "store_unavailable");
                                Loaded::Unchecked
                            }
                        },
                        refused => refused,
                    },
                };
                if let (Some(reason), Loaded::Valid(session)) = (reseal, &loaded) {
                    tracing::info!(event = "session_resealed", reason);
                    let _ = session.write_cookie(request.cookies(), &settings, HARD_MAX);
                }
                RequestSession(loaded)
            })
            .await
            .0
    }

    /// The session of this request as [`Session::resolve`] decided it, if it counts.
    pub fn of_request<'r>(request: &'r Request<'_>) -> Option<&'r Session> {
        Session::loaded_of_request(request).valid()
    }

    /// What [`Session::resolve`] decided for this request. Every request of an app built
    /// with [`crate::protect`] is resolved before routing ([`ResolveSession`]); elsewhere,
    /// before resolution, no session counts.
    pub fn loaded_of_request<'r>(request: &'r Request<'_>) -> &'r Loaded {
        &request.local_cache(|| RequestSession(Loaded::Refused("not_resolved"))).0
    }

    /// When the session was last used (seconds since the epoch).
    pub fn last_seen(&self) -> i64 {
        self.last_seen.unwrap_or(self.created_at)
    }

    /// True when `last_seen` is old enough to be written back (see [`Session::touch`]).
    pub fn needs_touch(&self) -> bool {
        crate::clock::now() - self.last_seen() >= ACTIVITY_GRANULARITY_SECS
    }

    /// Stores the session again with `last_seen` = now (the session was used). Same size
    /// as before, so it fits; if it somehow does not, or the store fails, the old one stays.
    pub async fn touch(&self, jar: &CookieJar<'_>, store: &SessionStore, settings: &SessionSettings) {
        let mut session = self.clone();
        session.last_seen = Some(crate::clock::now());
        let _ = session.save(jar, store, settings).await;
    }

    /// Stores a new session: in the store with a ticket in the cookie when the store keeps
    /// sessions, else in the cookies (within `settings.store.max_chunks`, refusing one the
    /// browser would silently drop). Sets the short-lived "just signed in" marker of the
    /// login-loop guard (R-C7). Returns the number of cookies.
    pub async fn write_new(
        mut self,
        jar: &CookieJar<'_>,
        store: &SessionStore,
        settings: &SessionSettings,
    ) -> Result<usize, NotStored> {
        if settings.server_side {
            self.ticket = Some(Box::new(Ticket::new()));
        }
        self.lt = settings.logout.as_ref().map(|key| key.token(&self.sid));
        let cookies = self.save_with(jar, store, settings, settings.store.max_chunks, true).await?;
        jar.add(cookies::signed_in_marker());
        Ok(cookies)
    }

    /// Stores a session that goes on (a renewal, a touch) where it lives, without the
    /// login-loop marker that [`Session::write_new`] sets for a new login.
    pub async fn save(
        &self,
        jar: &CookieJar<'_>,
        store: &SessionStore,
        settings: &SessionSettings,
    ) -> Result<usize, NotStored> {
        self.save_with(jar, store, settings, HARD_MAX, false).await
    }

    /// A server-side session's record goes to the store (its ticket cookie is written only
    /// at login: it never changes); any other session to the cookies.
    async fn save_with(
        &self,
        jar: &CookieJar<'_>,
        store: &SessionStore,
        settings: &SessionSettings,
        max_chunks: usize,
        new: bool,
    ) -> Result<usize, NotStored> {
        let Some(ticket) = &self.ticket else {
            return self.write_cookie(jar, settings, max_chunks).map_err(|_| NotStored::TooLarge);
        };
        let record = self.encoded().ok_or(NotStored::TooLarge)?;
        let sealed = ticket.seal(&self.sid, record).ok_or(NotStored::StoreUnavailable)?;
        store
            .put_session(&self.sid, sealed, self.ends_at(settings))
            .await
            .map_err(|_| NotStored::StoreUnavailable)?;
        if new {
            self.write_cookie(jar, settings, max_chunks).map_err(|_| NotStored::TooLarge)?;
        }
        Ok(1)
    }

    /// When the session ends unless it is used again: its absolute end, or the idle
    /// timeout after its last use, whichever comes first (seconds since the epoch).
    fn ends_at(&self, settings: &SessionSettings) -> i64 {
        self.expires_at
            .min(self.created_at.saturating_add(settings.max_age_secs))
            .min(self.last_seen().saturating_add(settings.idle_secs))
    }

    /// Seals the session, or its ticket, into as many cookies as it needs (see
    /// `session_cookie`); the number of cookies, or [`SessionTooLarge`] beyond
    /// `max_chunks` (nothing is set then).
    fn write_cookie(
        &self,
        jar: &CookieJar<'_>,
        settings: &SessionSettings,
        max_chunks: usize,
    ) -> Result<usize, SessionTooLarge> {
        let plaintext = match &self.ticket {
            Some(ticket) => ticket.cookie_value(&self.sid).into_bytes(),
            None => self.encoded().ok_or(SessionTooLarge)?,
        };
        let max_age = self.expires_at - crate::clock::now();
        let limits = (settings.store.secure, max_chunks);
        session_cookie::write(jar, cookies::SESSION, plaintext, &settings.keys, limits, max_age)
            .map_err(|_| SessionTooLarge)
    }

    /// The renewed session `renewed` of this one, kept where this one is kept.
    pub fn kept_like(&self, mut renewed: Session) -> Session {
        renewed.ticket = self.ticket.clone();
        renewed
    }

    /// True for a server-side session (its cookie holds a ticket).
    pub fn is_server_side(&self) -> bool {
        self.ticket.is_some()
    }

    /// Removes the session's cookies (every chunk).
    pub fn clear(jar: &CookieJar<'_>, secure: bool) {
        cookie_store::clear(jar, cookies::SESSION, secure);
    }
}

/// A session rewritten (a renewal, a touch, a re-seal) was accepted before, so its size
/// was checked then: every chunk count up to the hard maximum.
const HARD_MAX: usize = cookie_store::HARD_MAX_CHUNKS;

/// The session as the cookie holds it (see [`Session::encoded`]): positional, so every
/// field is always present; a new field needs a new [`RECORD_LAYOUT`]. Tokens and ids are
/// kept as raw bytes where they are base64url (see `compact_text`).
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    sid: Compact<'a>,
    #[serde(borrow)]
    sub: Compact<'a>,
    #[serde(borrow)]
    name: Option<&'a str>,
    #[serde(borrow)]
    email: Option<&'a str>,
    #[serde(borrow)]
    access_token: Compact<'a>,
    #[serde(borrow)]
    th: Compact<'a>,
    expires_at: i64,
    created_at: i64,
    last_seen: i64,
    #[serde(borrow)]
    refresh_token: Option<Compact<'a>>,
    #[serde(borrow)]
    logout_token: Option<Compact<'a>>,
}

impl<'a> From<&'a Session> for Wire<'a> {
    fn from(session: &'a Session) -> Self {
        Wire {
            sid: Compact::of(&session.sid),
            sub: Compact::of(&session.sub),
            name: session.name.as_deref(),
            email: session.email.as_deref(),
            access_token: Compact::of(session.access_token.secret()),
            th: Compact::of(&session.th),
            expires_at: session.expires_at,
            created_at: session.created_at,
            last_seen: session.last_seen(),
            refresh_token: session.rt.as_ref().map(|token| Compact::of(token.secret())),
            logout_token: session.lt.as_deref().map(Compact::of),
        }
    }
}

impl From<Wire<'_>> for Session {
    fn from(wire: Wire<'_>) -> Self {
        Session {
            v: VERSION,
            sid: wire.sid.text(),
            sub: wire.sub.text(),
            name: wire.name.map(str::to_string),
            email: wire.email.map(str::to_string),
            access_token: AccessToken::new(wire.access_token.text()),
            th: wire.th.text(),
            expires_at: wire.expires_at,
            created_at: wire.created_at,
            last_seen: Some(wire.last_seen),
            rt: wire.refresh_token.map(|token| RefreshToken::new(token.text())),
            lt: wire.logout_token.map(|token| token.text()),
            ticket: None,
        }
    }
}

/// Why a decrypted cookie did not parse: an older layout (its `v` differs) or junk.
fn old_or_malformed(plaintext: &str) -> &'static str {
    let v =
        serde_json::from_str::<serde_json::Value>(plaintext).ok().and_then(|value| value.get("v").cloned());
    if v.is_some_and(|v| v != serde_json::json!(VERSION)) {
        "old_version"
    } else {
        "malformed"
    }
}

/// How sessions are read and written: the configured timeouts and cookie settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub store: StoreSettings,
    /// Idle timeout (seconds).
    pub idle_secs: i64,
    /// Absolute lifetime from the login (seconds).
    pub max_age_secs: i64,
    /// New sessions are kept in the session store, with a ticket in the cookie.
    pub server_side: bool,
    /// The keys the session cookie is sealed with.
    pub keys: Arc<CookieKeys>,
    /// The key of logout tokens: a new session carries its token (see `Session::lt`).
    pub logout: Option<CsrfKey>,
}

impl SessionSettings {
    /// The configured settings, sealing with `keys`, new sessions carrying their logout
    /// token under `logout`.
    pub fn of(config: &AppIdConfig, keys: Arc<CookieKeys>, logout: Option<CsrfKey>) -> Self {
        SessionSettings {
            store: StoreSettings {
                secure: config.secure_cookies(),
                max_chunks: config.session_max_chunks,
                previous_key: config.previous_session_key.clone(),
            },
            idle_secs: i64::try_from(config.session_idle_secs).unwrap_or(IDLE_TIMEOUT_SECS),
            max_age_secs: i64::try_from(config.session_max_age_secs).unwrap_or(MAX_AGE_SECS),
            server_side: config.session_store == SessionStoreMode::Server,
            keys,
            logout,
        }
    }

    /// The app's settings, derived once at ignite (managed by the composition root), or the
    /// defaults in an app built without it (with keys derived from its `secret_key`).
    pub fn of_app(rocket: &Rocket<Orbit>) -> Cow<'_, SessionSettings> {
        match rocket.state::<SessionSettings>() {
            Some(settings) => Cow::Borrowed(settings),
            None => {
                Cow::Owned(SessionSettings::defaults(false, CookieKeys::from_figment(rocket.figment(), None)))
            }
        }
    }

    /// The default timeouts, no previous key.
    pub fn defaults(secure: bool, keys: Arc<CookieKeys>) -> Self {
        SessionSettings {
            store: StoreSettings::rewrite(secure),
            idle_secs: IDLE_TIMEOUT_SECS,
            max_age_secs: MAX_AGE_SECS,
            server_side: false,
            keys,
            logout: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_layout_is_told_apart_from_junk() {
        assert_eq!(old_or_malformed(r#"{"v":2,"sid":"x"}"#), "old_version");
        assert_eq!(old_or_malformed(r#"{"sid":"x"}"#), "malformed");
        assert_eq!(old_or_malformed("not json"), "malformed");
    }

    /// The binary record (the cookie's, and a server-side session's) holds the same session
    /// as the JSON of older versions, which still reads, in fewer bytes.
    #[test]
    fn the_binary_record_and_the_older_json_read_as_the_same_session() {
        let stored = r#"{"v":3,"sid":"s","sub":"u","name":"Ann","email":null,"access_token":"at-CANARY","th":"h","expires_at":9,"created_at":1,"last_seen":2,"rt":"rt-CANARY","lt":"logout"}"#;
        let session: Session = serde_json::from_str(stored).unwrap();
        let binary = session.encoded().unwrap();
        assert_eq!(binary[0], RECORD_LAYOUT);
        assert!(binary.len() < stored.len() / 2, "{} bytes", binary.len());
        for record in [&binary[..], stored.as_bytes()] {
            let read = Session::from_record(record).unwrap();
            assert_eq!(serde_json::to_string(&read).unwrap(), stored);
        }
        assert!(Session::from_record(&binary[..binary.len() - 1]).is_none(), "a cut record");
    }

    /// Sessions written when the tokens were plain strings still open, and are written back
    /// in the same shape; `Debug` shows no token.
    #[test]
    fn the_cookie_format_is_unchanged_and_debug_shows_no_token() {
        let stored = r#"{"v":3,"sid":"s","sub":"u","name":null,"email":null,"access_token":"at-CANARY","th":"h","expires_at":9,"created_at":1,"last_seen":2,"rt":"rt-CANARY"}"#;
        let session: Session = serde_json::from_str(stored).unwrap();
        assert_eq!(session.access_token.secret(), "at-CANARY");
        assert_eq!(session.refresh_token().map(RefreshToken::secret), Some("rt-CANARY"));
        assert_eq!(serde_json::to_string(&session).unwrap(), stored);
        assert!(!format!("{session:?}").contains("CANARY"));
    }
}
