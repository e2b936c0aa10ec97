//! Group history (contract 1.2): a route with a `[route.history]` table keeps the last messages appended to each of
//! its groups (the last `size`, for `ttl_secs`), so that a client that was away can ask what it missed. A plugin that
//! uses it implements [`crate::HistoryEvents`] and exports it: `export_plugin!(MyPlugin, history)`.
//!
//! Appending does not deliver. The plugin publishes the message to the group from
//! [`crate::HistoryEvents::on_appended`], once it is durable and its [`Position`] is known — so the position a
//! member sees is never reused for another message after a crash:
//!
//! ```no_run
//! use wssgate_sdk::{history, Connection};
//! # fn demo(conn: Connection) -> Result<(), wssgate_sdk::StorageRefusal> {
//! // Later, on_appended gets the message's position; the plugin publishes it with the position.
//! let appended = history::append("room:lobby", r#"{"text":"hi"}"#, Some(conn))?;
//! // A client that comes back asks for what came after the last position it saw.
//! let seen = history::Position { offset: 41, epoch: "7f3a".to_owned() };
//! let page = history::read("room:lobby", Some(&seen), 50, Some(conn))?;
//! # let _ = (appended, page);
//! # Ok(())
//! # }
//! ```
//!
//! Positions are consecutive within an epoch, so a gap is visible; when the store starts a group's stream again (its
//! data was lost, or every message expired) the epoch changes and offsets start again at 1. A read answers with a
//! [`HistoryPage`] whose `complete` says whether anything between the position asked for and the page is missing.
//! Calls return at once; exactly one event follows each request the gateway took, unless its owner connection
//! closes first or the instance is replaced (after a trap) or ends. Requests cannot be made from
//! [`crate::Plugin::init`].

use crate::{Connection, Message, Outgoing, StorageRefusal, StorageRequest, host};

/// Where a message sits in its group's history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// 1 for the first message appended to the group in this epoch, then one more for each message appended:
    /// consecutive, so a gap is visible.
    pub offset: u64,
    /// Names the group's history stream. It changes when the stream starts again, and offsets start again at 1:
    /// offsets of different epochs say nothing about each other.
    pub epoch: String,
}

/// One message of a group's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub offset: u64,
    pub message: Message,
    /// When it was appended, in milliseconds since the Unix epoch (the appending node's clock).
    pub appended_at_ms: u64,
}

/// A page of a group's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The group's current epoch (empty when the group has no history).
    pub epoch: String,
    pub entries: Vec<HistoryEntry>,
    /// True when `entries` starts right after the position asked for (or is the latest page, when none was given):
    /// nothing between them is missing. False when the position's epoch is not the group's current one, or
    /// retention removed messages after it: the page then starts at the oldest message kept.
    pub complete: bool,
}

/// Appends `message` (text or bytes, like [`Connection::send`] takes) to `group`'s history; the group need not have
/// members. Exactly one [`crate::HistoryEvents::on_appended`] follows, with the message's position. With an `owner`,
/// the event is dropped if that connection closes first (the message is appended all the same).
///
/// Refused — with no event to follow — when the route has no `[route.history]` ([`StorageRefusal::NotConfigured`]),
/// for an empty group name or one past `max_name_bytes`, a message past `max_message_bytes`, an instance with
/// `max_storage_requests_per_instance` requests waiting, an owner this instance does not serve, and from `init`.
pub fn append(
    group: &str,
    message: impl Outgoing,
    owner: Option<Connection>,
) -> Result<StorageRequest, StorageRefusal> {
    let owner_id = owner.map(Connection::id);
    host::with_host(|h| h.history_append(group, message.payload(), owner_id))
        .map(|id| StorageRequest::new(id, owner))
}

/// Reads `group`'s history: with `since`, the messages after that position (at most `limit`, oldest first); without,
/// the latest `limit` messages. `limit` is capped at the route's `size` (and is at least 1), and a page holds at most
/// 4 MiB of messages (always one): a page since a position ends early, the latest page keeps the newest; ask again
/// from the last offset for more. Exactly one
/// [`crate::HistoryEvents::on_history`] follows. Refused like [`append`].
pub fn read(
    group: &str,
    since: Option<&Position>,
    limit: u32,
    owner: Option<Connection>,
) -> Result<StorageRequest, StorageRefusal> {
    let owner_id = owner.map(Connection::id);
    host::with_host(|h| h.history_read(group, since, limit, owner_id))
        .map(|id| StorageRequest::new(id, owner))
}
