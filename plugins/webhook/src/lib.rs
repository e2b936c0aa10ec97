//! `webhook`: a WebSocket API for any web backend, without plugin code — like AWS API Gateway's WebSocket APIs.
//! Each connection's life becomes HTTP calls to the upstream named by the route setting `upstream`:
//!
//! - `POST /connect` before the upgrade is answered (the upgrade is deferred): a 2xx accepts (its optional JSON
//!   names a `uid`, `groups` to join and a `reply`), a 4xx rejects with that status, anything else fails closed
//!   (502, or 504 when the backend timed out);
//! - `POST /message` for each message, one at a time per connection, in order: later ones wait (see [`waiting`]
//!   for their bounds, `max_queued_messages`, `max_queued_bytes` and `max_queued_bytes_total`, and whom they close
//!   with 1008); a 2xx's JSON actions apply in order; a failed call or a bad answer is logged (and counted in
//!   /metrics) and applies nothing;
//! - `POST /disconnect` once an accepted connection closes.
//!
//! The backend pushes at any time through the gateway's push API (`/api/send`, `/api/close`, …). With the route
//! setting `secret`, every call is signed (see [`signing`]). The wire protocol is in [`wire`] and the README.

pub mod signing;
pub mod waiting;
pub mod wire;

use std::collections::BTreeMap;
use waiting::{Full, Waiting};
use wssgate_sdk::http::{self, HttpError, Response, Sent};
use wssgate_sdk::{
    CloseFrame, Connection, Connections, HttpEvents, Message, Plugin, Request, Settings, Verdict,
};

/// Per-connection queue bound when the route does not set `max_queued_messages`.
const DEFAULT_MAX_QUEUED: usize = 64;
/// The most bytes of messages one connection may have waiting for the backend, when the route does not set
/// `max_queued_bytes`: room for two full-size (1 MiB) messages.
const DEFAULT_MAX_QUEUED_BYTES: usize = 2 << 20;
/// The most bytes of messages waiting for the backend over all of an instance's connections, when the route does
/// not set `max_queued_bytes_total`: well inside the instance's default 64 MiB of memory. With the per-connection
/// bound, one client alone cannot fill it.
const DEFAULT_MAX_QUEUED_BYTES_TOTAL: usize = 16 << 20;
/// Session keys that survive an instance replacement: whether the backend accepted the connection, and its uid.
const ACCEPTED_KEY: &str = "webhook.accepted";
const UID_KEY: &str = "webhook.uid";
/// Set while a `/message` call is in flight, so a replacement instance can say that one was dropped.
const BUSY_KEY: &str = "webhook.busy";

pub struct Webhook {
    upstream: String,
    secret: Option<String>,
    /// Every connection's messages waiting behind its call in flight.
    waiting: Waiting,
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook {
            upstream: String::new(),
            secret: None,
            waiting: Waiting::new(
                DEFAULT_MAX_QUEUED,
                DEFAULT_MAX_QUEUED_BYTES,
                DEFAULT_MAX_QUEUED_BYTES_TOTAL,
            ),
        }
    }
}

/// What the webhook keeps per connection.
#[derive(Default)]
pub struct Client {
    uid: Option<String>,
    /// The backend accepted the connection (its `/disconnect` is due when it closes).
    accepted: bool,
    /// A `/connect` or `/message` call is waiting for its answer.
    in_flight: bool,
    /// The client's IP, which its messages waiting count under.
    address: String,
    /// The session says a `/message` call is under way (set once per busy spell, not per message).
    busy: bool,
}

