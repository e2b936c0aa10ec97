//! A WebSocket session: feeds the client's messages to the route's plugin and writes what the plugin queued, until
//! one side closes.
//!
//! After a read, the session handles every frame already buffered before it writes, and then writes everything
//! queued with a single flush, so pipelined traffic costs one write (and one TLS record batch) per read, not per
//! message. It also keeps the connection's limits: heartbeats, idle time, message rate, and the outbound queue.

use crate::compression::Compressing;
use crate::context::WorkerContext;
use crate::verdict::Registration;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::cell::RefCell;
use std::future::pending;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wssgate_config::limits::Limits;
use wssgate_hub::ConnectionDetails;
use wssgate_hub::admission::Ticket;
use wssgate_hub::outbound::{Outbox, SLOW_CONSUMER, close_frame};
use wssgate_hub::registry::ConnectionId;
use wssgate_runtime::plugin::{MessageParam, PluginInstance};
use wssgate_runtime::route::Routes;

/// How long the gateway waits for the client's answer to a close frame it sent.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a close frame may take to reach a client that stopped reading.
const SLOW_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Frames handled from one read before the session writes and yields to other connections.
const MAX_BATCH: usize = 256;
/// Queued bytes at which the session writes in the middle of a batch, so a pipelining client does not fill its
/// own outbound queue.
const EARLY_WRITE: usize = 64 * 1024;
/// Stands in for "never" in timers that are not armed.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

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
}

/// Why writing stopped.
enum WriteError {
    Ws(WsError),
    /// The socket is full and the queue overflowed: the client stopped reading.
    SlowConsumer,
}

/// Messages and bytes a client sent in the current one-second window.
struct RateWindow {
    started: Instant,
    messages: u32,
    bytes: u64,
}

/// What a session keeps alive until it ends, for the sake of others.
pub struct Holds {
    /// The connection's place in the registry and the hub: dropped with the session, it forgets the connection
    /// everywhere.
    pub registration: Registration,
    /// The routes generation the connection started with: its plugin instance's timers find the instance there.
    pub generation: Rc<Routes>,
    /// Counts the connection against the connection caps.
    pub ticket: Ticket,
    /// Dropped when the session ends: the worker's graceful shutdown waits until every one is.
    pub done: mpsc::Sender<()>,
}

/// A WebSocket connection bound to a route. It owns everything it uses, so it runs as a task of its own whose
/// future holds exactly the session: the state a message touches stays in one allocation.
pub struct Session<S> {
    ws: WebSocketStream<S>,
    /// The plugin instance this connection stays with.
    plugin: Rc<RefCell<PluginInstance>>,
    worker: Rc<WorkerContext>,
    _holds: Holds,
    id: ConnectionId,
    /// Where the plugin's sends and close for this connection wait to be written.
    outbox: Rc<Outbox>,
    /// The close frame the gateway sent, once it has; the session then waits for the peer's answer.
    sent_close: Option<CloseFrame>,
    /// Heartbeat pings sent since the client last sent anything.
    missed_pongs: u32,
    /// A heartbeat ping is due on the next write.
    ping_due: bool,
    /// For the per-connection rate limit.
    rate: RateWindow,
    /// The route's slot in the metrics.
    slot: usize,
    /// The limits as of the connection's start.
    limits: Arc<Limits>,
    /// What the connection opened with, and its traffic both ways (for the access log and `wssgate connections`).
    details: Arc<ConnectionDetails>,
    /// The close code the session ended with (1006 until known).
    close_code: u16,
    /// permessage-deflate, when the connection negotiated it.
    deflate: Option<Compressing>,
}

