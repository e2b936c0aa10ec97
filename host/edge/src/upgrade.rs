//! The HTTP side of a connection: read the request head, then either upgrade it to a WebSocket on a route or answer
//! it with a small HTTP response.
//!
//! The head is read here (with httparse) rather than by tungstenite, because tungstenite writes no response for a
//! request it rejects: a client must get a 404, 400 or 426 it can read, never a hang.

use crate::compression;
use std::borrow::Cow;
use std::fmt::Write as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wssgate_deflate::offer::Agreement;
use wssgate_runtime::route::{Route, Routes};

/// The largest request head accepted; browsers send well under 2 KiB.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers accepted in one request.
const MAX_HEADERS: usize = 64;

/// The parts of the request that routing and the plugin need.
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header holds `token` (case-insensitive), in any of its occurrences.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The client closed or the socket failed before a full head arrived; nobody is left to answer.
    Gone,
    /// Not HTTP: answer 400.
    Malformed,
    /// Longer than [`MAX_HEAD`]: answer 431.
    TooLarge,
}

/// Reads one request head; returns it with any bytes the client sent after it (the start of its first frame).
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut scan = HeadScan::default();
    let read = read_head_scanned(stream, &mut scan).await;
    tracing::trace!(
        reads = scan.reads,
        parses = scan.parses,
        "request head read: {:?}",
        read.as_ref().map(|(head, _)| &head.path)
    );
    read
}

/// [`read_head`], keeping count in `scan`. The head is parsed only when it can have ended — when its first line
/// ended, its blank line arrived or the buffer is full — and once on the first read so that what is not HTTP at all
/// (a TLS hello on a plain listener) is answered at once: at most four passes over at most [`MAX_HEAD`] bytes,
/// however the client splits its bytes. (Parsing after every read would cost a client sending one byte at a time
/// quadratic CPU.)
async fn read_head_scanned<S: AsyncRead + Unpin>(
    stream: &mut S,
    scan: &mut HeadScan,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Read straight into the vector's spare room: a buffer on the stack would be kept in the handshake's future.
        buf.reserve(1024);
        let room = (MAX_HEAD - buf.len()) as u64;
        let n = (&mut *stream)
            .take(room)
            .read_buf(&mut buf)
            .await
            .map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
        let full = buf.len() >= MAX_HEAD;
        let check = scan.after_read(&buf);
        if check == Check::Wait && !full {
            continue;
        }
        scan.parses += 1;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = request.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let head = RequestHead {
                    method: request.method.unwrap_or("").to_owned(),
                    path: path.to_owned(),
                    query: query.to_owned(),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                };
                return Ok((head, buf.split_off(len)));
            }
            // A blank line ends every head: a parser that wants more after it does not read the head as HTTP.
            Ok(httparse::Status::Partial) if check == Check::Ended => {
                return Err(HeadError::Malformed);
            }
            Ok(httparse::Status::Partial) if !full => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooLarge);
            }
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

/// What the bytes read so far call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing new: read on.
    Wait,
    /// The first read, or the first line just ended: parse, to refuse what is not HTTP early.
    Parse,
    /// The head's blank line arrived: parse, and the head must be complete.
    Ended,
}

/// Where the search for the end of a head stands, so that each byte is looked at a bounded number of times.
#[derive(Debug, Default)]
struct HeadScan {
    /// Reads so far.
    reads: u32,
    /// Parses so far (at most one per [`Check`] other than `Wait`, and one when the buffer is full).
    parses: u32,
    /// The request line has begun: the empty lines a client may send before it (which httparse skips too) are
    /// behind, and are not taken for the blank line that ends the head.
    started: bool,
    /// Where the search for the next line end resumes.
    next: usize,
    /// The first line has ended.
    line_ended: bool,
}

