//! A connection's outbound queue: where host calls put messages for the connection's task to write.
//!
//! Plugins run synchronously on the worker thread, so a `send` cannot write to the socket itself; it queues here and
//! the connection's task writes the whole queue with one flush when the plugin call returns (or when woken, for a
//! send that came from another connection's event).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The close codes a server may put on the wire (RFC 6455 section 7.4): anything else from a plugin is replaced.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
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

/// Messages and a close request waiting for one connection's writer.
#[derive(Default)]
pub struct Outbox {
    /// Messages in the order the plugin sent them.
    queue: RefCell<VecDeque<Message>>,
    /// A close the plugin asked for; once set, sends are refused.
    close: RefCell<Option<CloseFrame>>,
    /// Set when the connection stops accepting sends (closing or closed), so late sends fail loudly.
    shut: Cell<bool>,
    /// Wakes the connection's task when something was queued outside its own event.
    wake: Notify,
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Outbox {
    pub fn push(&self, message: Message) -> Result<(), Closed> {
        if self.shut.get() {
            return Err(Closed);
        }
        self.queue.borrow_mut().push_back(message);
        Ok(())
    }

    /// Asks for the close handshake; the first request wins.
    pub fn request_close(&self, frame: CloseFrame) {
        if !self.shut.replace(true) {
            *self.close.borrow_mut() = Some(frame);
        }
    }

    /// Refuses any further message, e.g. once the client has started closing.
    pub fn shut(&self) {
        self.shut.set(true);
    }

    pub fn pop(&self) -> Option<Message> {
        self.queue.borrow_mut().pop_front()
    }

    pub fn take_close(&self) -> Option<CloseFrame> {
        self.close.borrow_mut().take()
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await
    }
}
