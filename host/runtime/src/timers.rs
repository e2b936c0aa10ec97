//! Plugin timers: one-shot or repeating, delivered to the plugin instance that started them through its
//! `on-timer` export, cancellable, and owned.
//!
//! A timer is owned work (see [`crate::owned`]): it dies with its instance incarnation — replaced, or (when no
//! connection owns it) retired by a reload — and with the connection that owns it, and a finished or cancelled timer
//! leaves nothing behind. An
//! incarnation may hold at most `max_timers_per_instance` live timers; all of this is host memory outside the
//! plugin's `max_memory_mib`, so it must be capped and reclaimed.
//!
//! A timer is a small task on the worker that started it; when it fires it sends a [`crate::owned::Due`] event to the worker, which
//! calls the instance — never while another plugin call runs, since the worker is single-threaded.

use crate::owned::{DueEvent, Incarnation, InstanceAddress, Owned, OwnedTasks};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until};
use wssgate_hub::metrics::{Live, LiveKind, Metrics};
use wssgate_hub::registry::ConnectionId;

/// Names one timer: the worker's index in the top 16 bits, a per-worker counter below.
pub(crate) type TimerId = u64;

/// The shortest period of a repeating timer, so that a zero delay cannot spin a worker.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// One worker's live timers. A timer's `fire_pending` flag says a fire is on its way to the worker and not handled
/// yet: a repeating timer whose plugin cannot keep up skips ticks rather than queueing fires without bound.
pub struct Timers {
    /// The worker's index: the top bits of its timer ids, and its shard of the live-timer gauges.
    worker: usize,
    metrics: Arc<Metrics>,
    table: RefCell<Table>,
}

/// What the table keeps of a timer beside its task and owners.
struct TimerState {
    /// The timer has fired and the worker has not yet delivered that fire to its plugin.
    fire_pending: bool,
    /// A one-shot timer stays in the table until its fire is delivered, so that a cancel (or the end of its
    /// incarnation or owner) between the fire and its delivery still stops it.
    repeat: bool,
    /// Counts the timer in its route's gauge while it is in the table.
    _live: Live,
}

#[derive(Default)]
struct Table {
    running: OwnedTasks<TimerState>,
    last: u64,
}

/// Why a timer was not started.
#[derive(Debug, PartialEq, Eq)]
pub enum TimerRefusal {
    /// The incarnation holds `max` live timers already.
    TooMany,
}

impl Timers {
    /// Worker `worker`'s timers, counted in its shard of `metrics`.
    pub fn new(worker: usize, metrics: Arc<Metrics>) -> Rc<Self> {
        Rc::new(Timers {
            worker,
            metrics,
            table: RefCell::default(),
        })
    }

    /// Forgets timer `id` everywhere; returns its task, to abort when the timer is ended early.
    fn remove(&self, id: TimerId) -> Option<AbortHandle> {
        let entry = self.table.borrow_mut().running.remove(id)?;
        Some(entry.task)
    }

