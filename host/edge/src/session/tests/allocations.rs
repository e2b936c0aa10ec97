//! What one message costs the host's heap: a counting allocator (the global allocator of this test binary) counts
//! the allocations made while the session's task is being polled — reading the frame, the plugin's event, queueing
//! and writing the answer — and nothing the test's client does. The gateway's goal is none per message on this path;
//! the test keeps it from growing past what it is today, and prints it.

use super::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations on threads that have switched counting on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; the thread-locals read and written here are
// `const`-initialised cells, which never allocate. A global allocator cannot be written without `unsafe`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note() {
    // `try_with`: a thread being torn down may allocate after its thread-locals are gone.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Polls `inner` with counting on, so only what the session itself allocates is counted.
struct Measured<F>(Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for Measured<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        COUNTING.set(true);
        let polled = self.0.as_mut().poll(cx);
        COUNTING.set(false);
        polled
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_message_and_its_answer_allocate_at_most_what_they_do_today() {
    let bench = Bench::new(Limits::default());
    let (_, session, mut client) = bench.open(1 << 20).await;
    let session = Measured(Box::pin(session.run()));
    let client_side = async move {
        // One message at a time, each answered before the next, as an interactive client sends: every message is
        // a read, an event and a write of its own. The first rounds warm up buffers that grow once.
        let mut round = async |messages: u64| {
            let before = COUNT.get();
            for _ in 0..messages {
                client.send(TEXT, b"hello").await;
                assert_eq!(client.text().await, "?");
            }
            COUNT.get() - before
        };
        round(200).await;
        let short = round(100).await;
        let long = round(1100).await;
        // Whatever a round costs once (none is expected) drops out of the difference.
        let per_message = (long - short) as f64 / 1000.0;
        println!(
            "allocations per message and answer: {per_message:.2} ({short} in 100, {long} in 1100)"
        );
        // A little slack: a buffer that grows once during the long round is not a cost per message.
        assert!(
            per_message <= ALLOCATIONS_TODAY + 0.05,
            "a message and its answer now cost {per_message:.2} allocations, more than the {ALLOCATIONS_TODAY} they \
             cost when this test was written"
        );
        client.send(CLOSE, &close_payload(1000, "")).await;
        assert_eq!(client.close().await.0, 1000);
    };
    timeout(WAIT * 4, async {
        tokio::join!(session, client_side);
    })
    .await
    .expect("the session ended");
}

/// Measured when the test was written (BENCHMARKS.md, "Against uWebSockets"): the one allocation is the answer's
/// bytes, which the host copies out of the plugin's memory (the `send` call's argument) into the message it queues.
const ALLOCATIONS_TODAY: f64 = 1.0;
