//! A handle to one client connection: what a plugin uses to answer it or close it.

use crate::{ConnectionInfo, Outgoing, host};
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
    pub fn send(self, message: impl Outgoing) -> Result<(), SendError> {
        host::send(self.0, message.payload())
    }

    /// Starts the close handshake; [`crate::Plugin::on_close`] follows once it completes.
    pub fn close(self, code: u16, reason: &str) {
        host::close(self.0, code, reason)
    }

    /// Joins one of the route's groups (see [`crate::groups`]).
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) {
    /// conn.join("room:lobby");
    /// assert!(conn.groups().contains(&"room:lobby".to_owned()));
    /// conn.leave("room:lobby");
    /// # }
    /// ```
    pub fn join(self, group: &str) {
        host::join_group(self.0, group)
    }

    /// Leaves a group.
    pub fn leave(self, group: &str) {
        host::leave_group(self.0, group)
    }

    /// The groups this connection is in, sorted.
    pub fn groups(self) -> Vec<String> {
        host::groups_of(self.0)
    }

    /// Binds this connection to user `uid` (see [`crate::users`]); a connection has at most one user.
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) {
    /// conn.bind_user("alice");
    /// wssgate_sdk::users::send("alice", "you are logged in on another device");
    /// conn.unbind_user();
    /// # }
    /// ```
    pub fn bind_user(self, uid: &str) {
        host::bind_user(self.0, uid)
    }

    /// Unbinds this connection from its user.
    pub fn unbind_user(self) {
        host::unbind_user(self.0)
    }

    /// Stores a value in the connection's session: kept by the gateway, readable from any worker, and kept when
    /// the plugin is restarted. At most 64 KiB of keys and values per connection.
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) {
    /// conn.session_set("uid", "alice").expect("session");
    /// assert_eq!(conn.session_get("uid").as_deref(), Some("alice"));
    /// conn.session_remove("uid");
    /// # }
    /// ```
    pub fn session_set(self, key: &str, value: &str) -> Result<(), SessionError> {
        host::session_set(self.0, key, value)
    }

    /// Reads a session value.
    pub fn session_get(self, key: &str) -> Option<String> {
        host::session_get(self.0, key)
    }

    /// Removes a session value.
    pub fn session_remove(self, key: &str) {
        host::session_remove(self.0, key)
    }

    /// The connection's upgrade request and connect time; `None` once it is closed.
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) {
    /// if let Some(info) = conn.info() {
    ///     wssgate_sdk::log::info(&format!("{} came from {}", conn.id(), info.remote_address));
    /// }
    /// # }
    /// ```
    pub fn info(self) -> Option<ConnectionInfo> {
        host::connection_info(self.0)
    }
}

/// Why the gateway refused a session value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The connection is closed or unknown.
    UnknownConnection,
    /// The session would pass 64 KiB.
    TooLarge,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::UnknownConnection => f.write_str("connection is closed"),
            SessionError::TooLarge => f.write_str("session is full (64 KiB)"),
        }
    }
}

impl std::error::Error for SessionError {}

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
