//! Test plugin for outbound HTTP. Each text message is a command; the answer names what happened:
//!
//! - `get UPSTREAM PATH` / `post UPSTREAM PATH BODY` / `timeout UPSTREAM PATH MS`: one request owned by the
//!   connection; answered `status CODE X-BACKEND BODY` (the response's `x-backend` header, `-` without one) or
//!   `error KIND MESSAGE`, or `refused REFUSAL` at once;
//! - `headers UPSTREAM PATH`: a GET carrying headers a plugin may not set (`host`, `connection`, …) and one it may;
//! - `reroute UPSTREAM PATH`: a GET carrying the headers some backends take as the real target or host
//!   (`x-original-url`, `x-rewrite-url`, `x-forwarded-host`) and one that is harmless;
//! - `many UPSTREAM PATH N WINDOW`: N requests, at most WINDOW in flight, each answer checked against the set of ids
//!   sent; answered `done ok=… error=… duplicate=… refused=… last_error=…` once all N were answered;
//! - `stats`: `responses N`, the response events this instance received;
//! - `panic`: traps (the instance is replaced, and its requests cancelled).
//!
//! A connection with `?auth=PATH` in its upgrade defers it and asks upstream `backend` for `PATH`: a 2xx accepts,
//! any other status rejects with it, an error rejects with 502.

use std::collections::HashSet;
use std::time::Duration;
use wssgate_sdk::http::{self, HttpError, Response, Sent};
use wssgate_sdk::{Connection, Connections, HttpEvents, Message, Plugin, Request, Verdict};

#[derive(Default)]
pub struct Fetcher {
    /// Response events received by this instance.
    responses: u64,
}

/// A run of `many`.
#[derive(Default)]
pub struct Batch {
    upstream: String,
    path: String,
    /// Requests still to send.
    left: u64,
    /// The most in flight at once.
    window: usize,
    /// Ids sent and not answered yet.
    waiting: HashSet<Sent>,
    ok: u64,
    error: u64,
    duplicate: u64,
    refused: u64,
    /// The last error's kind, for the report.
    last_error: Option<&'static str>,
}

#[derive(Default)]
pub struct State {
    batch: Option<Batch>,
    /// The upgrade waits for the auth request.
    authorizing: bool,
}

fn refusal(refusal: http::RequestRefusal) -> String {
    format!("refused {refusal:?}")
}

fn kind(error: &HttpError) -> &'static str {
    match error {
        HttpError::Timeout => "timeout",
        HttpError::ConnectFailed(_) => "connect-failed",
        HttpError::Tls(_) => "tls",
        HttpError::ResponseTooLarge => "response-too-large",
        HttpError::Protocol(_) => "protocol",
    }
}

impl Batch {
    /// Sends requests until `window` are in flight or none are left.
    fn fill(&mut self, conn: Connection) {
        while self.left > 0 && self.waiting.len() < self.window {
            self.left -= 1;
            match http::Request::get(&self.upstream, &self.path)
                .owner(conn)
                .send()
            {
                Ok(sent) => {
                    self.waiting.insert(sent);
                }
                Err(_) => self.refused += 1,
            }
        }
    }
}

impl Plugin for Fetcher {
    type State = State;

    fn on_connect(&mut self, conn: Connection, request: &Request) -> Verdict<State> {
        let Some(path) = request.query.strip_prefix("auth=") else {
            return Verdict::Accept(State::default());
        };
        match http::Request::get("backend", path).owner(conn).send() {
            Ok(_) => Verdict::Defer(State {
                authorizing: true,
                ..State::default()
            }),
            Err(r) => Verdict::reject(500, refusal(r)),
        }
    }

    fn on_message(&mut self, conn: Connection, state: &mut State, message: Message) {
        let text = message.as_text().unwrap_or_default().to_owned();
        let words: Vec<&str> = text.split(' ').collect();
        let sent = match words.as_slice() {
            ["get", upstream, path] => http::Request::get(upstream, path).owner(conn).send(),
            ["post", upstream, path, body] => http::Request::post(upstream, path)
                .header("content-type", "text/plain")
                .body(*body)
                .owner(conn)
                .send(),
            ["timeout", upstream, path, ms] => http::Request::get(upstream, path)
                .timeout(Duration::from_millis(ms.parse().unwrap_or(1)))
                .owner(conn)
                .send(),
            ["headers", upstream, path] => http::Request::get(upstream, path)
                .header("host", "evil.example")
                .header("connection", "close")
                .header("transfer-encoding", "chunked")
                .header("x-plugin", "yes")
                .owner(conn)
                .send(),
            ["reroute", upstream, path] => http::Request::get(upstream, path)
                .header("x-original-url", "/admin")
                .header("X-Rewrite-URL", "/admin")
                .header("x-forwarded-host", "admin.internal")
                .header("x-plugin", "yes")
                .owner(conn)
                .send(),
            ["many", upstream, path, n, window] => {
                let mut batch = Batch {
                    upstream: upstream.to_string(),
                    path: path.to_string(),
                    left: n.parse().unwrap_or(0),
                    window: window.parse().unwrap_or(1),
                    ..Batch::default()
                };
                batch.fill(conn);
                state.batch = Some(batch);
                return;
            }
            ["stats"] => {
                let _ = conn.send(format!("responses {}", self.responses));
                return;
            }
            ["panic"] => panic!("asked to"),
            _ => {
                let _ = conn.send("unknown command");
                return;
            }
        };
        if let Err(r) = sent {
            let _ = conn.send(refusal(r));
        }
    }
}

impl HttpEvents for Fetcher {
    fn on_http_response(
        &mut self,
        request: Sent,
        response: Result<Response, HttpError>,
        connections: &mut Connections<State>,
    ) {
        self.responses += 1;
        let Some(conn) = request.owner() else { return };
        let Some(state) = connections.get_mut(conn) else {
            let _ = conn.send("response for a connection without state");
            return;
        };
        if std::mem::take(&mut state.authorizing) {
            let _ = match &response {
                Ok(r) if r.is_success() => conn.accept().map(|_| ()),
                Ok(r) => conn.reject(r.status, r.text().unwrap_or("")),
                Err(_) => conn.reject(502, "backend unavailable"),
            };
            return;
        }
        if let Some(batch) = state.batch.as_mut() {
            if !batch.waiting.remove(&request) {
                batch.duplicate += 1;
            } else if let Err(e) = &response {
                batch.error += 1;
                batch.last_error = Some(kind(e));
            } else {
                batch.ok += 1;
            }
            batch.fill(conn);
            if batch.left == 0 && batch.waiting.is_empty() {
                let b = state.batch.take().unwrap_or_default();
                let _ = conn.send(format!(
                    "done ok={} error={} duplicate={} refused={} last_error={}",
                    b.ok,
                    b.error,
                    b.duplicate,
                    b.refused,
                    b.last_error.unwrap_or("none")
                ));
            }
            return;
        }
        let _ = conn.send(match response {
            Ok(r) => format!(
                "status {} {} {}",
                r.status,
                r.header("x-backend").unwrap_or("-"),
                String::from_utf8_lossy(&r.body)
            ),
            Err(e) => format!("error {} {e}", kind(&e)),
        });
    }
}

wssgate_sdk::export_plugin!(Fetcher, http);