impl Webhook {
    /// POSTs `body` to `path` on the upstream, signed when a secret is set, for `owner` (cancelled if it closes).
    fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        owner: Option<Connection>,
    ) -> Result<Sent, http::RequestRefusal> {
        let mut request =
            http::Request::post(&self.upstream, path).header("content-type", "application/json");
        if let Some(secret) = &self.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // Without a nonce the call could not be told from a replay: it is not sent unsigned.
            let nonce = signing::nonce().map_err(|e| {
                log::error!("no random nonce for a signed call ({e}); not sending it");
                http::RequestRefusal::InvalidRequest
            })?;
            for (name, value) in signing::headers(secret, ("POST", path), now, &nonce, &body) {
                request = request.header(name, &value);
            }
        }
        if let Some(owner) = owner {
            request = request.owner(owner);
        }
        request.body(body).send()
    }

    /// Sends the connection's next messages to the backend while none is in flight.
    fn send_next(&mut self, conn: Connection, client: &mut Client) {
        // Bounded by the queue: each turn takes one message off it.
        while !client.in_flight {
            let Some(message) = self.waiting.pop(conn.id()) else {
                if client.busy {
                    client.busy = false;
                    conn.session_remove(BUSY_KEY);
                }
                return;
            };
            self.send(conn, client, &message);
        }
    }

    /// POSTs one message to the backend as `/message`.
    fn send(&self, conn: Connection, client: &mut Client, message: &Message) {
        let event = match message {
            Message::Text(text) => wire::MessageEvent {
                connection: conn.id().to_string(),
                uid: client.uid.as_deref(),
                text: Some(text),
                binary: None,
            },
            Message::Binary(bytes) => wire::MessageEvent {
                connection: conn.id().to_string(),
                uid: client.uid.as_deref(),
                text: None,
                binary: Some(wire::base64(bytes)),
            },
        };
        let body = serde_json::to_vec(&event).unwrap_or_default();
        match self.post("/message", body, Some(conn)) {
            Ok(_) => {
                client.in_flight = true;
                if !client.busy {
                    client.busy = true;
                    let _ = conn.session_set(BUSY_KEY, "1");
                }
            }
            Err(refusal) => {
                log::warn!("connection {}: /message not sent: {refusal}", conn.id())
            }
        }
    }

    /// The backend answered `/connect`.
    fn connected(
        &self,
        conn: Connection,
        client: &mut Client,
        response: Result<Response, HttpError>,
    ) {
        let answer = match response {
            Ok(r) if r.is_success() => wire::parse_accepted(&r.body).map_err(|e| (502, e)),
            Ok(r) if (400..500).contains(&r.status) => {
                Err((r.status, r.text().unwrap_or("").to_owned()))
            }
            Ok(r) => Err((502, format!("the backend answered {}", r.status))),
            Err(HttpError::Timeout) => Err((504, "the backend timed out".to_owned())),
            Err(e) => Err((502, e.to_string())),
        };
        let accepted = match answer {
            Ok(accepted) => accepted,
            Err((status, why)) => {
                if status >= 500 {
                    log::warn!(
                        "connection {}: /connect failed ({why}): answering {status}",
                        conn.id()
                    );
                }
                let body = if status >= 500 {
                    "backend unavailable"
                } else {
                    why.as_str()
                };
                let _ = conn.reject(status, body);
                return;
            }
        };
        if let Some(uid) = &accepted.uid {
            if let Err(refusal) = conn.bind_user(uid) {
                log::warn!("connection {}: uid {uid:?} refused: {refusal}", conn.id());
                let _ = conn.reject(502, "backend unavailable");
                return;
            }
            let _ = conn.session_set(UID_KEY, uid);
            client.uid = Some(uid.clone());
        }
        for group in &accepted.groups {
            if let Err(refusal) = conn.join(group) {
                log::warn!(
                    "connection {}: group {group:?} refused: {refusal}",
                    conn.id()
                );
            }
        }
        if let Some(reply) = accepted.reply {
            let _ = conn.send(reply);
        }
        let _ = conn.session_set(ACCEPTED_KEY, "1");
        client.accepted = true;
        let _ = conn.accept();
    }

    /// The backend answered a `/message`: its actions apply, whole or not at all.
    fn answered(&self, conn: Connection, response: Result<Response, HttpError>) {
        let checked = match response {
            Ok(r) if r.is_success() => wire::parse_actions(&r.body),
            Ok(r) => Err(format!("the backend answered {}", r.status)),
            Err(e) => Err(e.to_string()),
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(why) => {
                log::warn!(
                    "connection {}: /message failed, no action applied: {why}",
                    conn.id()
                );
                return;
            }
        };
        let actions = checked.actions;
        if let Some(text) = actions.reply {
            let _ = conn.send(text);
        }
        if let Some(bytes) = checked.reply_binary {
            let _ = conn.send(bytes);
        }
        for publish in actions.publish {
            wssgate_sdk::groups::publish(&publish.group, publish.text, &[]);
        }
        for to_user in actions.send_to_user {
            wssgate_sdk::users::send(&to_user.uid, to_user.text);
        }
        for group in actions.join {
            if let Err(refusal) = conn.join(&group) {
                log::warn!(
                    "connection {}: join {group:?} refused: {refusal}",
                    conn.id()
                );
            }
        }
        for group in actions.leave {
            conn.leave(&group);
        }
        if let Some(close) = actions.close {
            conn.close(close.code, &close.reason);
        }
    }
}

impl Plugin for Webhook {
    type State = Client;

    fn init(&mut self, settings: &Settings) -> Result<(), String> {
        self.upstream = settings
            .get("upstream")
            .ok_or(
                "the webhook needs the route setting `upstream` (an [[upstream]] the route grants)",
            )?
            .to_owned();
        self.secret = settings.get("secret").map(str::to_owned);
        let positive = |key: &str, default: usize| match settings.get(key) {
            None => Ok(default),
            Some(n) => n
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or(format!("`{key}` must be a whole number of at least 1")),
        };
        self.waiting = Waiting::new(
            positive("max_queued_messages", DEFAULT_MAX_QUEUED)?,
            positive("max_queued_bytes", DEFAULT_MAX_QUEUED_BYTES)?,
            positive("max_queued_bytes_total", DEFAULT_MAX_QUEUED_BYTES_TOTAL)?,
        );
        Ok(())
    }

