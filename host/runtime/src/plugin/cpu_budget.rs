//! CPU-time budgets for plugin callbacks: `event_deadline_ms` bounds the CPU a callback uses, not its wall time.
//!
//! On a loaded machine the OS may leave a worker unscheduled for tens of milliseconds in the middle of a callback. A
//! wall-clock deadline would then stop a plugin that did nothing wrong and close its connections with 1011 — exactly
//! when the machine is busiest. So the epoch deadline (which advances every [`EPOCH_TICK`] of wall time) only says
//! when to look: the store's deadline callback reads the thread's CPU clock and lets the callback go on until it has
//! really used its budget.
//!
//! Reading a thread's CPU clock is a system call, too dear for every event (a dispatch costs about 500 ns). An event
//! therefore starts from a sample of the clock that is at most [`SAMPLE_MAX_AGE`] old by the TSC clock the event
//! reads anyway: CPU time grows no faster than wall time, so the sample is never later than the event's start and at
//! most that much CPU earlier. The age is judged by the worker's own clock, never by the ticker's count, because on a
//! loaded machine the ticker thread can fall behind too.

use super::EPOCH_TICK;
use std::cell::Cell;
use std::time::Duration;
use wasmtime::UpdateDeadline;

/// How old a sample of the thread's CPU clock may be when an event starts from it: at most one system call per
/// millisecond of a busy worker, and a callback is charged at most this much CPU that was not its own.
const SAMPLE_MAX_AGE: Duration = Duration::from_millis(1);

/// A worker thread's CPU time, and when (by the TSC clock) it was read; `None` before the first read. Each worker
/// keeps its own (`Worker::cpu`): a thread's CPU clock is its own.
#[derive(Default)]
pub(crate) struct CpuSample(Cell<Option<(quanta::Instant, Duration)>>);

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

impl CpuSample {
    /// A lower bound, within [`SAMPLE_MAX_AGE`] of CPU, of the calling thread's CPU time at `now`: where an event
    /// that starts at `now` starts. `self` must be the calling thread's own sample.
    pub(crate) fn event_start(&self, now: quanta::Instant) -> Duration {
        match self.0.get() {
            Some((sampled_at, cpu))
                if now.saturating_duration_since(sampled_at) <= SAMPLE_MAX_AGE =>
            {
                cpu
            }
            _ => {
                let cpu = thread_cpu_time();
                self.0.set(Some((now, cpu)));
                cpu
            }
        }
    }
}

/// Decides, when a callback that started at CPU time `started` reaches its epoch deadline, whether it has used its
/// `budget`: if so it is stopped with an error naming the budget; if not, the deadline moves to the earliest tick at
/// which it could have.
pub(crate) fn on_deadline(started: Duration, budget: Duration) -> wasmtime::Result<UpdateDeadline> {
    let used = thread_cpu_time().saturating_sub(started);
    // `started` may be up to SAMPLE_MAX_AGE early: only past that is the budget surely spent.
    let limit = budget + SAMPLE_MAX_AGE;
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
        let started = CpuSample::default().event_start(quanta::Instant::now());
        burn(Duration::from_millis(2));
        match on_deadline(started, Duration::from_millis(50)) {
            // 50 ms + 1 ms - at least 2 ms used: at most 10 ticks of 5 ms, at least 1.
            Ok(UpdateDeadline::Continue(ticks)) => assert!((1..=11).contains(&ticks), "{ticks}"),
            other => panic!("expected more time, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_callback_past_its_budget_is_stopped_with_a_reason() {
        let started = CpuSample::default().event_start(quanta::Instant::now());
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
    fn the_start_sample_is_reused_while_young_and_refreshed_when_old() {
        let sample = CpuSample::default();
        let first_at = quanta::Instant::now();
        let first = sample.event_start(first_at);
        assert!(first <= thread_cpu_time());
        burn(Duration::from_millis(2));
        assert_eq!(
            sample.event_start(first_at + SAMPLE_MAX_AGE),
            first,
            "a sample no older than SAMPLE_MAX_AGE serves the next event"
        );
        let later = sample.event_start(first_at + SAMPLE_MAX_AGE + Duration::from_micros(1));
        assert!(later >= first + Duration::from_millis(2));
    }
}
