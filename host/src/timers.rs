//! Plugin timers: one-shot or repeating, delivered to the plugin instance that started them through its
//! `on-timer` export, cancellable, and cancelled with the connection that owns them.
//!
//! A timer is a small task on the worker that started it; when it fires it sends a [`Fire`] to the worker, which
//! calls the instance — never while another plugin call runs, since the worker is single-threaded.

use crate::registry::{self, ConnectionId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until};

/// Names one timer: the worker's index in the top 16 bits, a per-worker counter below.
pub type TimerId = u64;

/// The shortest period of a repeating timer, so that a zero delay cannot spin a worker.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// A timer fired for instance `instance` of route `route` in routes generation `generation`.
pub struct Fire {
    pub generation: u64,
    pub route: usize,
    pub instance: usize,
    pub timer: TimerId,
}

#[derive(Default)]
struct Table {
    running: HashMap<TimerId, AbortHandle>,
    /// Timers to cancel when a connection closes.
    owned: HashMap<ConnectionId, Vec<TimerId>>,
    last: u64,
}

thread_local! {
    static TIMERS: RefCell<Table> = RefCell::default();
}

/// Where a plugin instance's timers report to.
#[derive(Clone)]
pub struct TimerTarget {
    pub fire: UnboundedSender<Fire>,
    /// The routes generation (see reloads) the instance belongs to.
    pub generation: u64,
    pub route: usize,
    pub instance: usize,
}

/// Starts a timer on this worker; must run inside the worker's task set.
pub fn start(
    target: &TimerTarget,
    delay: Duration,
    repeat: bool,
    owner: Option<ConnectionId>,
) -> TimerId {
    let id = TIMERS.with(|t| {
        let mut table = t.borrow_mut();
        table.last += 1;
        ((registry::current_worker().unwrap_or(0) as u64) << 48) | table.last
    });
    let period = delay.max(MIN_PERIOD);
    let TimerTarget {
        fire,
        generation,
        route,
        instance,
    } = target.clone();
    let task = tokio::task::spawn_local(async move {
        let mut next = Instant::now() + delay;
        loop {
            sleep_until(next).await;
            if fire
                .send(Fire {
                    generation,
                    route,
                    instance,
                    timer: id,
                })
                .is_err()
                || !repeat
            {
                break;
            }
            next += period;
        }
        TIMERS.with(|t| t.borrow_mut().running.remove(&id));
    });
    TIMERS.with(|t| {
        let mut table = t.borrow_mut();
        table.running.insert(id, task.abort_handle());
        if let Some(owner) = owner.filter(|o| registry::get(*o).is_some()) {
            table.owned.entry(owner).or_default().push(id);
        }
    });
    id
}

/// Cancels a timer; false when it had finished or is not this worker's.
pub fn cancel(id: TimerId) -> bool {
    let handle = TIMERS.with(|t| t.borrow_mut().running.remove(&id));
    handle.map(|h| h.abort()).is_some()
}

/// Cancels the timers a closing connection owns.
pub fn cancel_owned_by(conn: ConnectionId) {
    let owned = TIMERS
        .with(|t| t.borrow_mut().owned.remove(&conn))
        .unwrap_or_default();
    for id in owned {
        cancel(id);
    }
}