impl HeadScan {
    /// Looks at the bytes `buf` gained with the last read.
    fn after_read(&mut self, buf: &[u8]) -> Check {
        self.reads += 1;
        let mut check = if self.reads == 1 {
            Check::Parse
        } else {
            Check::Wait
        };
        if !self.started {
            match buf[self.next..]
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n'))
            {
                Some(skipped) => {
                    self.next += skipped;
                    self.started = true;
                }
                None => {
                    self.next = buf.len();
                    return check;
                }
            }
        }
        // Bounded: each turn moves past one byte, or stops.
        while let Some(found) = buf[self.next..].iter().position(|&b| b == b'\n') {
            let at = self.next + found;
            if !self.line_ended {
                self.line_ended = true;
                check = Check::Parse;
            }
            // httparse ends a line at `\n` or `\r\n`, so a blank line follows this line end as `\n` or `\r\n`.
            match (buf.get(at + 1), buf.get(at + 2)) {
                (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => return Check::Ended,
                // Not known yet: look at this line end again after the next read.
                (None, _) | (Some(b'\r'), None) => {
                    self.next = at;
                    return check;
                }
                _ => self.next = at + 1,
            }
        }
        self.next = buf.len();
        check
    }
}

/// What to do with a request.
pub enum Answer<'r> {
    /// Upgrade to a WebSocket on `route`.
    Upgrade {
        route: &'r Route,
        accept_key: String,
        subprotocol: Option<String>,
        /// permessage-deflate, when the route has it on and the client offered what it accepts.
        deflate: Option<Agreement>,
    },
    /// Serve the built-in test page.
    Page,
    /// Answer with an HTTP error and close.
    Error {
        status: u16,
        reason: &'static str,
        extra: Cow<'static, str>,
        body: String,
    },
}

/// Decides how to answer `head`.
pub fn decide<'r>(head: &RequestHead, routes: &'r Routes) -> Answer<'r> {
    let is_upgrade =
        head.has_token("upgrade", "websocket") && head.has_token("connection", "upgrade");
    let Some(route) = routes.find(&head.path) else {
        if head.path == "/" && !is_upgrade && head.method == "GET" {
            return Answer::Page;
        }
        return error(
            404,
            "Not Found",
            "",
            format!("no route for {}\n", head.path),
        );
    };
    if head.method != "GET" {
        return error(
            405,
            "Method Not Allowed",
            "Allow: GET\r\n",
            "a WebSocket upgrade is a GET request\n".into(),
        );
    }
    if !is_upgrade {
        return error(
            426,
            "Upgrade Required",
            "Upgrade: websocket\r\n",
            format!(
                "{} is a WebSocket endpoint: connect with a WebSocket client\n",
                head.path
            ),
        );
    }
    if head.header("sec-websocket-version") != Some("13") {
        return error(
            426,
            "Upgrade Required",
            "Sec-WebSocket-Version: 13\r\n",
            "WebSocket version 13 only\n".into(),
        );
    }
    let Some(key) = head
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|k| k.len() == 24)
    else {
        return error(
            400,
            "Bad Request",
            "",
            "missing or invalid Sec-WebSocket-Key\n".into(),
        );
    };
    if !route.allowed_origins.is_empty() {
        let origin = head.header("origin").unwrap_or("");
        if !route
            .allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        {
            return error(
                403,
                "Forbidden",
                "",
                format!("origin {origin:?} may not connect to {}\n", head.path),
            );
        }
    }
    let subprotocol = route
        .subprotocols
        .iter()
        .find(|p| head.has_token("sec-websocket-protocol", p))
        .cloned();
    let offers = head
        .headers
        .iter()
        .filter(|(name, _)| name == "sec-websocket-extensions")
        .map(|(_, value)| value.as_str());
    let deflate = compression::agree(&route.compression, offers, head.header("user-agent"));
    Answer::Upgrade {
        route,
        accept_key: derive_accept_key(key.as_bytes()),
        subprotocol,
        deflate,
    }
}

fn error<'r>(
    status: u16,
    reason: &'static str,
    extra: impl Into<Cow<'static, str>>,
    body: String,
) -> Answer<'r> {
    Answer::Error {
        status,
        reason,
        extra: extra.into(),
        body,
    }
}

/// The answer when no more connections may open.
pub fn unavailable(body: &str) -> Answer<'static> {
    error(
        503,
        "Service Unavailable",
        "Retry-After: 1\r\n",
        body.to_owned(),
    )
}

/// 429 for an address whose clients keep making plugins trap, until `cooloff` has passed.
pub(crate) fn too_many_requests(cooloff: std::time::Duration) -> Answer<'static> {
    error(
        429,
        "Too Many Requests",
        format!("Retry-After: {}\r\n", cooloff.as_secs().max(1)),
        "too many plugin failures from your address; try again later\n".to_owned(),
    )
}

/// The longest body of a plugin's rejection that is sent.
const MAX_REJECTION_BODY: usize = 1024;

/// A plugin's HTTP answer refusing an upgrade: `status` when it is an error status (400 to 599), else 500; the body
/// cut to [`MAX_REJECTION_BODY`] bytes.
pub fn rejection(status: u16, body: &str) -> Answer<'static> {
    let status = if (400..=599).contains(&status) {
        status
    } else {
        tracing::warn!(
            "a plugin rejected an upgrade with status {status}, which is not an HTTP error; answering 500"
        );
        500
    };
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut end = body.len().min(MAX_REJECTION_BODY);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    error(status, reason, "", body[..end].to_owned())
}

