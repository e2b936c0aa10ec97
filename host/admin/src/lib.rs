//! The admin listener's push API, like GatewayWorker's GatewayClient: lets an existing web backend send to a user,
//! publish to a group, broadcast to a route, send to or close one connection (the webhook route's backends), and ask
//! whether a user is online or how big a group is. Connection ids are decimal strings (JavaScript numbers cannot
//! hold them) or numbers; binary messages are base64. Off unless
//! `[admin]` is configured; every request needs `Authorization: Bearer <token>`.
//!
//! It runs on its own thread and reaches connections through the [`Hub`], like a plugin on another worker would.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use wssgate_edge::upgrade::{self, RequestHead};
use wssgate_hub::metrics::Metrics;
use wssgate_hub::{Hub, Reached};

/// The largest request body accepted: a 1 MiB binary message in base64, with room for the rest of the JSON.
const MAX_BODY: usize = 2 << 20;
/// How long a client may take to send a request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return tracing::error!("admin runtime: {e}"),
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(socket) else { return };
                loop {
                    tokio::select! {
                        _ = shutdown.wait_for(|down| *down) => return,
                        accepted = listener.accept() => if let Ok((tcp, _)) = accepted {
                            let api = api.clone();
                            tokio::spawn(async move {
                                let _ = tokio::time::timeout(REQUEST_TIMEOUT, serve(tcp, &api)).await;
                            });
                        },
                    }
                }
            });
        })
        .context("spawning the admin thread")?;
    Ok((bound, thread))
}

async fn serve(mut tcp: TcpStream, api: &AdminApi) {
    let (status, body) = match upgrade::read_head(&mut tcp).await {
        Ok((head, rest)) => match read_body(&mut tcp, &head, rest).await {
            Ok(body) => answer(api, &head, &body),
            Err(status) => (status, json!({"error": "bad request body"})),
        },
        Err(_) => (400, json!({"error": "malformed request"})),
    };
    // /metrics is Prometheus text, everything else JSON.
    let (text, content_type) = match body {
        Value::String(text) => (text, "text/plain; version=0.0.4"),
        other => (other.to_string(), "application/json"),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Payload Too Large",
    };
    let auth = if status == 401 {
        "WWW-Authenticate: Bearer\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

async fn read_body(
    tcp: &mut TcpStream,
    head: &RequestHead,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, u16> {
    let length: usize = head
        .header("content-length")
        .map_or(Ok(0), |v| v.trim().parse())
        .map_err(|_| 400u16)?;
    if length > MAX_BODY {
        return Err(413);
    }
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = tcp.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(body)
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

fn answer(api: &AdminApi, head: &RequestHead, body: &[u8]) -> (u16, Value) {
    // Read-only and on loopback: scrapers and health checks need no token.
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/healthz") => {
            // A node whose broker is away still serves its own clients: degraded, not down.
            let degraded = api.cluster.as_ref().is_some_and(|c| !c.is_connected());
            let status = if degraded { "degraded" } else { "ok" };
            return (200, json!({"status": status}));
        }
        ("GET", "/metrics") => {
            let mut text = api.metrics.render();
            if let Some(cluster) = &api.cluster {
                cluster.render(&mut text);
            }
            return (200, Value::String(text));
        }
        _ => {}
    }
    let authorized = head
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| constant_time_eq(token.trim().as_bytes(), api.token.as_bytes()));
    if !authorized {
        return (401, json!({"error": "missing or wrong bearer token"}));
    }
    let query: HashMap<&str, String> = head
        .query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, percent_decode(v)))
        .collect();
    let known = |path: &str| {
        api.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(path)
    };
    let route_of =
        |path: Option<&'_ String>| -> Option<String> { path.filter(|p| known(p)).cloned() };
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/api/user-online") => match (route_of(query.get("route")), query.get("uid")) {
            (Some(route), Some(uid)) => {
                let connections = api.hub.connections_of_user(&route, uid).len();
                (
                    200,
                    json!({"online": connections > 0, "connections": connections}),
                )
            }
            _ => (400, json!({"error": "needs a known `route` and a `uid`"})),
        },
        ("GET", "/api/group-size") => match (route_of(query.get("route")), query.get("group")) {
            (Some(route), Some(group)) => {
                (200, json!({"members": api.hub.group_size(&route, group)}))
            }
            _ => (400, json!({"error": "needs a known `route` and a `group`"})),
        },
        (
            "POST",
            path @ ("/api/send-to-user" | "/api/publish" | "/api/broadcast" | "/api/send"
            | "/api/close"),
        ) => {
            let parsed: Push = match serde_json::from_slice(body) {
                Ok(parsed) => parsed,
                Err(e) => return (400, json!({"error": format!("bad JSON: {e}")})),
            };
            if !known(&parsed.route) {
                return (400, json!({"error": format!("no route {}", parsed.route)}));
            }
            match push(api, path, parsed) {
                Ok(delivered) => (200, json!({"delivered": delivered})),
                Err(error) => (400, json!({"error": error})),
            }
        }
        (
            _,
            "/api/user-online" | "/api/group-size" | "/api/send-to-user" | "/api/publish"
            | "/api/broadcast" | "/api/send" | "/api/close",
        ) => (405, json!({"error": "wrong method"})),
        _ => (404, json!({"error": "no such endpoint"})),
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
