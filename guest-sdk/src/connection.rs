//! A handle to one client connection: what a plugin uses to answer it or close it.

use crate::{Message, host};
use std::fmt;

/// A cheap, copyable handle naming one connection. It stays valid as a name after the connection closes; calls on a
/// closed connection fail with [`SendError::Closed`] or do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Connection(u64);

impl Connection {
    /// A handle for the connection with this id (as found in [`Connection::id`]).
    pub fn new(id: u64) -> Self {
        Connection(id)
    }

    /// The gateway-wide unique id of the connection.
    pub fn id(self) -> u64 {
        self.0
    }

    /// Queues a message to the client. It is written when the current callback returns. The connection's queue is
    /// bounded: a client that reads too slowly is closed, and the send fails with [`SendError::QueueFull`].
    pub fn send(self, message: impl Into<Message>) -> Result<(), SendError> {
        host::send(self.0, message.into())
    }

    /// Starts the close handshake; [`crate::Plugin::on_close`] follows once it completes.
    pub fn close(self, code: u16, reason: &str) {
        host::close(self.0, code, reason)
    }
}

/// Why the gateway refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closed, closing, or unknown.
    Closed,
    /// The client reads too slowly: its outbound queue is full, this message was dropped, and the gateway is
    /// closing the connection with 1008 "slow consumer".
    QueueFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("connection is closed"),
            SendError::QueueFull => {
                f.write_str("connection's outbound queue is full (slow consumer)")
            }
        }
    }
}

impl std::error::Error for SendError {}
