//! What one worker owns that its plugins reach: its connections, its plugins' timers, outbound requests and
//! history and storage requests, its
//! thread's CPU clock sample (where callbacks' CPU budgets start) and its index (its shard of the metrics and the top bits of its ids) — one value, [`Worker`], made when the worker's
//! thread starts and passed to whatever uses it.
//!
//! One thread-local remains, and only for host calls: they run inside wasmtime, whose store data must be `Send`
//! (wasmtime-wasi requires it), so a store cannot hold this `Rc`. A host call finds its worker through
//! [`Worker::current`], which [`Worker::enter`] sets once when the thread starts; everything outside a host call
//! takes the worker as an argument.

use crate::plugin::cpu_budget::CpuSample;
use crate::storage_requests::StorageRequests;
use crate::timers::Timers;
use crate::upstream::requests::Requests;
use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;
use wssgate_hub::metrics::Metrics;
use wssgate_hub::registry::Connections;

/// A worker's own state. Not `Send`: it never leaves its thread.
pub struct Worker {
    /// The worker's number: its metrics shard and bits 36 to 43 of its connection ids.
    pub index: usize,
    /// Its live connections.
    pub connections: Rc<Connections>,
    /// Its plugins' timers.
    pub timers: Rc<Timers>,
    /// Its plugins' outbound requests.
    pub requests: Requests,
    /// Its plugins' history and storage requests waiting for their answers.
    pub storage: StorageRequests,
    /// Its thread's CPU clock as last read, where a callback's CPU budget starts.
    pub(crate) cpu: CpuSample,
}

thread_local! {
    /// The worker this thread runs, for host calls (see the module doc).
    static CURRENT: OnceCell<Rc<Worker>> = const { OnceCell::new() };
}

impl Worker {
    /// Worker `index`'s state, counting in its shard of `metrics`.
    pub fn new(index: usize, metrics: Arc<Metrics>) -> Rc<Self> {
        Rc::new(Worker {
            index,
            connections: Rc::new(Connections::new(index)),
            timers: Timers::new(index, metrics),
            requests: Requests::new(index),
            storage: StorageRequests::new(index),
            cpu: CpuSample::default(),
        })
    }

    /// Makes `worker` the one this thread's host calls reach. Once per thread: a second call is refused (false).
    pub fn enter(worker: &Rc<Worker>) -> bool {
        CURRENT.with(|current| current.set(worker.clone()).is_ok())
    }

    /// The worker of this thread, for a host call. A plugin runs only on a worker thread that entered its worker
    /// before instantiating any plugin, so a host call never finds none.
    #[inline]
    pub fn current() -> Rc<Worker> {
        CURRENT.with(|current| {
            current
                .get()
                .cloned()
                .expect("a host call ran on a thread that is not a worker")
        })
    }
}
