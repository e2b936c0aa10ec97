//! Why the gateway refused a call: the one error of joins, user bindings, session values, timers and log lines.

use std::fmt;

/// Why the gateway refused a call. Each cap is a `[limits]` key of the gateway's config; the defaults are given
/// below. New reasons may be added, so a `match` needs a wildcard arm.
///
/// ```no_run
/// use wssgate_sdk::{Connection, Refusal};
/// # fn demo(conn: Connection) {
/// match conn.join("room:lobby") {
///     Ok(()) => {}
///     Err(Refusal::TooManyGroups) => { let _ = conn.send("leave a room first"); }
///     Err(other) => { let _ = conn.send(format!("cannot join: {other}")); }
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The connection is closed, unknown, or not one of this route's (the three look the same). For a timer's
    /// owner, also a connection of this route that another worker serves.
    UnknownConnection,
    /// A group name, user id or session key is longer than `max_name_bytes` (default 256 bytes).
    NameTooLong,
    /// The connection is already in `max_groups_per_connection` groups (default 64); re-joining one of them is fine.
    TooManyGroups,
    /// The plugin instance already runs `max_timers_per_instance` timers (default 1024); finished one-shot timers
    /// and cancelled ones no longer count.
    TooManyTimers,
    /// The connection's session would pass its size limit (keys and values together, 64 KiB).
    TooLarge,
    /// The plugin instance wrote more than `max_plugin_log_lines_per_sec` log lines (default 100) in the last
    /// second: the line was dropped, and counted in the gateway's metrics.
    RateLimited,
    /// [`crate::Connection::accept`] or [`crate::Connection::reject`] for a connection whose upgrade is not waiting
    /// for an answer: it was answered already, or its `on_connect` did not defer.
    NotDeferred,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::UnknownConnection => "connection is closed or unknown",
            Refusal::NameTooLong => "name is too long",
            Refusal::TooManyGroups => "connection is in too many groups",
            Refusal::TooManyTimers => "too many timers are running",
            Refusal::TooLarge => "session is full",
            Refusal::RateLimited => "too many log lines per second",
            Refusal::NotDeferred => "connection is not waiting for an accept or reject",
        })
    }
}

impl std::error::Error for Refusal {}
