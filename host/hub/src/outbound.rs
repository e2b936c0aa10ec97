//! A connection's outbound queue: where host calls put messages for the connection's task to write.
//!
//! Plugins run synchronously on the worker thread, so a `send` cannot write to the socket itself; it queues here and
//! the connection's task writes the whole queue with one flush when the plugin call returns (or when woken, for a
//! send that came from another connection's event).
//!
//! The queue is bounded in bytes: a client that stops reading cannot make the gateway hold more than the limit for
//! it. The send that would pass the limit fails, the queue is dropped, and the connection is closed with 1008
//! ("slow consumer").

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The close codes a server may put on the wire (RFC 6455 section 7.4).
fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// `code` if it may be put on the wire, else 1008 (policy violation): the one place where a close code from a
/// plugin (a rejection, a `close` call, a replayed rejection) is made safe.
pub(crate) fn sendable_close_code(code: u16) -> u16 {
    if is_sendable_close_code(code) {
        code
    } else {
        tracing::debug!("close code {code} may not be sent; using 1008");
        1008
    }
}

/// The longest close reason that fits a control frame (125 bytes less the code).
const MAX_CLOSE_REASON: usize = 123;

/// Cuts `reason` to at most 123 bytes on a character boundary.
pub fn close_reason(reason: &str) -> Utf8Bytes {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Utf8Bytes::from(reason[..end].to_owned())
}

/// A close frame with `code` (made sendable by [`sendable_close_code`]) and `reason` (cut to fit).
pub fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(sendable_close_code(code)),
        reason: close_reason(reason),
    }
}

/// The reason every connection is closed with (1001) when the gateway stops.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// The reason a connection whose queue overflowed is closed with.
pub const SLOW_CONSUMER: &str = "slow consumer";

/// Messages and a close request waiting for one connection's writer.
pub struct Outbox {
    /// Messages in the order the plugin sent them.
    queue: RefCell<VecDeque<Message>>,
    /// Payload bytes in `queue`.
    queued_bytes: Cell<usize>,
    /// The most `queued_bytes` may reach (one message alone may always be queued).
    limit: usize,
    /// A close waiting to be written; once set, sends are refused.
    close: RefCell<Option<CloseFrame>>,
    /// Set when the close has been handed to the writer; it can no longer be replaced.
    close_sent: Cell<bool>,
    /// Set when the connection stops accepting sends (closing or closed), so late sends fail loudly.
    shut: Cell<bool>,
    /// Set when a send found the queue full.
    overflowed: Cell<bool>,
    /// Wakes the connection's task when something was queued outside its own event.
    wake: Signal,
    /// Wakes a writer stuck on a full socket when the queue overflows.
    overflow: Signal,
    /// Set while the plugin has deferred the answer to the connection's upgrade and not given it yet.
    deferred: Cell<bool>,
    /// The plugin's answer to a deferred upgrade, until the handshake task takes it.
    answer: RefCell<Option<UpgradeAnswer>>,
}

/// How a plugin answered a deferred upgrade (`accept` or `reject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeAnswer {
    Accept,
    Reject { status: u16, body: String },
}

/// `accept` or `reject` for a connection whose upgrade is not waiting for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotDeferred;

/// A wake-up for the one task that owns a connection, on the worker's own thread.
///
/// The session waits on it every time round its loop, so it is a flag and a waker in cells: tokio's `Notify`,
/// made for many waiters on many threads, takes a lock to register and another to unregister on every wait.
#[derive(Default)]
struct Signal {
    /// A wake-up not yet seen by the waiter.
    raised: Cell<bool>,
    /// The waiter's waker, from its last poll.
    waker: Cell<Option<Waker>>,
}

