//! The admin listener's push API, like GatewayWorker's GatewayClient: lets an existing web backend send to a user,
//! publish to a group, broadcast to a route, send to or close one connection (the webhook route's backends), and ask
//! whether a user is online or how big a group is. Connection ids are decimal strings (JavaScript numbers cannot
//! hold them) or numbers; binary messages are base64. Off unless `[admin]` is configured; every request needs
//! `Authorization: Bearer <token>` but `/healthz`, and `/metrics` when no `metrics_token` is set.
//!
//! It runs on its own thread and reaches connections through the [`Hub`], like a plugin on another worker would.
//! HTTP is hyper's (HTTP/1.1 with keep-alive; content-length and chunked bodies); everything a client sends is
//! bounded: the connections open at once, the head's size and header count, the body's size, and the time to send
//! the head, to send the body and to take the response. The token is checked from the head, before any of the body
//! is read, and an address that keeps failing it is answered 429 for a while, so guessing it is slow as well as
//! hopeless. The tokens are the running config's: a reload replaces them. `/api/status` ([`status`]) is what
//! `wssgate status` shows.

// For the fuzz targets in `fuzz/` only: the request handling they run (see the module's doc).
#[doc(hidden)]
pub mod fuzzing;
mod status;

pub use status::ProcessInfo;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message;
use wssgate_hub::metrics::{CapHit, Metrics};
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
/// Failed token checks one address may make per window; past them, its requests that need a token get 429 until
/// the window ends, whatever token they carry (else the guessing would go on).
const MAX_TOKEN_FAILURES: u32 = 10;
const TOKEN_FAILURE_WINDOW: Duration = Duration::from_secs(10);
/// Addresses whose failures are remembered at once; past it (after forgetting the expired ones), new addresses
/// share one record, so a flood from many addresses cannot grow the table.
const TOKEN_FAILURE_ADDRESSES: usize = 4096;
/// The record those addresses share (no client has the unspecified address).
const SHARED_FAILURES: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
/// The back-off between failed accepts (out of file descriptors, say): doubling from the first to the last, so a
/// listener that cannot accept does not spin a core, and retries within a second once it can again.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_LAST: Duration = Duration::from_secs(1);
/// What a connection past `[admin] max_connections` gets before it is closed.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\
Retry-After: 1\r\nConnection: close\r\n\r\n{\"error\":\"too many admin connections\"}";

/// The tokens the admin listener accepts; a reload replaces them. Not `Debug`, so they cannot end up in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Every request needs it, except `/healthz`.
    pub token: String,
    /// When set, `/metrics` needs it (or `token`); else `/metrics` needs none.
    pub metrics_token: Option<String>,
}

/// What the push API needs from the gateway.
pub struct AdminApi {
    /// Served at /metrics.
    pub metrics: Arc<Metrics>,
    pub hub: Arc<Hub>,
    /// The bearer tokens requests must carry; replaced on reload.
    pub tokens: Arc<RwLock<Tokens>>,
    /// The paths of the configured routes, which scope groups and users; replaced on reload.
    pub routes: Arc<RwLock<HashSet<String>>>,
    /// The link to the cluster's broker, when `[cluster]` is configured: `/healthz` and `/metrics` report it.
    pub cluster: Option<Arc<wssgate_cluster::LinkState>>,
    /// Admin connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// What a client address counts as: token failures count an IPv6 client by its network
    /// (`ipv6_prefix_len`), like every per-address cap.
    pub admission: Arc<wssgate_hub::admission::Admission>,
    /// The process's start, config and last reload, for `/api/status`.
    pub process: Arc<status::ProcessInfo>,
    /// Where routes' history and storage are kept, when some route has either: `/healthz` reports it.
    pub store: Option<Arc<dyn wssgate_storage::Store>>,
}