impl<S> Drop for Session<S> {
    /// The connection is gone for good (after its on-close); its registration, dropped with it, takes it out of the
    /// worker, the hub and its timers.
    fn drop(&mut self) {
        let metrics = &self.worker.metrics;
        metrics.closed(self.worker.index, self.slot, self.close_code);
        if self.deflate.is_some() {
            metrics.deflate_connection(self.worker.index, self.slot, false);
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Opens the session of a connection the plugin accepted (`slot`: its route's in the metrics), compressed
    /// when `deflate` is given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        ws: WebSocketStream<S>,
        slot: usize,
        plugin: Rc<RefCell<PluginInstance>>,
        worker: Rc<WorkerContext>,
        limits: Arc<Limits>,
        holds: Holds,
        details: Arc<ConnectionDetails>,
        deflate: Option<Compressing>,
    ) -> Self {
        let (id, outbox) = (holds.registration.id, holds.registration.outbox.clone());
        worker.metrics.opened(worker.index, slot);
        if deflate.is_some() {
            worker.metrics.deflate_connection(worker.index, slot, true);
        }
        Session {
            slot,
            limits,
            details,
            close_code: 1006,
            deflate,
            ws,
            plugin,
            worker,
            _holds: holds,
            id,
            outbox,
            sent_close: None,
            missed_pongs: 0,
            ping_due: false,
            rate: RateWindow {
                started: Instant::now(),
                messages: 0,
                bytes: 0,
            },
        }
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        let started = Instant::now();
        let end = self.exchange().await;
        self.close_code = end.code;
        let (details, t) = (&self.details, self.details.traffic.count());
        tracing::info!(target: "access", client = %details.remote_address, route = %details.route,
            connection = self.id, duration_ms = started.elapsed().as_millis() as u64, messages_in = t.messages_in,
            bytes_in = t.bytes_in, messages_out = t.messages_out, bytes_out = t.bytes_out, close = end.code,
            "connection closed");
        self.outbox.shut();
        self.worker.local.connections.remove(self.id);
        // A trap here is logged by the instance; the connection is gone either way.
        let _ = self
            .plugin
            .borrow_mut()
            .on_close(self.id, end.code, &end.reason);
    }

    /// Moves messages both ways until the connection closes.
    async fn exchange(&mut self) -> End {
        let limits = self.limits.clone();
        let mut heartbeat = limits
            .ping_interval()
            .map(|every| tokio::time::interval_at(Instant::now() + every, every));
        let idle_timeout = limits.idle_timeout();
        let mut idle = pin!(sleep_until(
            Instant::now() + idle_timeout.unwrap_or(FAR_FUTURE)
        ));
        let mut close_wait = pin!(sleep_until(Instant::now() + FAR_FUTURE));
        loop {
            let was_closing = self.sent_close.is_some();
            match self.write(true).await {
                Ok(()) => {}
                Err(WriteError::Ws(e)) => return self.fail(e).await,
                Err(WriteError::SlowConsumer) => return self.slow_consumer().await,
            }
            if !was_closing && self.sent_close.is_some() {
                close_wait.as_mut().reset(Instant::now() + CLOSE_TIMEOUT);
            }
            let open = self.sent_close.is_none();
            tokio::select! {
                biased;
                frame = self.ws.next() => match frame {
                    Some(Ok(message)) => {
                        if is_data(&message) && let Some(every) = idle_timeout {
                            idle.as_mut().reset(Instant::now() + every);
                        }
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
                _ = tick(&mut heartbeat), if open => {
                    if self.missed_pongs >= limits.max_missed_pongs {
                        self.outbox.request_close(close_frame(1001, "ping timeout"));
                    } else {
                        self.missed_pongs += 1;
                        self.ping_due = true;
                    }
                }
                _ = &mut idle, if open && idle_timeout.is_some() => {
                    self.outbox.request_close(close_frame(1001, "idle timeout"));
                }
                _ = &mut close_wait, if !open => return self.peer_gone(),
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
                    if self.outbox.queued_bytes() >= EARLY_WRITE {
                        match self.write(false).await {
                            Ok(()) => {}
                            Err(WriteError::Ws(e)) => return Some(self.fail(e).await),
                            Err(WriteError::SlowConsumer) => {
                                return Some(self.slow_consumer().await);
                            }
                        }
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
        // Anything from the client shows it is alive.
        self.missed_pongs = 0;
        let param = match &message {
            Message::Text(text) => MessageParam::Text(text.as_str()),
            Message::Binary(bytes) => MessageParam::Binary(bytes),
            // tungstenite has already queued the pong; the next flush sends it. Control frames cost the gateway
            // work too, so they count against the rate limits like data.
            Message::Ping(_) | Message::Pong(_) => {
                if self.over_rate(message.len()) {
                    self.outbox
                        .request_close(close_frame(1008, "message rate limit exceeded"));
                }
                return None;
            }
            Message::Frame(_) => return None,
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
        if self.outbox.is_shut() {
            // The gateway is closing this connection; later messages are not delivered.
            return None;
        }
        if let Some(deflate) = &self.deflate {
            let (messages, wire, plain) = deflate.report.take_counts();
            if messages > 0 {
                let (worker, slot) = (self.worker.index, self.slot);
                self.worker
                    .metrics
                    .inflated_in(worker, slot, messages, wire, plain);
            }
        }
        self.details.traffic.received(message.len());
        self.worker
            .metrics
            .message_in(self.worker.index, self.slot, message.len());
        if self.over_rate(message.len()) {
            self.outbox
                .request_close(close_frame(1008, "message rate limit exceeded"));
            return None;
        }
        let delivered = self.plugin.borrow_mut().on_message(self.id, param);
        if delivered.is_err() {
            self.outbox.force_close(close_frame(1011, "plugin error"));
        }
        None
    }

    /// Counts one message of `bytes` against the rate limits; true when it breaks one.
    fn over_rate(&mut self, bytes: usize) -> bool {
        let limits = &self.limits;
        if limits.max_messages_per_sec == 0 && limits.max_bytes_per_sec == 0 {
            return false;
        }
        let now = Instant::now();
        if now.duration_since(self.rate.started) >= Duration::from_secs(1) {
            self.rate = RateWindow {
                started: now,
                messages: 0,
                bytes: 0,
            };
        }
        self.rate.messages += 1;
        self.rate.bytes += bytes as u64;
        (limits.max_messages_per_sec > 0 && self.rate.messages > limits.max_messages_per_sec)
            || (limits.max_bytes_per_sec > 0 && self.rate.bytes > limits.max_bytes_per_sec)
    }

    /// Writes everything queued (a due ping, the plugin's messages, a close it asked for), then flushes if asked.
    /// Gives up with [`WriteError::SlowConsumer`] when the socket stays full while the queue overflows.
    async fn write(&mut self, flush: bool) -> Result<(), WriteError> {
        let outbox = self.outbox.clone();
        tokio::select! {
            biased;
            written = self.write_queued(flush) => written.map_err(WriteError::Ws),
            _ = outbox.overflowed() => Err(WriteError::SlowConsumer),
        }
    }

    async fn write_queued(&mut self, flush: bool) -> Result<(), WsError> {
        if std::mem::take(&mut self.ping_due) {
            self.ws.feed(Message::Ping(Default::default())).await?;
        }
        self.feed_queued().await?;
        if self.sent_close.is_none()
            && let Some(frame) = self.outbox.take_close()
        {
            self.sent_close = Some(frame.clone());
            self.ws.feed(Message::Close(Some(frame))).await?;
        }
        if flush {
            self.ws.flush().await?;
        }
        Ok(())
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
            None => End::new(1006, "connection lost"),
        }
    }

    /// The client stopped reading and its queue overflowed: try to tell it, briefly, and end.
    async fn slow_consumer(&mut self) -> End {
        tracing::debug!(connection = self.id, "closing a slow consumer");
        self.close_now(1008, SLOW_CONSUMER, SLOW_CLOSE_TIMEOUT)
            .await;
        End::new(1008, SLOW_CONSUMER)
    }

    /// Maps a protocol error to the close code RFC 6455 prescribes and sends it; tungstenite sends none itself.
    async fn fail(&mut self, error: WsError) -> End {
        // The inflating reader's refusals reach tungstenite as a failed read; the reader says why.
        let refused = self.deflate.as_ref().and_then(|d| d.report.failure.take());
        let (code, reason) = match (&error, refused) {
            (_, Some(failure)) => (failure.code, failure.reason),
            // tungstenite reports a peer that hung up without a close frame as a protocol error; RFC 6455 §7.1.5
            // calls that an abnormal closure (1006), or the code we sent when it came after our close.
            (WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake), None) => {
                tracing::debug!(connection = self.id, "connection lost: {error}");
                return self.peer_gone();
            }
            (WsError::Capacity(_), None) => (1009, "message too big"),
            (WsError::Utf8(_), None) => (1007, "invalid UTF-8"),
            (WsError::Protocol(_), None) => (1002, "protocol error"),
            _ => {
                tracing::debug!(connection = self.id, "connection lost: {error}");
                return self.peer_gone();
            }
        };
        tracing::debug!(connection = self.id, "closing with {code}: {error}");
        // Every message the client sent before the bad frame was handed to the plugin: write its answers first.
        let _ = timeout(CLOSE_TIMEOUT, self.write_answers()).await;
        self.close_now(code, reason, CLOSE_TIMEOUT).await;
        End::new(code, reason)
    }

    /// Writes the messages queued for the client (not a close the plugin asked for: the session's own close
    /// follows).
    async fn write_answers(&mut self) -> Result<(), WsError> {
        self.feed_queued().await?;
        self.ws.flush().await
    }

    /// Hands every queued message to tungstenite, counting it.
    async fn feed_queued(&mut self) -> Result<(), WsError> {
        while let Some(message) = self.outbox.pop() {
            let (worker, slot, plain) = (self.worker.index, self.slot, message.len());
            self.details.traffic.sent(plain);
            self.worker.metrics.message_out(worker, slot, plain);
            let message = match &mut self.deflate {
                Some(deflate) => {
                    let encoded = deflate.encode(message, &self.worker.codecs);
                    if let Some((wire, now)) = encoded.deflated {
                        self.worker
                            .metrics
                            .deflated_out(worker, slot, plain, wire, now);
                    }
                    encoded.message
                }
                None => message,
            };
            self.ws.feed(message).await?;
        }
        Ok(())
    }

    /// Sends a close frame and waits up to `wait` for the peer's answer, ignoring errors: the connection ends
    /// anyway.
    async fn close_now(&mut self, code: u16, reason: &str, wait: Duration) {
        self.outbox.shut();
        let frame = close_frame(code, reason);
        let _ = timeout(wait, async {
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

fn is_data(message: &Message) -> bool {
    matches!(message, Message::Text(_) | Message::Binary(_))
}

/// The next heartbeat tick, or never when heartbeats are off.
async fn tick(heartbeat: &mut Option<Interval>) {
    match heartbeat {
        Some(interval) => {
            interval.tick().await;
        }
        None => pending().await,
    }
}

#[cfg(test)]
mod tests;
