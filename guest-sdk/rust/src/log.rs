//! Lines for the gateway's log, tagged by the host with the route and plugin that wrote them.
//!
//! The gateway takes at most `max_plugin_log_lines_per_sec` lines a second from one plugin instance (100 by
//! default) and drops the rest, counting them in its metrics. [`log()`] and its per-level shorthands drop such a line
//! silently; [`try_log`] says when it was dropped.
//!
//! The [`log`](https://docs.rs/log) facade is bridged to it too, so `log::info!` — in the plugin and in the crates
//! it uses — reaches the gateway's log (the bridge is installed when the instance starts, before `init`).
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
    host::with_host(|h| h.log(level, message))
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

/// Sends records of the `log` facade to the gateway's log.
struct Bridge;

impl ::log::Log for Bridge {
    fn enabled(&self, _metadata: &::log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &::log::Record<'_>) {
        let level = match record.level() {
            ::log::Level::Error => Level::Error,
            ::log::Level::Warn => Level::Warn,
            ::log::Level::Info => Level::Info,
            ::log::Level::Debug => Level::Debug,
            ::log::Level::Trace => Level::Trace,
        };
        let line = record.args().to_string();
        // Outside an event (no host to take it) the line has nowhere to go.
        let _ = host::try_with_host(|h| h.log(level, &line));
    }

    fn flush(&self) {}
}

/// Routes the `log` facade to the gateway's log. Called by the export glue when an instance starts, and by the mock
/// host; a second call (or a program that set its own logger) changes nothing.
pub(crate) fn install_bridge() {
    static BRIDGE: Bridge = Bridge;
    if ::log::set_logger(&BRIDGE).is_ok() {
        ::log::set_max_level(::log::LevelFilter::Trace);
    }
}