/// The admin listener's state beyond what the gateway hands it.
struct Served {
    api: AdminApi,
    failures: Mutex<TokenFailures>,
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
    let slots = Arc::new(Semaphore::new(api.max_connections));
    let served = Arc::new(Served {
        api,
        failures: Mutex::default(),
    });
    // Made here rather than on the thread, so that a gateway that cannot make them (no file descriptors left, say)
    // fails to start instead of serving without its admin API.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("admin listener's runtime")?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(socket).context("admin listener")?
    };
    let thread = std::thread::Builder::new()
        .name("wssgate-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut backoff = Duration::ZERO;
                let mut failed = 0u64;
                loop {
                    let accepted = tokio::select! {
                        _ = shutdown.wait_for(|down| *down) => return,
                        accepted = listener.accept() => accepted,
                    };
                    match accepted {
                        Ok((tcp, peer)) => {
                            if failed > 0 {
                                tracing::info!("admin listener: accepting again after {failed} failed accepts");
                                (failed, backoff) = (0, Duration::ZERO);
                            }
                            admit(tcp, peer, &slots, &served);
                        }
                        Err(e) => {
                            failed += 1;
                            backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_FIRST, ACCEPT_BACKOFF_LAST);
                            if failed == 1 {
                                tracing::warn!(
                                    "admin listener: accept failed ({e}); retrying at most every {ACCEPT_BACKOFF_LAST:?} \
                                     until it works"
                                );
                            }
                            tokio::select! {
                                _ = shutdown.wait_for(|down| *down) => return,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                        }
                    }
                }
            });
        })
        .context("spawning the admin thread")?;
    Ok((bound, thread))
}

/// Serves an accepted connection if one of the `max_connections` places is free; else answers 503 without reading
/// anything and closes it.
fn admit(tcp: TcpStream, peer: SocketAddr, slots: &Arc<Semaphore>, served: &Arc<Served>) {
    match slots.clone().try_acquire_owned() {
        Ok(slot) => {
            let peer = peer.ip().to_canonical();
            tokio::spawn(connection(tcp, peer, served.clone(), slot));
        }
        Err(_) => {
            served.api.metrics.cap_hit(0, CapHit::AdminConnections);
            tracing::debug!(%peer, "admin connection refused: `max_connections` are open");
            // One write straight to the socket (the runtime has not polled a fresh socket's readiness yet), never
            // waiting: a client that cannot take 200 bytes at once gets the close alone.
            if let Ok(socket) = tcp.into_std() {
                let _ = std::io::Write::write(&mut &socket, BUSY);
            }
        }
    }
}

/// Serves one client's requests, one after the other, until it closes, errs or times out; `_slot` is its place
/// under `max_connections`, given back when it ends.
async fn connection(
    tcp: TcpStream,
    peer: IpAddr,
    served: Arc<Served>,
    _slot: OwnedSemaphorePermit,
) {
    serve_connection(WriteTimeout::new(tcp), peer, served).await;
}

