//! Timers, like Workerman's Timer::add: one-shot or repeating, delivered to [`crate::TimerEvents::on_timer`]. A
//! plugin that starts timers exports their events: `export_plugin!(MyPlugin, timers)`.
//!
//! ```no_run
//! use std::time::Duration;
//! use wssgate_sdk::{timers, Connection};
//! # fn demo(conn: Connection) -> Result<(), wssgate_sdk::Refusal> {
//! let reminder = timers::after(Duration::from_secs(30), Some(conn))?; // dies with `conn`
//! let tick = timers::every(Duration::from_secs(1), None)?;
//! tick.cancel();
//! # let _ = reminder;
//! # Ok(())
//! # }
//! ```

use crate::{Connection, Refusal, host};
use std::time::Duration;

/// A running timer's handle; the same value reaches `on_timer` when it fires. Two handles are equal when they name
/// the same timer.
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    id: u64,
    /// The connection the timer was started for, if any.
    owner: Option<Connection>,
}

impl Timer {
    /// The timer with this id (as found in [`Timer::id`]), started for `owner`.
    pub fn new(id: u64, owner: Option<Connection>) -> Self {
        Timer { id, owner }
    }

    pub fn id(self) -> u64 {
        self.id
    }

    /// The connection the timer was started for: it dies when that connection closes.
    pub fn owner(self) -> Option<Connection> {
        self.owner
    }

    /// Stops the timer; false when it had already finished, or is not this instance's (a timer dies with the
    /// instance that started it).
    pub fn cancel(self) -> bool {
        host::with_host(|h| h.cancel_timer(self.id))
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Timer {}

impl std::hash::Hash for Timer {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

/// Fires once after `delay`. With an `owner`, the timer is cancelled when that connection closes.
///
/// Refused with [`Refusal::UnknownConnection`] when `owner` is not an open connection that this plugin instance
/// serves (this route, this worker), and with [`Refusal::TooManyTimers`] when the instance already runs
/// `max_timers_per_instance` timers (1024 by default; finished one-shot timers and cancelled ones do not count).
/// A refused timer is not started.
pub fn after(delay: Duration, owner: Option<Connection>) -> Result<Timer, Refusal> {
    start(delay, false, owner)
}

/// Fires every `period` until cancelled (or until its `owner` closes). Refused like [`after`].
pub fn every(period: Duration, owner: Option<Connection>) -> Result<Timer, Refusal> {
    start(period, true, owner)
}

fn start(delay: Duration, repeat: bool, owner: Option<Connection>) -> Result<Timer, Refusal> {
    host::with_host(|h| h.set_timer(millis(delay), repeat, owner.map(Connection::id)))
        .map(|id| Timer { id, owner })
}
