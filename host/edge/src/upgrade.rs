//! The HTTP side of a connection: read the request head, then either upgrade it to a WebSocket on a route or answer
//! it with a small HTTP response.
//!
//! The head is read here (with httparse) rather than by tungstenite, because tungstenite writes no response for a
//! request it rejects: a client must get a 404, 400 or 426 it can read, never a hang.

use std::borrow::Cow;
use std::fmt::Write as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
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
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Read straight into the vector's spare room: a buffer on the stack would be kept in the handshake's future.
        buf.reserve(1024);
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
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
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooLarge);
            }
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

/// What to do with a request.
pub enum Answer<'r> {
    /// Upgrade to a WebSocket on `route`.
    Upgrade {
        route: &'r Route,
        accept_key: String,
        subprotocol: Option<String>,
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
    Answer::Upgrade {
        route,
        accept_key: derive_accept_key(key.as_bytes()),
        subprotocol,
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
            ..
        } => {
            out.push_str(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            );
            let _ = write!(out, "Sec-WebSocket-Accept: {accept_key}\r\n");
            if let Some(p) = subprotocol {
                let _ = write!(out, "Sec-WebSocket-Protocol: {p}\r\n");
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
