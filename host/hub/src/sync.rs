//! Locking shared state. A thread that panicked while holding one of the gateway's mutexes leaves the data behind
//! it consistent (no critical section here stops half-way on purpose), so a poisoned lock is taken as it is rather
//! than spreading the panic to every worker that touches the same state.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, also when a panicking holder poisoned it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks `rwlock` for reading, also when a panicking writer poisoned it.
pub fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks `rwlock` for writing, also when a panicking holder poisoned it.
pub fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