    fn on_connect(&mut self, conn: Connection, request: &Request) -> Verdict<Client> {
        // A replacement instance (after a trap) rebuilds what it needs from the session the gateway kept.
        if request.restored && conn.session_get(ACCEPTED_KEY).is_some() {
            if conn.session_get(BUSY_KEY).is_some() {
                conn.session_remove(BUSY_KEY);
                log::warn!(
                    "connection {}: the plugin restarted while messages waited for the backend; they were dropped",
                    conn.id()
                );
            }
            return Verdict::Accept(Client {
                uid: conn.session_get(UID_KEY),
                accepted: true,
                address: waiting::client_address(&request.remote_address).to_owned(),
                ..Client::default()
            });
        }
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &request.headers {
            headers
                .entry(name.clone())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        let event = wire::Connect {
            connection: conn.id().to_string(),
            path: &request.path,
            query: &request.query,
            headers,
            remote_address: &request.remote_address,
        };
        let body = serde_json::to_vec(&event).unwrap_or_default();
        match self.post("/connect", body, Some(conn)) {
            Ok(_) => Verdict::Defer(Client {
                in_flight: true,
                address: waiting::client_address(&request.remote_address).to_owned(),
                ..Client::default()
            }),
            Err(refusal) => {
                log::warn!("connection {}: /connect not sent: {refusal}", conn.id());
                Verdict::reject(503, "backend unavailable")
            }
        }
    }

    fn on_message(&mut self, conn: Connection, client: &mut Client, message: Message) {
        if self.waiting.is_shed(conn.id()) {
            // Its queue was dropped to make room and its close is on its way (which reports what it dropped).
            return;
        }
        // Nothing in flight means nothing waits either (send_next sends until a call is in flight): a message the
        // backend can take at once waits nowhere and meets no queue's bound.
        if !client.in_flight {
            self.send(conn, client, &message);
            return;
        }
        let size = message.as_bytes().len();
        match self.waiting.push(conn.id(), &client.address, message) {
            Ok(shed) => {
                for (other, dropped) in shed {
                    log::warn!(
                        "connection {other}: its {} messages ({} bytes) waiting for the backend were dropped to make room for connection {}'s ({} bytes on the route); closing it",
                        dropped.messages,
                        dropped.bytes,
                        conn.id(),
                        self.waiting.bytes()
                    );
                    Connection::new(other).close(1008, "too many messages waiting for the backend");
                }
            }
            Err(full) => {
                let held = self.waiting.held(conn.id());
                log::warn!(
                    "connection {}: {} messages ({} bytes) wait for the backend and {size} more would pass {}; closing it",
                    conn.id(),
                    held.messages,
                    held.bytes,
                    match full {
                        Full::Connection => "its own bounds",
                        Full::Route => "the route's, where its address would hold the most",
                    }
                );
                conn.close(1008, "too many messages waiting for the backend");
            }
        }
    }

    fn on_close(&mut self, conn: Connection, client: Client, close: CloseFrame) {
        let dropped = self.waiting.remove(conn.id());
        if !client.accepted {
            return;
        }
        // The connection's call in flight ends with it, and what waited behind it is not sent: say so (a warning
        // is counted in wssgate_plugin_warnings_total), since the backend will see the disconnect without them.
        if client.in_flight || dropped.messages > 0 {
            log::warn!(
                "connection {} closed with {} messages ({} bytes) waiting for the backend and a call {}; they were dropped",
                conn.id(),
                dropped.messages,
                dropped.bytes,
                if client.in_flight {
                    "in flight"
                } else {
                    "not yet made"
                },
            );
        }
        let event = wire::Disconnect {
            connection: conn.id().to_string(),
            uid: client.uid.as_deref(),
            code: close.code,
            reason: &close.reason,
        };
        let body = serde_json::to_vec(&event).unwrap_or_default();
        // Owned by no connection: it must outlive the one that closed.
        if let Err(refusal) = self.post("/disconnect", body, None) {
            log::warn!("connection {}: /disconnect not sent: {refusal}", conn.id());
        }
    }
}

impl HttpEvents for Webhook {
    fn on_http_response(
        &mut self,
        request: Sent,
        response: Result<Response, HttpError>,
        connections: &mut Connections<Client>,
    ) {
        let Some(conn) = request.owner() else {
            // A /disconnect: nothing waits for it, but a failure is worth a line.
            match response {
                Ok(r) if r.is_success() => {}
                Ok(r) => log::warn!("/disconnect: the backend answered {}", r.status),
                Err(e) => log::warn!("/disconnect failed: {e}"),
            }
            return;
        };
        let Some(client) = connections.get_mut(conn) else {
            return;
        };
        client.in_flight = false;
        if client.accepted {
            self.answered(conn, response);
        } else {
            self.connected(conn, client, response);
        }
        if client.accepted {
            self.send_next(conn, client);
        }
    }
}

wssgate_sdk::export_plugin!(Webhook, http);

#[cfg(test)]
mod tests;