/// The answer to a head that could not be parsed.
pub(crate) fn head_error(error: &HeadError) -> Option<Answer<'static>> {
    match error {
        HeadError::Gone => None,
        HeadError::Malformed => Some(self::error(
            400,
            "Bad Request",
            "",
            "malformed HTTP request\n".into(),
        )),
        HeadError::TooLarge => Some(self::error(
            431,
            "Request Header Fields Too Large",
            "",
            "request head too large\n".into(),
        )),
    }
}

/// The test page served at `/`: it runs the seed's check (connect to `/wss`, send `tom`, show the reply), and
/// loading it over https is how a newcomer accepts the development certificate.
const PAGE: &str = include_str!("page.html");

/// Writes the HTTP response for `answer`.
pub(crate) async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    answer: &Answer<'_>,
) -> std::io::Result<()> {
    let mut out = String::with_capacity(256);
    match answer {
        Answer::Upgrade {
            accept_key,
            subprotocol,
            deflate,
            ..
        } => {
            out.push_str(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            );
            let _ = write!(out, "Sec-WebSocket-Accept: {accept_key}\r\n");
            if let Some(p) = subprotocol {
                let _ = write!(out, "Sec-WebSocket-Protocol: {p}\r\n");
            }
            if let Some(agreement) = deflate {
                let _ = write!(out, "Sec-WebSocket-Extensions: {}\r\n", agreement.response);
            }
            out.push_str("\r\n");
        }
        Answer::Page => {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
        }
        Answer::Error {
            status,
            reason,
            extra,
            body,
        } => {
            let _ = write!(
                out,
                "HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }
    stream.write_all(out.as_bytes()).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// A client that sends one byte per read.
    struct Trickle(Vec<u8>, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Some(&byte) = self.0.get(self.1) {
                out.put_slice(&[byte]);
                self.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    async fn trickled(request: &[u8]) -> (Result<(RequestHead, Vec<u8>), HeadError>, HeadScan) {
        let mut scan = HeadScan::default();
        let read = read_head_scanned(&mut Trickle(request.to_vec(), 0), &mut scan).await;
        (read, scan)
    }

    #[tokio::test]
    async fn a_head_sent_a_byte_at_a_time_is_parsed_a_bounded_number_of_times() {
        let mut request = b"\r\nGET /wss?a=1 HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..60 {
            request.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(200)).as_bytes());
        }
        request.extend_from_slice(b"\r\nframe");
        assert!(request.len() > 12 * 1024);
        let (read, scan) = trickled(&request).await;
        let (head, rest) = read.unwrap();
        assert_eq!((head.path.as_str(), head.query.as_str()), ("/wss", "a=1"));
        assert_eq!(head.headers.len(), 61);
        assert_eq!(rest, b"");
        assert_eq!(scan.reads as usize, request.len() - 5);
        assert!(scan.parses <= 3, "{} parses", scan.parses);

        // Bare `\n` line ends, as httparse takes them too.
        let (read, scan) = trickled(b"GET / HTTP/1.1\nHost: x\n\n").await;
        assert_eq!(read.unwrap().0.headers.len(), 1);
        assert!(scan.parses <= 3, "{} parses", scan.parses);
    }

    #[tokio::test]
    async fn what_is_not_http_is_refused_without_waiting_and_a_head_too_long_at_its_bound() {
        let (read, scan) = trickled(b"\x16\x03\x01 hello").await;
        assert!(matches!(read, Err(HeadError::Malformed)), "{read:?}");
        assert_eq!(scan.reads, 1);
        let (read, _) = trickled(b"GET / HTTP/1.1\r\nBad Header\r\n").await;
        assert!(matches!(read, Err(HeadError::Gone)), "{read:?}");
        let (read, _) = trickled(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
        assert!(matches!(read, Err(HeadError::Malformed)), "{read:?}");

        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(MAX_HEAD + 100, b'a');
        let (read, scan) = trickled(&long).await;
        assert!(matches!(read, Err(HeadError::TooLarge)), "{read:?}");
        assert_eq!(
            scan.reads as usize, MAX_HEAD,
            "read no further than the bound"
        );
        assert!(scan.parses <= 3, "{} parses", scan.parses);

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(trickled(&many).await.0, Err(HeadError::TooLarge)));
    }
}
