//! CPU-time budgets for plugin callbacks: `event_deadline_ms` bounds the CPU a callback uses, not its wall time.
//!
//! On a loaded machine the OS may leave a worker unscheduled for tens of milliseconds in the middle of a callback. A
//! wall-clock deadline would then stop a plugin that did nothing wrong and close its connections with 1011 — exactly
//! when the machine is busiest. So the epoch deadline (which advances every [`EPOCH_TICK`] of wall time) only says
//! when to look: the store's deadline callback reads the thread's CPU clock and lets the callback go on until it has
//! really used its budget.
//!
//! Reading a thread's CPU clock is a system call, too dear for every event (a dispatch costs about 500 ns). An event
//! therefore starts from a sample of the clock refreshed at most once per tick: the sample is never later than the
//! event's start and at most one tick of CPU earlier, so a callback is stopped once it has used between its budget and
//! its budget plus two ticks of CPU.

use super::EPOCH_TICK;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::UpdateDeadline;

/// Counts epoch ticks; the ticker advances it with the engine's epoch, which wasmtime does not let us read.
pub static TICKS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's CPU time and the tick during which it was read.
    static SAMPLE: Cell<(u64, Duration)> = const { Cell::new((u64::MAX, Duration::ZERO)) };
}

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A lower bound, within one tick of CPU, of the calling thread's CPU time now: where an event starting now starts.
pub fn event_start() -> Duration {
    let tick = TICKS.load(Ordering::Relaxed);
    SAMPLE.with(|sample| {
        let (sampled_at, cpu) = sample.get();
        if sampled_at == tick {
            return cpu;
        }
        let cpu = thread_cpu_time();
        sample.set((tick, cpu));
        cpu
    })
}

/// Decides, when a callback that started at CPU time `started` reaches its epoch deadline, whether it has used its
/// `budget`: if so it is stopped with an error naming the budget; if not, the deadline moves to the earliest tick at
/// which it could have.
pub fn on_deadline(started: Duration, budget: Duration) -> wasmtime::Result<UpdateDeadline> {
    let used = thread_cpu_time().saturating_sub(started);
    // `started` may be up to one tick early: only past budget + tick is the budget surely spent.
    let limit = budget + EPOCH_TICK;
    if used >= limit {
        return Err(wasmtime::format_err!(
            "the callback used {} ms of CPU time, more than its event_deadline_ms ({} ms)",
            used.as_millis(),
            budget.as_millis()
        ));
    }
    // CPU time grows no faster than wall time, so the budget cannot run out before this many ticks.
    let ticks = (limit - used).as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64;
    Ok(UpdateDeadline::Continue(ticks.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(cpu: Duration) {
        let start = thread_cpu_time();
        let mut rounds = 0u64;
        while thread_cpu_time() - start < cpu {
            rounds = std::hint::black_box(rounds + 1);
        }
    }

    #[test]
    fn a_callback_within_its_budget_goes_on_until_the_budget_could_be_spent() {
        let started = event_start();
        burn(Duration::from_millis(2));
        match on_deadline(started, Duration::from_millis(50)) {
            // 50 ms + one tick - at least 2 ms used: at most 11 ticks of 5 ms, at least 1.
            Ok(UpdateDeadline::Continue(ticks)) => assert!((1..=11).contains(&ticks), "{ticks}"),
            other => panic!("expected more time, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_callback_past_its_budget_is_stopped_with_a_reason() {
        let started = event_start();
        burn(Duration::from_millis(20));
        let error = on_deadline(started, Duration::from_millis(10))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("event_deadline_ms (10 ms)"),
            "{error}"
        );
    }

    #[test]
    fn the_start_sample_is_reused_within_a_tick_and_refreshed_after_one() {
        // No ticker runs in unit tests: only this test moves the tick.
        let first = event_start();
        assert!(first <= thread_cpu_time());
        assert_eq!(event_start(), first, "no tick in between: the same sample");
        burn(Duration::from_millis(2));
        TICKS.fetch_add(1, Ordering::Relaxed);
        assert!(event_start() >= first + Duration::from_millis(2));
    }
}
