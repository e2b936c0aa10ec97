//! Key-value storage (contract 1.2): a route with a `[route.storage]` table has keys of its own, kept past a restart
//! and seen alike by every node, bounded by the table's `max_key_bytes`, `max_value_bytes`, `max_keys` and
//! `max_bytes`. A plugin that uses it implements [`crate::StorageEvents`] and exports it:
//! `export_plugin!(MyPlugin, storage)`.
//!
//! ```no_run
//! use std::time::Duration;
//! use wssgate_sdk::{storage, Connection};
//! # fn demo(conn: Connection) -> Result<(), wssgate_sdk::StorageRefusal> {
//! // The value arrives in on_read.
//! let read = storage::get("topic:lobby", Some(conn))?;
//! // Expires in an hour; on_written gets the revision the write made.
//! let written = storage::set("topic:lobby", "Friday drinks", Some(Duration::from_secs(3600)), None, None)?;
//! // Compare-and-set: only if nobody wrote the key since revision 7 (0: only if it does not exist).
//! let swapped = storage::set("counter", "8", None, Some(7), Some(conn))?;
//! let removed = storage::remove("topic:lobby", None, None)?;
//! # let _ = (read, written, swapped, removed);
//! # Ok(())
//! # }
//! ```
//!
//! Every write to the route's storage gets a revision larger than any before it (never 0), so a reader can tell two
//! values of one key apart and a writer can make its write depend on what it read. Calls return at once; exactly one
//! event follows each request the gateway took, unless its owner connection closes first or the instance is
//! replaced (after a trap) or ends — which drops only the event: a write the store took still
//! happens. Answers are exact: a read sees every write acknowledged before it, on any node. Requests cannot be made
//! from [`crate::Plugin::init`].

use crate::{Connection, StorageRefusal, StorageRequest, host};
use std::time::Duration;

/// A key's value, as the last acknowledged write left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    pub value: Vec<u8>,
    /// Grows with every write to the route's storage (so two writes of one key never share one); never 0.
    pub revision: u64,
    /// When the value expires, in milliseconds since the Unix epoch, if it was set with a time to live.
    pub expires_at_ms: Option<u64>,
}

impl StoredValue {
    /// The value as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Reads `key`; one [`crate::StorageEvents::on_read`] follows, with `None` when the key does not exist or has
/// expired. With an `owner`, the event is dropped if that connection closes first.
///
/// Refused — with no event to follow — when the route has no `[route.storage]` ([`StorageRefusal::NotConfigured`]),
/// for an empty key or one past `max_key_bytes`, an instance with `max_storage_requests_per_instance` requests
/// waiting, an owner this instance does not serve, and from `init`.
pub fn get(key: &str, owner: Option<Connection>) -> Result<StorageRequest, StorageRefusal> {
    let owner_id = owner.map(Connection::id);
    host::with_host(|h| h.storage_get(key, owner_id)).map(|id| StorageRequest::new(id, owner))
}

/// Writes `key` (text or bytes), expiring after `ttl` when given. With `if_revision`, only when the key's current
/// revision is that one (0: only when the key does not exist) — compare-and-set; otherwise the event carries
/// [`crate::StorageError::Conflict`] with the current revision. One [`crate::StorageEvents::on_written`] follows
/// once the write is durable, with the revision it made. Refused like [`get`], and for a value past
/// `max_value_bytes` ([`StorageRefusal::TooLarge`]).
pub fn set(
    key: &str,
    value: impl AsRef<[u8]>,
    ttl: Option<Duration>,
    if_revision: Option<u64>,
    owner: Option<Connection>,
) -> Result<StorageRequest, StorageRefusal> {
    let owner_id = owner.map(Connection::id);
    let ttl_ms = ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    host::with_host(|h| h.storage_set(key, value.as_ref(), ttl_ms, if_revision, owner_id))
        .map(|id| StorageRequest::new(id, owner))
}

/// Deletes `key` (`if_revision` as for [`set`]); deleting a key that does not exist succeeds. One
/// [`crate::StorageEvents::on_written`] follows once the deletion is durable. Refused like [`get`].
pub fn remove(
    key: &str,
    if_revision: Option<u64>,
    owner: Option<Connection>,
) -> Result<StorageRequest, StorageRefusal> {
    let owner_id = owner.map(Connection::id);
    host::with_host(|h| h.storage_remove(key, if_revision, owner_id))
        .map(|id| StorageRequest::new(id, owner))
}