    /// Starts a timer on this worker for `incarnation` of the route in metrics slot `slot`, owned by `owner`
    /// (which the caller has checked is the instance's own connection); must run inside the worker's task set.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        self: &Rc<Self>,
        target: &InstanceAddress,
        slot: usize,
        incarnation: Incarnation,
        delay: Duration,
        repeat: bool,
        owner: Option<ConnectionId>,
        max: usize,
    ) -> Result<TimerId, TimerRefusal> {
        let id = {
            let mut table = self.table.borrow_mut();
            if table.running.count(incarnation) >= max {
                return Err(TimerRefusal::TooMany);
            }
            table.last += 1;
            ((self.worker as u64) << 48) | table.last
        };
        let period = delay.max(MIN_PERIOD);
        let target = target.clone();
        // The task holds the table weakly: it never keeps a worker's state alive past the worker.
        let timers: Weak<Timers> = Rc::downgrade(self);
        let task = tokio::task::spawn_local(async move {
            let mut next = Instant::now() + delay;
            loop {
                sleep_until(next).await;
                // Missed ticks are skipped, and so is a tick while the last fire is still waiting for the worker.
                let now = Instant::now();
                next += period;
                if next <= now {
                    next = now + period;
                }
                let Some(timers) = timers.upgrade() else {
                    return;
                };
                let waiting = timers
                    .table
                    .borrow_mut()
                    .running
                    .get_mut(id)
                    .is_some_and(|e| std::mem::replace(&mut e.kind.fire_pending, true));
                if waiting {
                    continue;
                }
                if !target.send(incarnation, owner, DueEvent::Timer(id)) {
                    break;
                }
                if !repeat {
                    // Removed when the worker takes the fire (`delivered`), or when it is cancelled first.
                    return;
                }
            }
            if let Some(timers) = timers.upgrade() {
                timers.remove(id);
            }
        });
        self.table.borrow_mut().running.insert(
            id,
            Owned {
                task: task.abort_handle(),
                incarnation,
                owner,
                kind: TimerState {
                    fire_pending: false,
                    repeat,
                    _live: self.metrics.live(self.worker, slot, LiveKind::Timer),
                },
            },
        );
        Ok(id)
    }

    /// The worker took timer `id`'s fire: whether to deliver it — not when the timer was cancelled or ended after
    /// it fired. A repeating timer may then send the next fire; a one-shot timer is done.
    pub fn delivered(&self, id: TimerId) -> bool {
        let mut table = self.table.borrow_mut();
        let Some(entry) = table.running.get_mut(id) else {
            return false;
        };
        entry.kind.fire_pending = false;
        if !entry.kind.repeat {
            table.running.remove(id);
        }
        true
    }

    /// Cancels timer `id` if `incarnation` started it; false when it had finished or is not that incarnation's.
    pub fn cancel(&self, id: TimerId, incarnation: Incarnation) -> bool {
        let theirs = self
            .table
            .borrow()
            .running
            .get(id)
            .is_some_and(|e| e.incarnation == incarnation);
        let task = if theirs { self.remove(id) } else { None };
        task.map(|task| task.abort()).is_some()
    }

    /// Ends the timers `select` picks, aborting their tasks.
    fn cancel_where(&self, select: impl FnOnce(&OwnedTasks<TimerState>) -> Vec<TimerId>) {
        let ids = select(&self.table.borrow().running);
        for task in ids.into_iter().filter_map(|id| self.remove(id)) {
            task.abort();
        }
    }

    /// Cancels the timers a closing connection owns.
    pub fn cancel_owned_by(&self, conn: ConnectionId) {
        self.cancel_where(|t| t.owned_by(conn));
    }

    /// Cancels every timer of an incarnation that is gone (replaced after a trap, or dropped).
    pub(crate) fn cancel_incarnation(&self, incarnation: Incarnation) {
        self.cancel_where(|t| t.of_incarnation(incarnation, false));
    }

    /// Cancels the timers of an incarnation that no connection owns: those of an instance a reload retired, which
    /// keeps serving its open connections but must no longer act for the route as a whole.
    pub(crate) fn cancel_unowned(&self, incarnation: Incarnation) {
        self.cancel_where(|t| t.of_incarnation(incarnation, true));
    }

    /// Live timers of `incarnation` on this worker.
    #[cfg(test)]
    fn live(&self, incarnation: Incarnation) -> usize {
        self.table.borrow().running.count(incarnation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owned::{Due, next_incarnation};
    use tokio::sync::mpsc::unbounded_channel;

    fn target() -> (InstanceAddress, tokio::sync::mpsc::UnboundedReceiver<Due>) {
        let (events, fired) = unbounded_channel();
        let target = InstanceAddress {
            events,
            generation: 0,
            route_index: 0,
            instance_index: 0,
        };
        (target, fired)
    }

    #[tokio::test]
    async fn timers_are_capped_owned_and_leave_nothing_when_ended() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (target, mut fired) = target();
                let metrics = Arc::new(Metrics::new(vec!["/r".to_owned()], 1));
                let timers = Timers::new(0, metrics.clone());
                let counted = || metrics.totals(None, Some(0)).timers;
                let (mine, other) = (next_incarnation(), next_incarnation());
                let long = Duration::from_secs(60);
                let a = timers
                    .start(&target, 0, mine, long, true, Some(7), 2)
                    .unwrap();
                let _b = timers
                    .start(&target, 0, mine, long, false, None, 2)
                    .unwrap();
                assert_eq!(
                    timers.start(&target, 0, mine, long, false, None, 2),
                    Err(TimerRefusal::TooMany)
                );
                // Another incarnation cannot cancel mine.
                assert!(!timers.cancel(a, other));
                assert_eq!(timers.live(mine), 2);
                assert_eq!((counted(), metrics.timers_live(None)), (2, 2));
                // The owner closing ends its timer; the cap frees up.
                timers.cancel_owned_by(7);
                assert_eq!(timers.live(mine), 1);
                // A one-shot timer that fired leaves nothing.
                let short = timers
                    .start(&target, 0, mine, Duration::from_millis(5), false, None, 2)
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
                let due = fired.recv().await.unwrap();
                assert!(matches!(due.event, DueEvent::Timer(id) if id == short));
                tokio::task::yield_now().await;
                assert!(timers.delivered(short));
                assert_eq!(timers.live(mine), 1);
                // One cancelled after it fired, before the worker took the fire, is not delivered.
                let late = timers
                    .start(&target, 0, mine, Duration::from_millis(5), false, None, 2)
                    .unwrap();
                let due = fired.recv().await.unwrap();
                assert!(matches!(due.event, DueEvent::Timer(id) if id == late));
                assert!(timers.cancel(late, mine));
                assert!(!timers.delivered(late));
                assert_eq!(timers.live(mine), 1);
                // Resetting a timeout timer many times holds one timer.
                let mut reset = timers
                    .start(&target, 0, mine, long, false, Some(9), 2)
                    .unwrap();
                for _ in 0..10_000 {
                    assert!(timers.cancel(reset, mine));
                    reset = timers
                        .start(&target, 0, mine, long, false, Some(9), 2)
                        .unwrap();
                }
                {
                    let t = timers.table.borrow();
                    assert_eq!(t.running.len(), 2);
                    assert_eq!(t.running.owned_by(9).len(), 1);
                }
                // Retirement ends the unowned timer only; the replacement ends the rest.
                timers.cancel_unowned(mine);
                assert_eq!(timers.live(mine), 1);
                timers.cancel_incarnation(mine);
                assert_eq!(timers.live(mine), 0);
                assert!(timers.table.borrow().running.owners_is_empty());
                assert_eq!((counted(), metrics.timers_live(None)), (0, 0));
            })
            .await;
    }

    #[tokio::test]
    async fn a_repeating_timer_the_worker_cannot_keep_up_with_queues_one_fire() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (target, mut fired) = target();
                let timers = Timers::new(0, Arc::new(Metrics::new(Vec::new(), 1)));
                let mine = next_incarnation();
                let id = timers
                    .start(&target, 0, mine, MIN_PERIOD, true, None, 1)
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                let queued = std::iter::from_fn(|| fired.try_recv().ok()).count();
                assert_eq!(queued, 1, "fires queued while the first was not handled");
                assert!(timers.delivered(id));
                tokio::time::sleep(Duration::from_millis(20)).await;
                let queued = std::iter::from_fn(|| fired.try_recv().ok()).count();
                assert_eq!(queued, 1, "fires queued after the first was handled");
                // Ended with a fire queued (a reload retiring it, a replacement): that fire is not delivered.
                timers.cancel_incarnation(mine);
                assert!(!timers.delivered(id));
            })
            .await;
    }
}
