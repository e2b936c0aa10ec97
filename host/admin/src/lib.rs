//! The admin listener's push API, like GatewayWorker's GatewayClient: lets an existing web backend send to a user,
//! publish to a group, broadcast to a route, send to or close one connection (the webhook route's backends), and ask
//! whether a user is online or how big a group is. Connection ids are decimal strings (JavaScript numbers cannot
//! hold them) or numbers; binary messages are base64. Off unless
//! `[admin]` is configured; every request needs `Authorization: Bearer <token>`.
//!
//! It runs on its own thread and reaches connections through the [`Hub`], like a plugin on another worker would.
//! HTTP is hyper's (HTTP/1.1 with keep-alive; content-length and chunked bodies); everything a client sends is
//! bounded: the head's size and header count, the body's size, and the time to send the head, to send the body and
//! to take the response.

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message;
use wssgate_hub::metrics::Metrics;
use wssgate_hub::sync;
use wssgate_hub::{Hub, Reached};

/// The largest request body accepted: a 1 MiB binary message in base64, with room for the rest of the JSON.
const MAX_BODY: usize = 2 << 20;
/// How long a client may take to send a request's head (also how long a kept-alive connection may sit idle), then
/// its body; and how long a response may wait for a client that stopped reading it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) accepted: hyper answers 431 past it.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers accepted in one request: hyper answers 431 past it.
const MAX_HEADERS: usize = 64;
/// What /metrics is: the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What the push API needs from the gateway.
pub struct AdminApi {
    /// Served at /metrics.
    pub metrics: Arc<Metrics>,
    pub hub: Arc<Hub>,
    /// The bearer token every request must carry.
    pub token: String,
    /// The paths of the configured routes, which scope groups and users; replaced on reload.
    pub routes: Arc<RwLock<HashSet<String>>>,
    /// The link to the cluster's broker, when `[cluster]` is configured: `/healthz` and `/metrics` report it.
    pub cluster: Option<Arc<wssgate_cluster::LinkState>>,
}

/// Starts the admin listener on its own thread; returns the bound address.
pub fn start(
    address: SocketAddr,
    api: AdminApi,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let socket = std::net::TcpListener::bind(address)
        .with_context(|| format!("admin listener on {address}"))?;
    socket.set_nonblocking(true).context("admin listener")?;
    let bound = socket.local_addr().context("admin listener address")?;
    let api = Arc::new(api);
    let thread = std::thread::Builder::new()
        .name("wssgate-admin".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return tracing::error!("admin runtime: {e}"),
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(socket) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = shutdown.wait_for(|down| *down) => return,
                        accepted = listener.accept() => if let Ok((tcp, _)) = accepted {
                            tokio::spawn(connection(tcp, api.clone()));
                        },
                    }
                }
            });
        })
        .context("spawning the admin thread")?;
    Ok((bound, thread))
}

