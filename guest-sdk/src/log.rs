//! Lines for the gateway's log, tagged by the host with the route and plugin that wrote them.
//!
//! The gateway takes at most `max_plugin_log_lines_per_sec` lines a second from one plugin instance (100 by
//! default) and drops the rest, counting them in its metrics. [`log`] and its per-level shorthands drop such a line
//! silently; [`try_log`] says when it was dropped.
//!
//! ```no_run
//! use wssgate_sdk::log;
//! log::info("started");
//! if log::try_log(log::Level::Warn, "queue is long").is_err() {
//!     // Rate limited: the line was dropped (and counted by the gateway).
//! }
//! ```

use crate::{Refusal, host};

/// How severe a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes `message` at `level`; a line past the instance's log rate is dropped silently.
pub fn log(level: Level, message: &str) {
    let _ = try_log(level, message);
}

/// Writes `message` at `level`, or says why the gateway dropped it: [`Refusal::RateLimited`] when the instance
/// wrote more than `max_plugin_log_lines_per_sec` lines in the last second.
pub fn try_log(level: Level, message: &str) -> Result<(), Refusal> {
    host::log(level, message)
}

pub fn trace(message: &str) {
    log(Level::Trace, message)
}

pub fn debug(message: &str) {
    log(Level::Debug, message)
}

pub fn info(message: &str) {
    log(Level::Info, message)
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

pub fn error(message: &str) {
    log(Level::Error, message)
}
