//! A route's memory: `[route.history]` (the last messages of each group, for clients that reconnect) and
//! `[route.storage]` (the route's keys and values), and the top-level `data_dir` where a single node keeps both.
//!
//! Every table is a set of caps, because everything a plugin stores must be bounded by what the operator wrote: a
//! hostile plugin (or a hostile client driving one) can fill its route's quota and no more.

use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `[route.history]`: the route's groups keep their last messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Messages kept per group: appending one more drops the oldest.
    pub size: u32,
    /// How long a message is kept.
    pub ttl: Duration,
    /// The largest message `append` takes.
    pub max_message_bytes: usize,
    /// Groups with history at once; an append that would start one more is refused (`quota-exceeded`).
    pub max_groups: u64,
    /// Bytes of messages the route's history holds; an append past it is refused (`quota-exceeded`).
    pub max_bytes: u64,
}

/// `[route.storage]`: the route's key-value namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Keys at once; a write that would create one more is refused (`quota-exceeded`).
    pub max_keys: u64,
    /// Bytes of keys and values together; a write past it is refused (`quota-exceeded`).
    pub max_bytes: u64,
}

/// The most messages a group may keep: a history read is bounded by it, so it bounds one answer's size.
const MAX_HISTORY_SIZE: u32 = 10_000;
/// The largest value or history message: each travels in one answer to the plugin.
const MAX_ENTRY_BYTES: usize = 1 << 20;
/// The longest key: keys are names, not data.
const MAX_KEY_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHistory {
    size: Option<u32>,
    ttl_secs: Option<u64>,
    max_message_bytes: Option<usize>,
    max_groups: Option<u64>,
    max_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    max_key_bytes: Option<usize>,
    max_value_bytes: Option<usize>,
    max_keys: Option<u64>,
    max_bytes: Option<u64>,
}

/// `value` when it lies in `range`, else an error naming `key` and the range.
fn within<T: PartialOrd + Copy + std::fmt::Display>(
    table: &str,
    key: &str,
    value: Option<T>,
    default: T,
    (min, max): (T, T),
) -> Result<T, String> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(format!("[{table}] `{key}` must be {min} to {max}, not {v}"));
    }
    Ok(v)
}

impl HistoryConfig {
    /// `[route.history]` checked; the error names the key.
    pub(crate) fn from_raw(
        raw: Spanned<RawHistory>,
    ) -> Result<Self, (std::ops::Range<usize>, String)> {
        let span = raw.span();
        let raw = raw.into_inner();
        let t = "route.history";
        let check = || -> Result<Self, String> {
            Ok(HistoryConfig {
                size: within(t, "size", raw.size, 100, (1, MAX_HISTORY_SIZE))?,
                ttl: Duration::from_secs(within(
                    t,
                    "ttl_secs",
                    raw.ttl_secs,
                    86_400,
                    (1, 365 * 86_400),
                )?),
                max_message_bytes: within(
                    t,
                    "max_message_bytes",
                    raw.max_message_bytes,
                    64 << 10,
                    (1, MAX_ENTRY_BYTES),
                )?,
                max_groups: within(t, "max_groups", raw.max_groups, 10_000, (1, 1 << 32))?,
                max_bytes: within(t, "max_bytes", raw.max_bytes, 256 << 20, (1, 1 << 40))?,
            })
        };
        check().map_err(|e| (span, e))
    }
}

impl StorageConfig {
    /// `[route.storage]` checked; the error names the key.
    pub(crate) fn from_raw(
        raw: Spanned<RawStorage>,
    ) -> Result<Self, (std::ops::Range<usize>, String)> {
        let span = raw.span();
        let raw = raw.into_inner();
        let t = "route.storage";
        let check = || -> Result<Self, String> {
            Ok(StorageConfig {
                max_key_bytes: within(
                    t,
                    "max_key_bytes",
                    raw.max_key_bytes,
                    256,
                    (1, MAX_KEY_BYTES),
                )?,
                max_value_bytes: within(
                    t,
                    "max_value_bytes",
                    raw.max_value_bytes,
                    64 << 10,
                    (1, MAX_ENTRY_BYTES),
                )?,
                max_keys: within(t, "max_keys", raw.max_keys, 100_000, (1, 1 << 32))?,
                max_bytes: within(t, "max_bytes", raw.max_bytes, 256 << 20, (1, 1 << 40))?,
            })
        };
        check().map_err(|e| (span, e))
    }
}

impl HistoryConfig {
    /// A default table, as `[route.history]` with no keys reads (for tests and the scaffold).
    pub fn defaults() -> Self {
        Self::from_raw(Spanned::new(
            0..0,
            RawHistory {
                size: None,
                ttl_secs: None,
                max_message_bytes: None,
                max_groups: None,
                max_bytes: None,
            },
        ))
        .expect("the defaults are within their ranges")
    }
}

impl StorageConfig {
    /// A default table, as `[route.storage]` with no keys reads.
    pub fn defaults() -> Self {
        Self::from_raw(Spanned::new(
            0..0,
            RawStorage {
                max_key_bytes: None,
                max_value_bytes: None,
                max_keys: None,
                max_bytes: None,
            },
        ))
        .expect("the defaults are within their ranges")
    }
}
