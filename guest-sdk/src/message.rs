//! The values that travel between a plugin and its clients.

/// One complete WebSocket data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

impl Message {
    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes of either kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::Binary(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Message::Binary(bytes.to_vec())
    }
}

/// A close code (RFC 6455 section 7.4) with its reason. The host sends at most 123 bytes of reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: String,
}

impl CloseFrame {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// What the client's upgrade request carried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Path without the query, e.g. `/wss`.
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: String,
    /// Headers in the order sent, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The client's `ip:port` (behind a trusted proxy: the address the proxy reported).
    pub remote_address: String,
    /// The subprotocol negotiated from the route's list, if any.
    pub subprotocol: Option<String>,
    /// True when on-connect is replayed into a fresh plugin instance for an already open connection.
    pub restored: bool,
}

impl Request {
    /// A request for `path` from 127.0.0.1, for tests.
    pub fn new(path: &str) -> Self {
        Request {
            path: path.to_owned(),
            remote_address: "127.0.0.1:40000".to_owned(),
            ..Request::default()
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the gateway knows of an open connection (see [`crate::Connection::info`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub remote_address: String,
    pub subprotocol: Option<String>,
    /// When the WebSocket opened, in milliseconds since the Unix epoch.
    pub connected_at_ms: u64,
}
