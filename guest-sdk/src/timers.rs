//! Timers, like Workerman's Timer::add: one-shot or repeating, delivered to [`crate::Plugin::on_timer`].
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

/// A running timer's handle; the same value reaches `on_timer` when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timer(u64);

impl Timer {
    /// The timer with this id (as found in [`Timer::id`]).
    pub fn new(id: u64) -> Self {
        Timer(id)
    }

    pub fn id(self) -> u64 {
        self.0
    }

    /// Stops the timer; false when it had already finished, or is not this instance's (a timer dies with the
    /// instance that started it).
    pub fn cancel(self) -> bool {
        host::cancel_timer(self.0)
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
    host::set_timer(millis(delay), repeat, owner.map(Connection::id)).map(Timer)
}
