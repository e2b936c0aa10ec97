//! A handle to one client connection: what a plugin uses to answer it or close it.

use crate::{ConnectionInfo, Outgoing, Refusal, host};
use std::fmt;

/// A cheap, copyable handle naming one connection. It stays valid as a name after the connection closes; calls on a
/// closed connection fail ([`SendError::Closed`], [`Refusal::UnknownConnection`]) or do nothing. A plugin can act
/// only on connections of its own route: the gateway treats another route's connection like a closed one.
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
    /// bounded: a client that reads too slowly is closed, and the send fails with [`SendError::QueueFull`]. A
    /// connection of the route served by another worker is reached too, through that worker's delivery queue: the
    /// send fails with [`SendError::Closed`] only once the connection is gone, with [`SendError::QueueFull`] when
    /// that worker's delivery queue is full, and a full client queue there closes the client without the send
    /// failing.
    pub fn send(self, message: impl Outgoing) -> Result<(), SendError> {
        host::with_host(|h| h.send(self.0, message.payload()))
    }

    /// Starts the close handshake; [`crate::Plugin::on_close`] follows once it completes. A code that a peer may not
    /// send (1005, 1006, 1015, or one outside 1000–4999) is replaced by 1008. For a connection whose upgrade still
    /// waits for its answer, this is a [`Connection::reject`] with 403.
    pub fn close(self, code: u16, reason: &str) {
        host::with_host(|h| h.close(self.0, code, reason))
    }

    /// Opens a connection whose [`crate::Plugin::on_connect`] deferred: the client gets its 101 and its messages
    /// start to arrive. Refused with [`Refusal::NotDeferred`] when the connection is not waiting for an answer.
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection, login_ok: bool) -> Result<(), wssgate_sdk::Refusal> {
    /// if login_ok {
    ///     conn.accept()?;
    /// } else {
    ///     conn.reject(401, "bad token")?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn accept(self) -> Result<(), Refusal> {
        host::with_host(|h| h.accept(self.0))
    }

    /// Answers a deferred connection's upgrade with an HTTP error instead (`status` 400 to 599, else 500; the body
    /// is cut to 1 KiB); [`crate::Plugin::on_close`] follows. Refused with [`Refusal::NotDeferred`] when the
    /// connection is not waiting for an answer.
    pub fn reject(self, status: u16, body: &str) -> Result<(), Refusal> {
        host::with_host(|h| h.reject(self.0, status, body))
    }

    /// Joins one of the route's groups (see [`crate::groups`]); joining a group it is already in changes nothing.
    ///
    /// Refused with [`Refusal::UnknownConnection`] when the connection is closed or not one of this route's,
    /// [`Refusal::NameTooLong`] when `group` passes `max_name_bytes` (256 bytes by default), and
    /// [`Refusal::TooManyGroups`] when the connection is already in `max_groups_per_connection` other groups (64 by
    /// default).
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) -> Result<(), wssgate_sdk::Refusal> {
    /// conn.join("room:lobby")?;
    /// assert!(conn.groups().contains(&"room:lobby".to_owned()));
    /// conn.leave("room:lobby");
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(self, group: &str) -> Result<(), Refusal> {
        host::with_host(|h| h.join_group(self.0, group))
    }

    /// Leaves a group.
    pub fn leave(self, group: &str) {
        host::with_host(|h| h.leave_group(self.0, group))
    }

    /// The groups this connection is in, sorted.
    pub fn groups(self) -> Vec<String> {
        host::with_host(|h| h.groups_of(self.0))
    }

    /// Binds this connection to user `uid` (see [`crate::users`]); a connection has at most one user, so this
    /// replaces an earlier binding.
    ///
    /// Refused with [`Refusal::UnknownConnection`] when the connection is closed or not one of this route's, and
    /// [`Refusal::NameTooLong`] when `uid` passes `max_name_bytes` (256 bytes by default).
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) -> Result<(), wssgate_sdk::Refusal> {
    /// conn.bind_user("alice")?;
    /// wssgate_sdk::users::send("alice", "you are logged in on another device");
    /// conn.unbind_user();
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind_user(self, uid: &str) -> Result<(), Refusal> {
        host::with_host(|h| h.bind_user(self.0, uid))
    }

    /// Unbinds this connection from its user.
    pub fn unbind_user(self) {
        host::with_host(|h| h.unbind_user(self.0))
    }

    /// Stores a value in the connection's session: kept by the gateway, readable from any worker, and kept when
    /// the plugin is restarted.
    ///
    /// Refused with [`Refusal::UnknownConnection`] when the connection is closed or not one of this route's,
    /// [`Refusal::NameTooLong`] when `key` passes `max_name_bytes` (256 bytes by default), and [`Refusal::TooLarge`]
    /// when the session's keys and values together would pass 64 KiB. A refused value is not stored, and the old
    /// value of `key` (if any) is kept.
    ///
    /// ```no_run
    /// # fn demo(conn: wssgate_sdk::Connection) -> Result<(), wssgate_sdk::Refusal> {
    /// conn.session_set("uid", "alice")?;
    /// assert_eq!(conn.session_get("uid").as_deref(), Some("alice"));
    /// conn.session_remove("uid");
    /// # Ok(())
    /// # }
    /// ```
    pub fn session_set(self, key: &str, value: &str) -> Result<(), Refusal> {
        host::with_host(|h| h.session_set(self.0, key, value))
    }

    /// Reads a session value.
    pub fn session_get(self, key: &str) -> Option<String> {
        host::with_host(|h| h.session_get(self.0, key))
    }

    /// Removes a session value.
    pub fn session_remove(self, key: &str) {
        host::with_host(|h| h.session_remove(self.0, key))
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
        host::with_host(|h| h.connection_info(self.0))
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
