//! What [`crate::history`] and [`crate::storage`] share: the handle of a request, why the gateway refused one, and why
//! one it took failed. Both are a route's memory — kept past a restart and across nodes — and both answer the same
//! way: a call returns at once with a [`StorageRequest`], and exactly one event follows with the answer, unless the
//! request is cancelled first (its owner connection closes, or the instance that made it is replaced or ends; one a reload retired still gets its answers).

use crate::Connection;
use std::fmt;

/// A history or storage request the gateway took; the same value reaches its event. Two are equal when they name the
/// same request.
#[derive(Debug, Clone, Copy)]
pub struct StorageRequest {
    id: u64,
    owner: Option<Connection>,
}

impl StorageRequest {
    /// The request with this id (as found in [`StorageRequest::id`]), made for `owner`.
    pub fn new(id: u64, owner: Option<Connection>) -> Self {
        StorageRequest { id, owner }
    }

    /// The gateway-wide unique id of the request.
    pub fn id(self) -> u64 {
        self.id
    }

    /// The connection the request was made for: its event is dropped if that connection closes first.
    pub fn owner(self) -> Option<Connection> {
        self.owner
    }
}

impl PartialEq for StorageRequest {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for StorageRequest {}

impl std::hash::Hash for StorageRequest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

/// Why the gateway did not take a history or storage request. A refused request gets no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageRefusal {
    /// The route has no `[route.history]` table (for history calls) or no `[route.storage]` table (for storage
    /// calls).
    NotConfigured,
    /// The group name is empty or longer than `max_name_bytes` (256 bytes by default), or the key is empty or longer
    /// than the route's storage `max_key_bytes` (256 bytes by default).
    InvalidName,
    /// The message is larger than the route's history `max_message_bytes`, or the value larger than its storage
    /// `max_value_bytes` (64 KiB by default for both).
    TooLarge,
    /// The instance already has `max_storage_requests_per_instance` requests (1024 by default) waiting for their
    /// events.
    TooManyPending,
    /// The owner is not a connection (open or deferred) that this instance serves.
    UnknownConnection,
    /// Made from [`crate::Plugin::init`].
    NotNow,
}

impl fmt::Display for StorageRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageRefusal::NotConfigured => "the route keeps no history or storage of this kind",
            StorageRefusal::InvalidName => "the group name or key is empty or too long",
            StorageRefusal::TooLarge => "the message or value is too large",
            StorageRefusal::TooManyPending => "too many history and storage requests are waiting",
            StorageRefusal::UnknownConnection => "unknown owner connection",
            StorageRefusal::NotNow => "history and storage requests cannot be made now",
        })
    }
}

impl std::error::Error for StorageRefusal {}

/// Why a request the gateway took failed; it arrives in the request's event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StorageError {
    /// A write's `if_revision` did not match: the key's current revision (0 when the key does not exist).
    Conflict(u64),
    /// The write would pass one of the route's quotas (`max_bytes`, `max_keys`, `max_groups`): nothing was written.
    QuotaExceeded,
    /// The store could not answer: the broker is away or did not answer in time, or the data file failed. A write
    /// may or may not have happened when the store stopped answering in the middle of it.
    Unavailable(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Conflict(0) => f.write_str("conflict: the key does not exist"),
            StorageError::Conflict(revision) => {
                write!(f, "conflict: the key is at revision {revision}")
            }
            StorageError::QuotaExceeded => f.write_str("the route's quota is exceeded"),
            StorageError::Unavailable(why) => write!(f, "the store is unavailable: {why}"),
        }
    }
}

impl std::error::Error for StorageError {}
