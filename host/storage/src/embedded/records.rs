//! How the single-node store lays its data out in redb: five tables, keyed by route first so that a route's data is
//! one range and no key of one route can be spelled as another's (the key parts are separate tuple fields, not a
//! joined string), and the byte layout of each record.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// (route, group) → [`GroupRecord`]: the groups that have history.
pub(super) const GROUPS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("history_groups");
/// (route, group, offset) → an entry: `appended_at_ms` (8 bytes, little-endian), a kind byte (1: binary), the body.
/// The time comes first so that expiry is read without copying the body.
pub(super) const ENTRIES: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("history_entries");
/// (route, key) → [`KeyRecord`].
pub(super) const KEYS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("keys");
/// (expires_at_ms, route, key) → (): the keys set with a time to live, in expiry order, for the sweep.
pub(super) const EXPIRY: TableDefinition<(u64, &str, &str), ()> =
    TableDefinition::new("key_expiry");
/// route → [`Usage`]: what the route holds, against its quotas.
pub(super) const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");

/// A group's history stream: its epoch and the offsets it holds, `first..next`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct GroupRecord {
    pub epoch: String,
    /// The oldest offset still stored (it may have expired, until the next append or sweep removes it).
    pub first: u64,
    /// The offset the next append gets.
    pub next: u64,
    /// Body bytes of the stored entries.
    pub bytes: u64,
}

/// A key's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct KeyRecord {
    pub revision: u64,
    pub expires_at_ms: Option<u64>,
    pub value: Vec<u8>,
}

/// What a route holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Usage {
    /// Groups with a stream (history).
    pub groups: u64,
    /// Body bytes of all the route's history entries.
    pub history_bytes: u64,
    pub keys: u64,
    /// Bytes of the route's keys and values together.
    pub key_bytes: u64,
    /// The last revision a write of the route's storage got.
    pub revision: u64,
}

/// A history entry's bytes.
pub(super) fn entry_bytes(at_ms: u64, binary: bool, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(9 + body.len());
    bytes.extend_from_slice(&at_ms.to_le_bytes());
    bytes.push(u8::from(binary));
    bytes.extend_from_slice(body);
    bytes
}

/// When an entry was appended; `None` for bytes this store did not write.
pub(super) fn entry_time(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// An entry's kind and body.
pub(super) fn entry_message(bytes: &[u8]) -> Option<(bool, &[u8])> {
    Some((*bytes.get(8)? == 1, bytes.get(9..)?))
}

/// Decodes a record; a record this store cannot read is a damaged file, reported as such.
pub(super) fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T, redb::Error> {
    postcard::from_bytes(bytes).map_err(|e| {
        redb::Error::Corrupted(format!("a record of the data file does not decode: {e}"))
    })
}

pub(super) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    postcard::to_allocvec(record).expect("records encode into memory")
}