impl Signal {
    fn raise(&self) {
        self.raised.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Ready once the signal was raised (since the last wait that saw it), consuming the wake-up.
    fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.replace(false) {
            return Poll::Ready(());
        }
        let waker = match self.waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        Poll::Pending
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection is closing or closed.
    Closed,
    /// The queue is full: the client does not read fast enough, and is being closed.
    Full,
}

impl Outbox {
    pub fn new(limit: usize) -> Self {
        Outbox {
            queue: RefCell::default(),
            queued_bytes: Cell::new(0),
            limit,
            close: RefCell::default(),
            close_sent: Cell::new(false),
            shut: Cell::new(false),
            overflowed: Cell::new(false),
            wake: Signal::default(),
            overflow: Signal::default(),
            deferred: Cell::new(false),
            answer: RefCell::default(),
        }
    }

    /// The plugin deferred the answer to the upgrade: `accept` and `reject` may now give it.
    pub fn defer(&self) {
        self.deferred.set(true);
    }

    /// Whether the upgrade waits for the plugin's answer (deferred, and not answered yet).
    pub fn is_deferred(&self) -> bool {
        self.deferred.get() && self.answer.borrow().is_none()
    }

    /// Gives the answer to a deferred upgrade and wakes the handshake that waits for it; the first answer wins.
    pub fn answer(&self, answer: UpgradeAnswer) -> Result<(), NotDeferred> {
        if !self.is_deferred() || self.is_shut() {
            return Err(NotDeferred);
        }
        *self.answer.borrow_mut() = Some(answer);
        self.wake.raise();
        Ok(())
    }

    /// Takes the plugin's answer, once given; the upgrade is no longer deferred.
    pub fn take_answer(&self) -> Option<UpgradeAnswer> {
        let answer = self.answer.borrow_mut().take()?;
        self.deferred.set(false);
        Some(answer)
    }

    #[inline]
    pub fn push(&self, message: Message) -> Result<(), Refused> {
        if self.shut.get() {
            return Err(Refused::Closed);
        }
        let queued = self.queued_bytes.get();
        let len = message.len();
        if queued > 0 && queued + len > self.limit {
            self.queue.borrow_mut().clear();
            self.queued_bytes.set(0);
            self.overflowed.set(true);
            self.request_close(close_frame(1008, SLOW_CONSUMER));
            self.overflow.raise();
            self.wake.raise();
            return Err(Refused::Full);
        }
        self.queued_bytes.set(queued + len);
        self.queue.borrow_mut().push_back(message);
        Ok(())
    }

    #[inline]
    pub fn pop(&self) -> Option<Message> {
        let message = self.queue.borrow_mut().pop_front()?;
        self.queued_bytes
            .set(self.queued_bytes.get() - message.len());
        Some(message)
    }

    #[inline]
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.get()
    }

    /// Asks for the close handshake; the first request wins.
    #[inline]
    pub fn request_close(&self, frame: CloseFrame) {
        if !self.shut.replace(true) {
            *self.close.borrow_mut() = Some(frame);
        }
    }

    /// Asks for the close handshake with `frame` even if another close is pending, as long as none was written:
    /// a plugin trap outranks what the plugin asked for before it trapped.
    pub fn force_close(&self, frame: CloseFrame) {
        self.shut.set(true);
        if !self.close_sent.get() {
            *self.close.borrow_mut() = Some(frame);
        }
    }

    /// Refuses any further message, e.g. once the client has started closing.
    #[inline]
    pub fn shut(&self) {
        self.shut.set(true);
    }

    #[inline]
    pub fn is_shut(&self) -> bool {
        self.shut.get()
    }

    #[inline]
    pub fn take_close(&self) -> Option<CloseFrame> {
        let frame = self.close.borrow_mut().take()?;
        self.close_sent.set(true);
        Some(frame)
    }

    #[inline]
    pub fn wake(&self) {
        self.wake.raise();
    }

    #[inline]
    pub async fn woken(&self) {
        std::future::poll_fn(|cx| self.wake.poll_wait(cx)).await
    }

    /// Completes once a send has found the queue full.
    #[inline]
    pub async fn overflowed(&self) {
        if !self.overflowed.get() {
            std::future::poll_fn(|cx| self.overflow.poll_wait(cx)).await
        }
    }
}

#[cfg(test)]
mod tests;
