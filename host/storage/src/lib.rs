//! Routes' memory: the `history` and `storage` interfaces of the plugin contract, behind one [`Store`] trait with two
//! implementations — [`Embedded`] (one redb file under `data_dir`, for a single node) and [`jetstream::JetStream`]
//! (NATS JetStream streams and key-value buckets, so that every node of a cluster sees the same data).
//!
//! A store never makes its caller wait: [`Store::submit`] hands a request over and returns, and the answer comes
//! later through the request's [`Reply`], called exactly once, from whatever thread the store works on. The runtime
//! turns that call into an event for the plugin instance that asked. A write is answered only once it is durable
//! (committed to disk, or acknowledged by JetStream).
//!
//! Each request names its route's [`Namespace`], which the host fixes from the route the plugin serves — never from
//! anything the plugin says — so one route's plugin cannot name another route's groups or keys. The namespace also
//! carries the route's caps, which the store enforces as quotas.

#[cfg(test)]
mod conformance;
mod embedded;

pub use embedded::Embedded;
pub mod jetstream;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wssgate_config::memory::{HistoryConfig, StorageConfig};

/// The most message bytes one history page holds (always at least one message): a page is one answer in the host's
/// memory and in the plugin's, however large the route's `size` and `max_message_bytes` are.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// One route's part of the store: its name and its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The route's path: what separates its data from every other route's.
    pub route: String,
    pub history: Option<HistoryConfig>,
    pub storage: Option<StorageConfig>,
}

/// A stored WebSocket message: text (valid UTF-8, checked by whoever built it) or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub binary: bool,
    pub body: Vec<u8>,
}

/// Where a message sits in its group's history (see the WIT's `position`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub epoch: String,
}

/// One message of a group's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub offset: u64,
    pub message: Message,
    pub appended_at_ms: u64,
}

/// A page of a group's history, oldest first (see the WIT's `history-page`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub epoch: String,
    pub entries: Vec<Entry>,
    pub complete: bool,
}

/// A key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: Vec<u8>,
    pub revision: u64,
    pub expires_at_ms: Option<u64>,
}

/// Why a request the store took failed (the WIT's `storage-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A write's `if-revision` did not match: the key's current revision (0: absent).
    Conflict(u64),
    /// The write would pass a quota of the route's; nothing was written.
    QuotaExceeded,
    /// The store could not answer.
    Unavailable(String),
}

/// What a plugin asks of its route's memory. Names, sizes and limits are checked by the caller (they are refusals,
/// answered at once), except the quotas, which only the store can check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Append {
        group: String,
        message: Message,
    },
    Read {
        group: String,
        since: Option<Position>,
        /// At least 1; the store caps it at the route's history `size`.
        limit: u32,
    },
    Get {
        key: String,
    },
    Set {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
        if_revision: Option<u64>,
    },
    Remove {
        key: String,
        if_revision: Option<u64>,
    },
}

/// The answer to a [`Request`]: `Append` gets `Appended`, `Read` gets `History`, `Get` gets `Value`, `Set` and
/// `Remove` get `Written`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Appended(Result<Position, StoreError>),
    History(Result<Page, StoreError>),
    Value(Result<Option<Stored>, StoreError>),
    Written(Result<u64, StoreError>),
}

/// Where an answer goes; called exactly once, on the store's own thread.
pub type Reply = Box<dyn FnOnce(Answer) + Send>;

/// What one route holds, for `/api/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Groups with history.
    pub history_groups: u64,
    /// Bytes the route's history holds (the embedded store counts message bodies; JetStream counts what it stores,
    /// subjects and headers included).
    pub history_bytes: u64,
    /// Keys (JetStream: messages of the route's bucket, deletions not yet purged included).
    pub keys: u64,
    /// Bytes of the route's keys and values (JetStream: as it stores them).
    pub key_bytes: u64,
}

/// Whether the store can answer now: `/healthz` reports a degraded store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    Degraded(String),
}

/// A route's memory, wherever it is kept.
pub trait Store: Send + Sync {
    /// Hands `request` over for `space`; `reply` gets the answer later (never inside this call).
    fn submit(&self, space: &Arc<Namespace>, request: Request, reply: Reply);
    /// Whether the store is answering.
    fn health(&self) -> Health;
    /// What each route holds, by route path: exact for the embedded store (read from its file, never waiting on a
    /// commit), and for JetStream as of its last look at the broker (every few seconds while it answers). For the
    /// admin API only: never called from a plugin's callback.
    fn usage(&self) -> Vec<(String, Usage)>;
    /// Where the data lives: `"file"` (the embedded store) or `"jetstream"`.
    fn kind(&self) -> &'static str;
}

impl Request {
    /// The answer a request gets when it cannot be served at all.
    pub fn failed(&self, error: StoreError) -> Answer {
        match self {
            Request::Append { .. } => Answer::Appended(Err(error)),
            Request::Read { .. } => Answer::History(Err(error)),
            Request::Get { .. } => Answer::Value(Err(error)),
            Request::Set { .. } | Request::Remove { .. } => Answer::Written(Err(error)),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
