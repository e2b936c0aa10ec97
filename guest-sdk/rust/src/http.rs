//! Outbound HTTP to the upstreams the operator granted the route (`[[upstream]]` in the gateway's config, and the
//! route's `upstreams = [...]`). A request names an upstream and a path under its URL — never an address — and
//! returns at once; its answer arrives later in [`crate::HttpEvents::on_http_response`]. A plugin that sends
//! requests exports their events: `export_plugin!(MyPlugin, http)`.
//!
//! ```no_run
//! use std::time::Duration;
//! use wssgate_sdk::{http, Connection};
//! # fn demo(conn: Connection) -> Result<(), http::RequestRefusal> {
//! let sent = http::Request::post("backend", "/login")
//!     .header("content-type", "application/json")
//!     .body(r#"{"token":"abc"}"#)
//!     .timeout(Duration::from_secs(2))
//!     .owner(conn) // cancelled if `conn` closes first
//!     .send()?;
//! # let _ = sent;
//! # Ok(())
//! # }
//! ```
//!
//! Exactly one response event follows every request that was sent, unless it is cancelled first, which ends it
//! without an event: by [`Sent::cancel`], when its owner connection closes, or when the gateway replaces the
//! instance (after a trap). A request without an owner is also cancelled when a reload retires the instance or the
//! instance ends with its last connection — but its exchange runs to its end, so a notice sent from `on_close`
//! still reaches the backend. Requests cannot be sent from [`crate::Plugin::init`].

use crate::{Connection, host};
use std::time::Duration;

/// A request to an upstream, built step by step and sent with [`Request::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub upstream: String,
    pub method: String,
    /// Path and query under the upstream's URL, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Gives up sooner than the upstream's own timeout (never later).
    pub timeout: Option<Duration>,
    /// The connection the request is for: it is cancelled when that connection closes.
    pub owner: Option<Connection>,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, …) to `path` under upstream `upstream`.
    pub fn new(method: &str, upstream: &str, path: &str) -> Self {
        Request {
            upstream: upstream.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            owner: None,
        }
    }

    pub fn get(upstream: &str, path: &str) -> Self {
        Request::new("GET", upstream, path)
    }

    pub fn post(upstream: &str, path: &str) -> Self {
        Request::new("POST", upstream, path)
    }

    /// Adds a header (`host`, `content-length` and hop-by-hop headers are dropped by the gateway, which sets them;
    /// so are `x-original-url`, `x-rewrite-url` and `x-forwarded-host`, which some backends route by).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Ties the request to `conn`: it is cancelled when `conn` closes, and its response event names `conn`.
    pub fn owner(mut self, conn: Connection) -> Self {
        self.owner = Some(conn);
        self
    }

    /// Sends the request; returns at once. Refused — with no event to follow — when the route is not granted the
    /// upstream, the upstream has `max_in_flight` requests running, the body is over `max_request_bytes`, the
    /// method, path or a header is not valid HTTP, the owner is not a connection of this instance, or it is
    /// called from `init`.
    pub fn send(self) -> Result<Sent, RequestRefusal> {
        let owner = self.owner;
        host::with_host(|h| h.send_request(&self)).map(|id| Sent { id, owner })
    }
}

/// A request that was sent; the same value reaches `on_http_response` with its answer. Two are equal when they
/// name the same request.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    id: u64,
    owner: Option<Connection>,
}

impl Sent {
    /// The request with this id (as found in [`Sent::id`]), sent for `owner`.
    pub fn new(id: u64, owner: Option<Connection>) -> Self {
        Sent { id, owner }
    }

    pub fn id(self) -> u64 {
        self.id
    }

    /// The connection the request was sent for.
    pub fn owner(self) -> Option<Connection> {
        self.owner
    }

    /// Cancels the request: no event follows. False when its answer was already delivered, or it is not this
    /// instance's.
    pub fn cancel(self) -> bool {
        host::with_host(|h| h.cancel_request(self.id))
    }
}

impl PartialEq for Sent {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Sent {}

impl std::hash::Hash for Sent {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

/// An upstream's answer: any status (redirects are not followed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    /// In the order received; names are lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status` and `body`, for tests.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request that was sent got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No complete response within the timeout.
    Timeout,
    /// The upstream could not be reached (refused, unreachable, DNS).
    ConnectFailed(String),
    /// The TLS handshake failed (the upstream's certificate is not trusted, or names another host).
    Tls(String),
    /// The response body passed the upstream's `max_response_bytes`.
    ResponseTooLarge,
    /// The upstream broke HTTP (a malformed response, a connection closed mid-answer).
    Protocol(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::ConnectFailed(m) => write!(f, "connect failed: {m}"),
            HttpError::Tls(m) => write!(f, "TLS: {m}"),
            HttpError::ResponseTooLarge => f.write_str("response too large"),
            HttpError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Why the gateway did not send a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestRefusal {
    /// The route's `upstreams` does not name this upstream.
    NotGranted,
    /// The upstream already has `max_in_flight` requests running on this worker, or this route its share of them
    /// (`max_in_flight_per_route`).
    TooManyInFlight,
    /// The body is over the upstream's `max_request_bytes`.
    TooLarge,
    /// The method, path or a header is not valid HTTP, or the path does not start with `/`.
    InvalidRequest,
    /// The owner is not a connection this instance serves.
    UnknownConnection,
    /// Sent from `init`.
    NotNow,
}

impl std::fmt::Display for RequestRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestRefusal::NotGranted => "the route is not granted this upstream",
            RequestRefusal::TooManyInFlight => "too many requests in flight",
            RequestRefusal::TooLarge => "request too large",
            RequestRefusal::InvalidRequest => "not a valid HTTP request",
            RequestRefusal::UnknownConnection => "unknown owner connection",
            RequestRefusal::NotNow => "requests cannot be sent now",
        })
    }
}

impl std::error::Error for RequestRefusal {}
