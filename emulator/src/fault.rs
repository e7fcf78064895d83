//! Scripted faults: make one endpoint slow, fail, or answer something hostile, so an app's
//! handling of provider trouble can be tested against otherwise real behaviour.
//!
//! The endpoint's handler still runs (and is counted, and consumes codes as usual); the
//! fault then delays and/or replaces its answer, like a proxy or overloaded instance in
//! front of App ID would.

use std::io::Cursor;
use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Status};
use rocket::{Request, Response};

use crate::state::{Emulator, Endpoint};

/// What an endpoint does instead of (or before) its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Wait this long before answering.
    pub delay: Duration,
    /// Replace the answer with this status (`None`: keep the real answer, only delay it).
    pub status: Option<u16>,
    /// Content type of the replacement body.
    pub content_type: String,
    /// The replacement body.
    pub body: String,
    /// Extra headers on the replacement answer (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
    /// Apply to this many requests, then stop (`None`: until cleared).
    pub times: Option<u32>,
}

impl Fault {
    /// Answer `status` with an empty body.
    pub fn status(status: u16) -> Fault {
        Fault::body(status, "text/plain", "")
    }

    /// Answer `status` with `body` of `content_type`.
    pub fn body(status: u16, content_type: &str, body: &str) -> Fault {
        Fault {
            delay: Duration::ZERO,
            status: Some(status),
            content_type: content_type.to_owned(),
            body: body.to_owned(),
            headers: Vec::new(),
            times: None,
        }
    }

    /// Answer `status` with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Fault {
        Fault::body(status, "application/json", &body.to_string())
    }

    /// Keep the real answer, but send it only after `delay`.
    pub fn delay(delay: Duration) -> Fault {
        Fault { status: None, ..Fault::status(200) }.with_delay(delay)
    }

    /// Also wait `delay` before answering.
    pub fn with_delay(mut self, delay: Duration) -> Fault {
        self.delay = delay;
        self
    }

    /// Adds a header to the replacement answer.
    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Applies only to the next `n` requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }
}

/// The endpoint a request path belongs to (the same names the call counters use).
pub(crate) fn endpoint_of(path: &str) -> Option<Endpoint> {
    if path == "/identity/token" {
        return Some(Endpoint::IamToken);
    }
    if path.starts_with("/management/") {
        return Some(Endpoint::ManagementRoles);
    }
    let rest = path.strip_prefix("/oauth/v4/")?;
    let (_tenant, rest) = rest.split_once('/')?;
    Some(match rest {
        ".well-known/openid-configuration" => Endpoint::Discovery,
        "authorization" => Endpoint::Authorization,
        "token" => Endpoint::Token,
        "publickeys" => Endpoint::PublicKeys,
        "introspect" => Endpoint::Introspect,
        "userinfo" => Endpoint::UserInfo,
        "revoke" => Endpoint::Revoke,
        "cloud_directory/sso/logout" => Endpoint::SsoLogout,
        _ => return None,
    })
}

/// Applies scripted faults to answers.
pub(crate) struct Faults(pub Emulator);

#[rocket::async_trait]
impl Fairing for Faults {
    fn info(&self) -> Info {
        Info { name: "appid-emulator faults", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(endpoint) = endpoint_of(req.uri().path().as_str()) else { return };
        let Some(fault) = self.0.take_fault(endpoint) else { return };
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        let Some(code) = fault.status else { return };
        res.set_status(Status::new(code));
        let content_type = ContentType::parse_flexible(&fault.content_type).unwrap_or(ContentType::Plain);
        res.set_header(content_type);
        for (name, value) in fault.headers {
            res.set_header(Header::new(name, value));
        }
        let body = fault.body.into_bytes();
        res.set_sized_body(body.len(), Cursor::new(body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_endpoints() {
        assert_eq!(endpoint_of("/oauth/v4/t/introspect"), Some(Endpoint::Introspect));
        assert_eq!(endpoint_of("/oauth/v4/t/token"), Some(Endpoint::Token));
        assert_eq!(endpoint_of("/identity/token"), Some(Endpoint::IamToken));
        assert_eq!(endpoint_of("/management/v4/t/users/u/roles"), Some(Endpoint::ManagementRoles));
        assert_eq!(endpoint_of("/oauth/v4/t/.well-known/openid-configuration"), Some(Endpoint::Discovery));
        assert_eq!(endpoint_of("/"), None);
    }
}