/// Serves the requests that come in on `io` from `peer` (a connection's socket; the fuzz targets' bytes in memory).
async fn serve_connection<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    peer: IpAddr,
    served: Arc<Served>,
) {
    let service = service_fn(move |request| {
        let served = served.clone();
        async move { Ok::<_, Infallible>(serve(&served, peer, request).await) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// What a request needs before its body is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    /// `/metrics`: the metrics token (or the admin token), when one is configured.
    MetricsToken,
    Token,
}

/// Answers one request from `peer`: its token is checked from the head, and its body read only once it passed, and
/// only for a push.
async fn serve(served: &Served, peer: IpAddr, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    let needs = match (head.method.as_str(), head.uri.path()) {
        ("GET", "/healthz") => Needs::Nothing,
        ("GET", "/metrics") => Needs::MetricsToken,
        _ => Needs::Token,
    };
    let (status, reply) = match served.authorize(peer, &head, needs) {
        Err(refused) => refused,
        Ok(()) if head.method != Method::POST => {
            // Only a push (a POST) has a body to read. Any other request's is left unread, so that a request needing
            // no token (/healthz, /metrics without its token) cannot hold the connection reading up to 2 MiB; a
            // connection whose body was left cannot carry another request.
            let unread = !body.is_end_stream();
            let (status, reply) = answer(&served.api, &head, &[]);
            let mut response = respond(status, reply);
            if unread {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
        Ok(()) => match read_body(body).await {
            Ok(body) => answer(&served.api, &head, &body),
            Err(status) => {
                // The rest of the body is not read: the connection cannot carry another request.
                let mut response = respond(status, json!({"error": "bad request body"}));
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
        },
    };
    let mut response = respond(status, reply);
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    ) {
        // Whatever body the request has is not read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = TOKEN_FAILURE_WINDOW.as_secs().to_string();
            if let Ok(value) = HeaderValue::from_str(&wait) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
    }
    response
}

impl Served {
    /// Checks the bearer token `needs`, from the head alone: 401 when it is missing or wrong (counted against
    /// `peer`), 429 while `peer` has failed too often.
    fn authorize(
        &self,
        peer: IpAddr,
        head: &Parts,
        needs: Needs,
    ) -> Result<(), (StatusCode, Value)> {
        let accepted: Vec<String> = {
            let tokens = sync::read(&self.api.tokens);
            match (needs, &tokens.metrics_token) {
                (Needs::Nothing, _) | (Needs::MetricsToken, None) => return Ok(()),
                (Needs::MetricsToken, Some(metrics)) => vec![metrics.clone(), tokens.token.clone()],
                (Needs::Token, _) => vec![tokens.token.clone()],
            }
        };
        let now = Instant::now();
        let peer = self.api.admission.group(peer);
        let mut failures = sync::lock(&self.failures);
        if failures.throttled(peer, now) {
            self.api.metrics.cap_hit(0, CapHit::AdminThrottled);
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "too many wrong tokens from this address; try again later"}),
            ));
        }
        let presented = head
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 9110, 11.1): `bearer` is Bearer.
            .and_then(|v| {
                v.get(..7)
                    .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                    .map(|_| &v[7..])
            })
            .map(|token| token.trim().as_bytes());
        // Every accepted token is compared, in time independent of which (if any) matches.
        let matched = presented.is_some_and(|presented| {
            accepted.iter().fold(false, |any, token| {
                constant_time_eq(presented, token.as_bytes()) | any
            })
        });
        if matched {
            return Ok(());
        }
        failures.failed(peer, now);
        self.api.metrics.cap_hit(0, CapHit::AdminTokenFailures);
        Err((
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong bearer token"}),
        ))
    }
}

/// Recent failed token checks by client address.
#[derive(Default)]
struct TokenFailures {
    by_address: HashMap<IpAddr, FailureWindow>,
}

/// One address's failures in its current window.
struct FailureWindow {
    started: Instant,
    failures: u32,
}

impl TokenFailures {
    /// Whether `peer` has used up its failures in its current window — or, when the table is full and has no
    /// record of `peer`'s, whether the record shared by the addresses it had no room for has: that is where
    /// [`failed`](Self::failed) counts them, so a flood of addresses cannot get past the table unthrottled.
    fn throttled(&self, peer: IpAddr, now: Instant) -> bool {
        let used_up = |key: &IpAddr| {
            self.by_address.get(key).is_some_and(|w| {
                now.duration_since(w.started) < TOKEN_FAILURE_WINDOW
                    && w.failures >= MAX_TOKEN_FAILURES
            })
        };
        if self.by_address.contains_key(&peer) {
            return used_up(&peer);
        }
        self.by_address.len() >= TOKEN_FAILURE_ADDRESSES && used_up(&SHARED_FAILURES)
    }

