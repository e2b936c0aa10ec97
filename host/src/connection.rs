//! One client connection from accept to close: TLS, the HTTP request, then the WebSocket session that feeds the
//! route's plugin and writes what it sends.
//!
//! The session handles every frame already buffered after a read before it writes, and then writes everything
//! queued with a single flush, so pipelined traffic costs one write (and one TLS record batch) per read, not per
//! message.

use crate::outbound::{Outbox, close_reason, is_sendable_close_code};
use crate::plugin::{MessageParam, RequestInfoParam, Trapped};
use crate::registry::{self, ConnectionId};
use crate::route::Route;
use crate::upgrade::{self, Answer, RequestHead};
use crate::worker::WorkerContext;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its upgrade request.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the gateway waits for the client's answer to a close frame it sent.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message and frame accepted; a larger one closes the connection with 1009.
const MAX_MESSAGE: usize = 1 << 20;
/// Bytes read from the socket at a time. tungstenite's default (128 KiB) would be what a connection costs at rest.
const READ_CHUNK: usize = 4 * 1024;
/// Frames handled from one read before the session writes and yields to other connections.
const MAX_BATCH: usize = 256;

fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Serves one accepted TCP connection to the end.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    worker: Rc<WorkerContext>,
) {
    let _ = tcp.set_nodelay(true);
    match tls {
        None => serve_http(tcp, peer, &worker).await,
        Some(acceptor) => match timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => serve_http(stream, peer, &worker).await,
            Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
    }
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    worker: &WorkerContext,
) {
    let (head, rest) = match timeout(UPGRADE_TIMEOUT, upgrade::read_head(&mut stream)).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            if let Some(answer) = upgrade::head_error(&e) {
                let _ = upgrade::respond(&mut stream, &answer).await;
            }
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "no complete request within {UPGRADE_TIMEOUT:?}");
            return;
        }
    };
    let answer = upgrade::decide(&head, &worker.routes);
    if upgrade::respond(&mut stream, &answer).await.is_err() {
        return;
    }
    let Answer::Upgrade {
        route, subprotocol, ..
    } = answer
    else {
        let _ = stream.shutdown().await;
        return;
    };
    let ws =
        WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(websocket_config()))
            .await;
    Session::open(ws, route, worker)
        .run(&head, peer, subprotocol.as_deref())
        .await;
}

/// Why a session ended: the close code and reason its plugin's on-close gets.
struct End {
    code: u16,
    reason: String,
}

impl End {
    fn new(code: u16, reason: &str) -> Self {
        End {
            code,
            reason: reason.to_owned(),
        }
    }

    /// The peer vanished without a close frame.
    fn abnormal() -> Self {
        End::new(1006, "connection lost")
    }
}

/// A WebSocket connection bound to a route.
struct Session<'w, S> {
    ws: WebSocketStream<S>,
    route: &'w Route,
    worker: &'w WorkerContext,
    id: ConnectionId,
    /// Where the plugin's sends and close for this connection wait to be written.
    outbox: Rc<Outbox>,
    /// The close frame the gateway sent, once it has; the session then waits for the peer's answer.
    sent_close: Option<CloseFrame>,
}

impl<S> Drop for Session<'_, S> {
    fn drop(&mut self) {
        registry::remove(self.id);
    }
}

impl<'w, S: AsyncRead + AsyncWrite + Unpin> Session<'w, S> {
    fn open(ws: WebSocketStream<S>, route: &'w Route, worker: &'w WorkerContext) -> Self {
        let outbox = Rc::new(Outbox::default());
        let id = registry::open(outbox.clone());
        Session {
            ws,
            route,
            worker,
            id,
            outbox,
            sent_close: None,
        }
    }

    async fn run(mut self, head: &RequestHead, peer: SocketAddr, subprotocol: Option<&str>) {
        let headers: Vec<(&str, &str)> = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let remote_address = peer.to_string();
        let request = RequestInfoParam {
            path: &head.path,
            query: &head.query,
            headers: &headers,
            remote_address: &remote_address,
            subprotocol,
            restored: false,
        };
        let verdict = self.route.plugin.borrow_mut().on_connect(self.id, request);
        match verdict {
            Ok(Ok(())) => {}
            Ok(Err(reject)) => {
                // A rejected connection never opened for the plugin, so it gets no on-close.
                let code = if is_sendable_close_code(reject.code) {
                    reject.code
                } else {
                    1008
                };
                self.close_now(code, &reject.reason).await;
                return;
            }
            Err(Trapped) => {
                self.close_now(1011, "plugin error").await;
                return;
            }
        }
        let end = self.exchange().await;
        self.outbox.shut();
        registry::remove(self.id);
        // A trap here is logged by the instance; the connection is gone either way.
        let _ = self
            .route
            .plugin
            .borrow_mut()
            .on_close(self.id, end.code, &end.reason);
    }

