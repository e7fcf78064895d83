//! One response type for every endpoint: status, content type, body and extra headers.

use std::io::Cursor;

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde_json::{json, Value};

/// A complete HTTP answer built by a handler.
#[derive(Debug)]
pub(crate) struct Reply {
    status: Status,
    content_type: Option<&'static str>,
    body: String,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON body.
    pub fn json(status: Status, body: &Value) -> Reply {
        Reply { status, content_type: Some("application/json"), body: body.to_string(), headers: Vec::new() }
    }

    /// An RFC 6749 error body `{"error":..,"error_description":..}`.
    pub fn oauth_error(status: Status, error: &str, description: &str) -> Reply {
        Reply::json(status, &json!({"error": error, "error_description": description})).no_store()
    }

    /// An HTML page; pages never run scripts or load anything external.
    pub fn html(status: Status, body: String) -> Reply {
        Reply { status, content_type: Some("text/html; charset=utf-8"), body, headers: Vec::new() }
            .no_store()
            .header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
            .header("X-Frame-Options", "DENY")
    }

    /// A plain-text body.
    pub fn text(status: Status, body: &str) -> Reply {
        Reply {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            body: body.to_owned(),
            headers: Vec::new(),
        }
    }

    /// The bare `Not Found` App ID answers for unknown tenants.
    pub fn not_found() -> Reply {
        Reply::text(Status::NotFound, "Not Found")
    }

    /// An empty body.
    pub fn empty(status: Status) -> Reply {
        Reply { status, content_type: None, body: String::new(), headers: Vec::new() }
    }

    /// `302 Found` to `location` (App ID redirects with 302).
    pub fn found(location: String) -> Reply {
        Reply::empty(Status::Found).header("Location", location).no_store()
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Forbids caching (token responses and pages carrying codes or secrets).
    pub fn no_store(self) -> Reply {
        self.header("Cache-Control", "no-store").header("Pragma", "no-cache")
    }
}

impl<'r> Responder<'r, 'static> for Reply {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut builder = Response::build();
        builder.status(self.status);
        if let Some(ct) = self.content_type {
            builder.raw_header("Content-Type", ct);
        }
        for (name, value) in self.headers {
            builder.raw_header(name, value);
        }
        builder.sized_body(self.body.len(), Cursor::new(self.body));
        builder.ok()
    }
}