    /// Counts a failure of `peer`'s.
    fn failed(&mut self, peer: IpAddr, now: Instant) {
        let expired = |w: &FailureWindow| now.duration_since(w.started) >= TOKEN_FAILURE_WINDOW;
        let mut key = peer;
        if !self.by_address.contains_key(&peer) && self.by_address.len() >= TOKEN_FAILURE_ADDRESSES
        {
            self.by_address.retain(|_, w| !expired(w));
            if self.by_address.len() >= TOKEN_FAILURE_ADDRESSES {
                key = SHARED_FAILURES;
            }
        }
        let window = self.by_address.entry(key).or_insert(FailureWindow {
            started: now,
            failures: 0,
        });
        if expired(&*window) {
            *window = FailureWindow {
                started: now,
                failures: 0,
            };
        }
        window.failures += 1;
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
    // Authorized already (see `Served::authorize`).
    match (method, path) {
        ("GET", "/healthz") => {
            // A node whose broker (or store) is away still serves its own clients: degraded, not down.
            let broker_away = api.cluster.as_ref().is_some_and(|c| !c.is_connected());
            let store = api.store.as_ref().map(|s| s.health());
            let mut answer = json!({"status": "ok"});
            if let Some(wssgate_storage::Health::Degraded(why)) = &store {
                answer["store"] = json!(why);
            }
            if broker_away || answer.get("store").is_some() {
                answer["status"] = json!("degraded");
            }
            return (StatusCode::OK, answer);
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
        ("GET", "/api/status") => (StatusCode::OK, status::status(api)),
        ("GET", "/api/connections") => {
            let route = query.get("route");
            if route.is_some_and(|r| !known(r)) {
                return (StatusCode::BAD_REQUEST, json!({"error": "no such route"}));
            }
            let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
                None => status::CONNECTIONS_LIMIT,
                Some(Ok(limit)) => limit.min(status::CONNECTIONS_LIMIT),
                Some(Err(_)) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({"error": "`limit` is a number"}),
                    );
                }
            };
            (
                StatusCode::OK,
                status::connections(api, route.map(String::as_str), limit),
            )
        }
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
    fn token_failures_count_an_ipv6_client_by_its_network() {
        let limits = wssgate_config::limits::Limits::default();
        let metrics = Arc::new(Metrics::new(Vec::new(), 1));
        let (hub, _deliveries) = Hub::new(1, limits.max_worker_queue_bytes, metrics.clone());
        let served = Served {
            api: AdminApi {
                metrics,
                hub,
                tokens: Arc::new(RwLock::new(Tokens {
                    token: "0123456789abcdef".into(),
                    metrics_token: None,
                })),
                routes: Arc::default(),
                cluster: None,
                max_connections: 1,
                admission: wssgate_hub::admission::Admission::new(&limits),
                process: Arc::new(ProcessInfo::new("test.toml".into())),
                store: None,
            },
            failures: Mutex::default(),
        };
        let head = |token: &str| {
            hyper::Request::builder()
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for n in 0..MAX_TOKEN_FAILURES {
            // A different address of the same /64 each time.
            let peer = ip(&format!("2001:db8:0:1::{:x}", n + 1));
            let refused = served.authorize(peer, &head("wrong"), Needs::Token);
            assert_eq!(refused.unwrap_err().0, StatusCode::UNAUTHORIZED);
        }
        let same_64 = ip("2001:db8:0:1:ffff::1");
        let right = served.authorize(same_64, &head("0123456789abcdef"), Needs::Token);
        assert_eq!(right.unwrap_err().0, StatusCode::TOO_MANY_REQUESTS);
        let other_64 = ip("2001:db8:0:2::1");
        assert!(
            served
                .authorize(other_64, &head("0123456789abcdef"), Needs::Token)
                .is_ok()
        );
        for scheme in ["bearer", "BEARER"] {
            let head = hyper::Request::builder()
                .header(header::AUTHORIZATION, format!("{scheme} 0123456789abcdef"))
                .body(())
                .unwrap()
                .into_parts()
                .0;
            assert!(
                served.authorize(other_64, &head, Needs::Token).is_ok(),
                "{scheme}"
            );
        }
    }

    #[test]
    fn token_failures_throttle_an_address_for_its_window_and_the_table_stays_bounded() {
        let mut failures = TokenFailures::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let start = Instant::now();
        for _ in 0..MAX_TOKEN_FAILURES {
            assert!(!failures.throttled(a, start));
            failures.failed(a, start);
        }
        assert!(failures.throttled(a, start));
        assert!(!failures.throttled(b, start));
        assert!(
            !failures.throttled(a, start + TOKEN_FAILURE_WINDOW),
            "the window ended"
        );
        // A flood from many addresses: past the table's size, new ones share one record.
        for n in 0..(TOKEN_FAILURE_ADDRESSES as u32 * 2) {
            failures.failed(IpAddr::from(n.to_be_bytes()), start);
        }
        assert_eq!(failures.by_address.len(), TOKEN_FAILURE_ADDRESSES + 1);
        // and any address the table has no room for is throttled by that record, as it is counted there.
        let newcomer = IpAddr::from((TOKEN_FAILURE_ADDRESSES as u32 * 3).to_be_bytes());
        assert!(failures.throttled(newcomer, start));
        assert!(!failures.throttled(newcomer, start + TOKEN_FAILURE_WINDOW));
        // Once their windows are over, the expired records make room again.
        failures.failed(b, start + TOKEN_FAILURE_WINDOW);
        assert_eq!(failures.by_address.len(), 1);
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