    /// Moves messages both ways until the connection closes.
    async fn exchange(&mut self) -> End {
        let mut shutdown = self.worker.shutdown.clone();
        let mut close_wait = pin!(tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)));
        loop {
            let was_closing = self.sent_close.is_some();
            if let Err(e) = self.write_queued().await {
                return self.fail(e).await;
            }
            if !was_closing && self.sent_close.is_some() {
                close_wait.as_mut().reset(Instant::now() + CLOSE_TIMEOUT);
            }
            tokio::select! {
                biased;
                frame = self.ws.next() => match frame {
                    Some(Ok(message)) => {
                        if let Some(end) = self.handle(message) {
                            return self.finish(end).await;
                        }
                        if let Some(end) = self.handle_buffered().await {
                            return end;
                        }
                    }
                    Some(Err(e)) => return self.fail(e).await,
                    None => return self.peer_gone(),
                },
                _ = self.outbox.woken() => {}
                _ = shutdown.wait_for(|down| *down), if self.sent_close.is_none() => {
                    self.outbox.request_close(CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() });
                }
                _ = &mut close_wait, if self.sent_close.is_some() => return self.peer_gone(),
            }
        }
    }

    /// Handles the frames that arrived with the last read, without waiting for more.
    async fn handle_buffered(&mut self) -> Option<End> {
        for _ in 0..MAX_BATCH {
            match self.ws.next().now_or_never() {
                Some(Some(Ok(message))) => {
                    if let Some(end) = self.handle(message) {
                        return Some(self.finish(end).await);
                    }
                }
                Some(Some(Err(e))) => return Some(self.fail(e).await),
                Some(None) => return Some(self.peer_gone()),
                None => return None,
            }
        }
        None
    }

    /// Hands one message to the plugin; returns the end when it is the peer's close frame.
    fn handle(&mut self, message: Message) -> Option<End> {
        let param = match &message {
            Message::Text(text) => MessageParam::Text(text.as_str()),
            Message::Binary(bytes) => MessageParam::Binary(bytes),
            // tungstenite has already queued the pong; the next flush sends it.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return None,
            Message::Close(frame) => {
                self.outbox.shut();
                return Some(match (frame, &self.sent_close) {
                    // The peer answered our close: the session ends as we said.
                    (_, Some(ours)) => End::new(ours.code.into(), &ours.reason),
                    (Some(theirs), None) => End::new(theirs.code.into(), &theirs.reason),
                    (None, None) => End::new(1005, ""),
                });
            }
        };
        let delivered = self.route.plugin.borrow_mut().on_message(self.id, param);
        if delivered.is_err() {
            self.outbox.request_close(CloseFrame {
                code: CloseCode::Error,
                reason: "plugin error".into(),
            });
        }
        None
    }

    /// Writes everything the plugin queued (and a close it asked for) with one flush.
    async fn write_queued(&mut self) -> Result<(), WsError> {
        while let Some(message) = self.outbox.pop() {
            self.ws.feed(message).await?;
        }
        if self.sent_close.is_none()
            && let Some(frame) = self.outbox.take_close()
        {
            self.sent_close = Some(frame.clone());
            self.ws.feed(Message::Close(Some(frame))).await?;
        }
        self.ws.flush().await
    }

    /// The peer's close frame arrived: send tungstenite's queued answer and end.
    async fn finish(&mut self, end: End) -> End {
        let _ = timeout(CLOSE_TIMEOUT, self.ws.flush()).await;
        end
    }

    /// The stream ended without a close handshake (or the peer never answered ours).
    fn peer_gone(&self) -> End {
        match &self.sent_close {
            Some(ours) => End::new(ours.code.into(), &ours.reason),
            None => End::abnormal(),
        }
    }

    /// Maps a protocol error to the close code RFC 6455 prescribes and sends it; tungstenite sends none itself.
    async fn fail(&mut self, error: WsError) -> End {
        let (code, reason) = match &error {
            WsError::Capacity(_) => (1009, "message too big"),
            WsError::Utf8(_) => (1007, "invalid UTF-8"),
            WsError::Protocol(_) => (1002, "protocol error"),
            _ => {
                tracing::debug!(connection = self.id, "connection lost: {error}");
                return self.peer_gone();
            }
        };
        tracing::debug!(connection = self.id, "closing with {code}: {error}");
        self.outbox.shut();
        self.close_now(code, reason).await;
        End::new(code, reason)
    }

    /// Sends a close frame and waits briefly for the peer's answer, ignoring errors: the connection ends anyway.
    async fn close_now(&mut self, code: u16, reason: &str) {
        self.outbox.shut();
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: close_reason(reason),
        };
        let _ = timeout(CLOSE_TIMEOUT, async {
            self.ws.send(Message::Close(Some(frame))).await?;
            while let Some(message) = self.ws.next().await {
                if let Message::Close(_) = message? {
                    break;
                }
            }
            Ok::<(), WsError>(())
        })
        .await;
    }
}
