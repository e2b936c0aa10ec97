//! The memory cap of one plugin instance, and its share of `wssgate_plugin_memory_bytes`: wasmtime asks before
//! every growth of a linear memory (its first allocation included), which is both where the route's
//! `max_memory_mib` is enforced and where the gateway learns how much memory its plugins hold.
//!
//! A growth past the cap is refused, not trapped: `memory.grow` answers -1 and the plugin's allocator decides —
//! a Rust plugin aborts (a trap, so the instance is replaced), a JavaScript or Python engine may recover by
//! collecting garbage first. When the instance ends, what it held is given back to the gauge. It also counts the
//! route's live instances (`wssgate status`), since it lives exactly as long as its instance's store.

use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wssgate_hub::metrics::Metrics;

/// Core instances one plugin may create: a component made of several modules needs a few; no plugin needs more.
const MAX_CORE_INSTANCES: usize = 64;

pub(crate) struct MemoryCap {
    /// The most one linear memory may hold.
    max_bytes: usize,
    /// What this instance's memories hold now.
    held: u64,
    /// Where the held bytes are counted: the metrics, the worker and the route's slot.
    metrics: Arc<Metrics>,
    worker: usize,
    slot: usize,
}

impl MemoryCap {
    /// The cap of a new instance of route `slot` on `worker`, which counts as started from now until it is dropped.
    pub(crate) fn new(max_bytes: usize, metrics: Arc<Metrics>, worker: usize, slot: usize) -> Self {
        metrics.plugin_instance_started(worker, slot);
        MemoryCap {
            max_bytes,
            held: 0,
            metrics,
            worker,
            slot,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Ok(false);
        }
        let grown = desired.saturating_sub(current) as u64;
        self.held += grown;
        self.metrics
            .plugin_memory_grown(self.worker, self.slot, grown);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table elements are host-side references a few bytes each; the memory cap bounds what could fill them.
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        self.metrics
            .plugin_memory_freed(self.worker, self.slot, self.held);
    }
}
