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

/// A message to send, seen in place: what the sending calls hand to the gateway. It borrows the plugin's own data, so
/// sending copies the bytes once, straight into the gateway, and allocates nothing inside the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl Payload<'_> {
    /// An owned copy, for the mock host's records.
    pub fn to_message(self) -> Message {
        match self {
            Payload::Text(text) => Message::Text(text.to_owned()),
            Payload::Binary(bytes) => Message::Binary(bytes.to_vec()),
        }
    }
}

/// What the sending calls ([`crate::Connection::send`], [`crate::groups::publish`], …) take: text (`&str`,
/// `String`) is sent as a text message, bytes (`&[u8]`, `Vec<u8>`, `&[u8; N]`) as a binary one, a [`Message`] as
/// what it is — owned or borrowed alike.
pub trait Outgoing {
    fn payload(&self) -> Payload<'_>;
}

impl Outgoing for str {
    fn payload(&self) -> Payload<'_> {
        Payload::Text(self)
    }
}

impl Outgoing for String {
    fn payload(&self) -> Payload<'_> {
        Payload::Text(self)
    }
}

impl Outgoing for [u8] {
    fn payload(&self) -> Payload<'_> {
        Payload::Binary(self)
    }
}

impl<const N: usize> Outgoing for [u8; N] {
    fn payload(&self) -> Payload<'_> {
        Payload::Binary(self)
    }
}

impl Outgoing for Vec<u8> {
    fn payload(&self) -> Payload<'_> {
        Payload::Binary(self)
    }
}

impl Outgoing for Message {
    fn payload(&self) -> Payload<'_> {
        match self {
            Message::Text(text) => Payload::Text(text),
            Message::Binary(bytes) => Payload::Binary(bytes),
        }
    }
}

impl<T: Outgoing + ?Sized> Outgoing for &T {
    fn payload(&self) -> Payload<'_> {
        (**self).payload()
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
    /// True when on-connect is replayed into a fresh plugin instance (the old one trapped) for a connection the
    /// old one knew (open, or waiting for its answer). For a connection that is already open, `Accept` and `Defer` both keep it open (the
    /// client got its 101 long ago) and `Reject` closes it with 1008 and the rejection's body as the reason; a
    /// connection still waiting for its answer gets it as usual.
    pub restored: bool,
}

impl Request {
    /// A request for `target` (a path, with a query after `?` if any) from 127.0.0.1, for tests.
    pub fn new(target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            path: path.to_owned(),
            query: query.to_owned(),
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
    /// When the upgrade request arrived, in milliseconds since the Unix epoch.
    pub connected_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockHost;
    use crate::{Connection, Plugin};

    /// What `value` goes out as, taken the way the sending calls take it.
    fn sent(value: impl Outgoing) -> Message {
        value.payload().to_message()
    }

    #[test]
    fn text_is_sent_as_text_and_bytes_as_binary_owned_or_borrowed() {
        let owned = String::from("owned");
        let message = Message::Binary(vec![9, 9]);
        assert_eq!("hi".payload(), Payload::Text("hi"));
        assert_eq!(owned.payload(), Payload::Text("owned"));
        assert_eq!(sent(&owned), Message::from("owned"));
        assert_eq!(b"ab".payload(), Payload::Binary(b"ab"));
        assert_eq!(vec![1u8, 2].payload(), Payload::Binary(&[1, 2]));
        assert_eq!([3u8][..].payload(), Payload::Binary(&[3]));
        assert_eq!(message.payload(), Payload::Binary(&[9, 9]));
        assert_eq!(sent(&message), message);
        assert_eq!(
            Message::from("t").payload().to_message(),
            Message::from("t")
        );
    }

    /// Sends the message it got back both borrowed and owned, and a fixed byte string.
    #[derive(Default)]
    struct Twice;

    impl Plugin for Twice {
        type State = ();
        fn on_message(&mut self, conn: Connection, _: &mut (), message: Message) {
            let _ = conn.send(&message);
            let _ = conn.send(message);
            let _ = conn.send(b"end");
        }
    }
    crate::export_plugin!(Twice);

    #[test]
    fn every_sendable_form_reaches_the_client_unchanged() {
        let host = MockHost::<Twice>::new();
        let conn = host.connect("/twice").unwrap();
        host.message(conn, "tom");
        assert_eq!(
            host.take_sent(conn),
            vec![
                Message::from("tom"),
                Message::from("tom"),
                Message::Binary(b"end".to_vec())
            ]
        );
    }
}