/// Serves one client's requests, one after the other, until it closes, errs or times out.
async fn connection(tcp: TcpStream, api: Arc<AdminApi>) {
    let service = service_fn(move |request| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(serve(&api, request).await) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(TokioIo::new(WriteTimeout::new(tcp)), service)
        .await;
}

/// Answers one request.
async fn serve(api: &AdminApi, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    match read_body(body).await {
        Ok(body) => {
            let (status, body) = answer(api, &head, &body);
            respond(status, body)
        }
        Err(status) => {
            // The rest of the body is not read: the connection cannot carry another request.
            let mut response = respond(status, json!({"error": "bad request body"}));
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Reads a request's whole body (content-length or chunked), at most [`MAX_BODY`] of it: 413 once it is longer
/// (before reading any of it when its declared length is), 408 when it takes longer than [`REQUEST_TIMEOUT`], 400
/// when it breaks off or is malformed.
async fn read_body(mut body: Incoming) -> Result<Vec<u8>, StatusCode> {
    let declared = body.size_hint().lower();
    if declared > MAX_BODY as u64 {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let read = async {
        let mut bytes = Vec::with_capacity(declared as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > MAX_BODY {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .unwrap_or(Err(StatusCode::REQUEST_TIMEOUT))
}

/// The response: `body` as JSON, or a string as the Prometheus text of /metrics.
fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let (text, content_type) = match body {
        Value::String(text) => (text, METRICS_CONTENT_TYPE),
        other => (other.to_string(), "application/json"),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The admin connection's socket, whose writes fail once they have made no progress for [`REQUEST_TIMEOUT`]: hyper
/// times reading a request head, but not writing a response to a client that stopped reading.
struct WriteTimeout {
    tcp: TcpStream,
    /// Running while a write waits.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteTimeout {
    fn new(tcp: TcpStream) -> Self {
        WriteTimeout { tcp, stalled: None }
    }

    /// Passes a write's result on, timing how long it has been waiting.
    fn timed<T>(
        &mut self,
        cx: &mut TaskContext<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(REQUEST_TIMEOUT)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.timed(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.timed(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_flush(cx);
        this.timed(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_shutdown(cx);
        this.timed(cx, poll)
    }
}

/// A request body: the route and what to do on it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Push {
    route: String,
    /// A text message; `binary` (base64) sends a binary one instead.
    message: Option<String>,
    binary: Option<String>,
    uid: Option<String>,
    group: Option<String>,
    /// `/api/send` and `/api/close`: the connection.
    connection: Option<Id>,
    #[serde(default)]
    exclude: Vec<Id>,
    /// `/api/close`: the close code (default 1000) and reason.
    code: Option<u16>,
    reason: Option<String>,
}

/// A connection id as a decimal string (what JavaScript backends can hold without losing precision) or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Number(u64),
    Text(String),
}

impl Id {
    fn parse(&self) -> Result<u64, String> {
        match self {
            Id::Number(n) => Ok(*n),
            Id::Text(text) => text
                .parse()
                .map_err(|_| format!("connection id {text:?} is not a decimal number")),
        }
    }
}

impl Push {
    /// The message to send: `message` as text, or `binary` decoded from base64.
    fn payload(&self) -> Result<Message, String> {
        use base64::Engine;
        match (&self.message, &self.binary) {
            (Some(text), None) => Ok(Message::text(text.clone())),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(Message::binary)
                .map_err(|e| format!("`binary` is not base64: {e}")),
            _ => Err("needs exactly one of `message` (text) and `binary` (base64)".into()),
        }
    }

    /// `/api/close`'s frame: a code a server may send (1000–1003, 1007–1011, 3000–4999) and a reason of at most
    /// 123 bytes.
    fn close_frame(&self) -> Result<Message, String> {
        let code = self.code.unwrap_or(1000);
        if !matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) {
            return Err(format!("close code {code} may not be sent by a server"));
        }
        let reason = self.reason.as_deref().unwrap_or("");
        if reason.len() > 123 {
            return Err("`reason` is longer than 123 bytes".into());
        }
        Ok(Message::Close(Some(wssgate_hub::outbound::close_frame(
            code, reason,
        ))))
    }
}

/// Runs a push (`/api/send-to-user`, `/api/publish`, `/api/broadcast`, `/api/send`, `/api/close`) on a known route.
fn push(api: &AdminApi, path: &str, push: Push) -> Result<usize, String> {
    let route = push.route.as_str();
    let exclude = push
        .exclude
        .iter()
        .map(Id::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let connection = push.connection.as_ref().map(Id::parse).transpose()?;
    Ok(match (path, &push.uid, &push.group, connection) {
        ("/api/send-to-user", Some(uid), _, _) => {
            api.hub.send_to_user(None, route, uid, push.payload()?)
        }
        ("/api/publish", _, Some(group), _) => {
            api.hub
                .publish(None, route, group, push.payload()?, &exclude)
        }
        ("/api/broadcast", _, _, _) => api.hub.broadcast(None, route, push.payload()?, &exclude),
        ("/api/send", _, _, Some(id)) => usize::from(
            api.hub.send_to_connection(None, route, id, push.payload()?) == Reached::Queued,
        ),
        ("/api/close", _, _, Some(id)) => usize::from(
            api.hub
                .send_to_connection(None, route, id, push.close_frame()?)
                == Reached::Queued,
        ),
        _ => {
            return Err(
                "send-to-user needs `uid`, publish needs `group`, send and close need `connection`"
                    .into(),
            );
        }
    })
}

fn answer(api: &AdminApi, head: &Parts, body: &[u8]) -> (StatusCode, Value) {
    let method = head.method.as_str();
    let path = head.uri.path();
    // Read-only and on loopback: scrapers and health checks need no token.
    match (method, path) {
        ("GET", "/healthz") => {
            // A node whose broker is away still serves its own clients: degraded, not down.
            let degraded = api.cluster.as_ref().is_some_and(|c| !c.is_connected());
            let status = if degraded { "degraded" } else { "ok" };
            return (StatusCode::OK, json!({"status": status}));
        }
        ("GET", "/metrics") => {
            let mut text = api.metrics.render();
            if let Some(cluster) = &api.cluster {
                cluster.render(&mut text);
            }
            return (StatusCode::OK, Value::String(text));
        }
        _ => {}
    }
    let authorized = head
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| constant_time_eq(token.trim().as_bytes(), api.token.as_bytes()));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong bearer token"}),
        );
    }
    let query: HashMap<&str, String> = head
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, percent_decode(v)))
        .collect();
    let known = |path: &str| sync::read(&api.routes).contains(path);
    let route_of =
        |path: Option<&'_ String>| -> Option<String> { path.filter(|p| known(p)).cloned() };
    match (method, path) {
        ("GET", "/api/user-online") => match (route_of(query.get("route")), query.get("uid")) {
            (Some(route), Some(uid)) => {
                let connections = api.hub.connections_of_user(&route, uid).len();
                (
                    StatusCode::OK,
                    json!({"online": connections > 0, "connections": connections}),
                )
            }
            _ => (
                StatusCode::BAD_REQUEST,
                json!({"error": "needs a known `route` and a `uid`"}),
            ),
        },
        ("GET", "/api/group-size") => match (route_of(query.get("route")), query.get("group")) {
            (Some(route), Some(group)) => (
                StatusCode::OK,
                json!({"members": api.hub.group_size(&route, group)}),
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                json!({"error": "needs a known `route` and a `group`"}),
            ),
        },
        (
            "POST",
            path @ ("/api/send-to-user" | "/api/publish" | "/api/broadcast" | "/api/send"
            | "/api/close"),
        ) => {
            let parsed: Push = match serde_json::from_slice(body) {
                Ok(parsed) => parsed,
                Err(e) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("bad JSON: {e}")}),
                    );
                }
            };
            if !known(&parsed.route) {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("no route {}", parsed.route)}),
                );
            }
            match push(api, path, parsed) {
                Ok(delivered) => (StatusCode::OK, json!({"delivered": delivered})),
                Err(error) => (StatusCode::BAD_REQUEST, json!({"error": error})),
            }
        }
        (
            _,
            "/api/user-online" | "/api/group-size" | "/api/send-to-user" | "/api/publish"
            | "/api/broadcast" | "/api/send" | "/api/close",
        ) => (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "wrong method"}),
        ),
        _ => (StatusCode::NOT_FOUND, json!({"error": "no such endpoint"})),
    }
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes `%XX` escapes and `+` in a query value.
fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? << 4 | hex(bytes[i + 2])?))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, other) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("%2Fchat"), "/chat");
        assert_eq!(percent_decode("room%3Alobby+x"), "room:lobby x");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
