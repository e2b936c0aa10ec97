//! The memory cap of one plugin instance, and its share of `wssgate_plugin_memory_bytes`: wasmtime asks before
//! every growth of a linear memory (its first allocation included), which is both where the route's
//! `max_memory_mib` is enforced and where the gateway learns how much memory its plugins hold.
//!
//! The cap covers the instance as a whole: every linear memory of every core module in the component, and its tables
//! (counted at [`TABLE_ELEMENT_BYTES`] an element), since a plugin is free to declare several memories (wasmtime
//! enables multi-memory) or to grow a table with null references that need no linear memory at all.
//!
//! A growth past the cap is refused, not trapped: `memory.grow` answers -1 and the plugin's allocator decides —
//! a Rust plugin aborts (a trap, so the instance is replaced), a JavaScript or Python engine may recover by
//! collecting garbage first. When the instance ends, what it held is given back to the gauge. It also counts the
//! route's live instances (`wssgate status`), since it lives exactly as long as its instance's store.

use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wssgate_hub::metrics::Metrics;

/// Core instances one plugin may create: a component made of several modules needs a few; no plugin needs more.
/// The same bounds its memories and tables (each core module has about one of each), so that a plugin cannot make
/// wasmtime reserve address space for thousands of them.
const MAX_CORE_INSTANCES: usize = 64;

/// What the host holds per table element: a reference to a function or a host object.
const TABLE_ELEMENT_BYTES: u64 = 8;

pub(crate) struct MemoryCap {
    /// The most this instance's memories and tables together may hold.
    max_bytes: u64,
    /// What this instance's memories and tables hold now.
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
            max_bytes: max_bytes as u64,
            held: 0,
            metrics,
            worker,
            slot,
        }
    }
}

impl MemoryCap {
    /// Counts `grown` more bytes held, unless that would pass the cap.
    fn grow(&mut self, grown: u64) -> bool {
        let held = self.held.saturating_add(grown);
        if held > self.max_bytes {
            return false;
        }
        self.held = held;
        self.metrics
            .plugin_memory_grown(self.worker, self.slot, grown);
        true
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current) as u64))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = desired.saturating_sub(current) as u64;
        Ok(self.grow(elements.saturating_mul(TABLE_ELEMENT_BYTES)))
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_CORE_INSTANCES
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        self.metrics
            .plugin_memory_freed(self.worker, self.slot, self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(max_bytes: usize) -> (MemoryCap, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new(vec!["/r".into()], 1));
        (MemoryCap::new(max_bytes, metrics.clone(), 0, 0), metrics)
    }

    #[test]
    fn the_cap_covers_all_memories_together() {
        let (mut cap, _metrics) = cap(3 << 20);
        // Two memories of 1 MiB each fit; a third memory's growth to 2 MiB would pass 3 MiB in all.
        assert!(cap.memory_growing(0, 1 << 20, None).unwrap());
        assert!(cap.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!cap.memory_growing(0, 2 << 20, None).unwrap());
        // Growing the first memory by the last MiB left still fits; one page more does not.
        assert!(cap.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert!(
            !cap.memory_growing(2 << 20, (2 << 20) + 65536, None)
                .unwrap()
        );
        assert_eq!(cap.held, 3 << 20);
    }

    #[test]
    fn tables_count_against_the_cap() {
        let (mut cap, _metrics) = cap(1 << 20);
        // A table of a thousand elements is nothing; 2^26 null references (512 MiB held by the host) are refused.
        assert!(cap.table_growing(0, 1000, None).unwrap());
        assert!(!cap.table_growing(1000, 1 << 26, None).unwrap());
        assert!(!cap.table_growing(0, usize::MAX, None).unwrap());
        assert_eq!(cap.held, 1000 * TABLE_ELEMENT_BYTES);
        assert_eq!(cap.memories(), MAX_CORE_INSTANCES);
        assert_eq!(cap.tables(), MAX_CORE_INSTANCES);
    }
}
