//! The history and storage requests of a worker's plugins that wait for their answers: what makes each answer an
//! event exactly once, what the per-instance cap (`max_storage_requests_per_instance`) counts, and what a closing
//! connection or a replaced instance cancels.
//!
//! A retired instance (a reload replaced its generation) keeps getting its answers: it still serves its connections,
//! and its requests keep counting against its cap until they are answered.
//!
//! A request, once handed to the store, cannot be taken back — a write may already be on disk — so cancelling one
//! only forgets it here, and its answer, when it comes, is dropped by [`StorageRequests::delivered`]. The store still
//! does the work, so the cap also counts, per instance and across its incarnations, the requests the store holds
//! ([`InStore`]) until it answers them: otherwise a plugin (or a client of it) that asks and then closes its
//! connection, or traps, could queue unbounded work — and pages of up to 4 MiB — in the store shared by every route.

use crate::owned::Incarnation;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wssgate_hub::registry::ConnectionId;

/// The requests one plugin instance (all its incarnations) has handed to the store and the store has not answered:
/// cancelled or not, they are work and memory the store holds for it.
#[derive(Default)]
pub struct InStore {
    requests: AtomicUsize,
    reads: AtomicUsize,
}

impl InStore {
    /// Requests in the store, and how many of them are history reads.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed),
        )
    }

    /// Counts a request handed to the store until the returned token is dropped, which its answer callback does
    /// when the store answers (or drops the request unanswered).
    pub fn enter(self: &Arc<Self>, read: bool) -> InStoreToken {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if read {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        InStoreToken {
            counts: self.clone(),
            read,
        }
    }
}

/// One request counted in its instance's [`InStore`] while it lives.
pub struct InStoreToken {
    counts: Arc<InStore>,
    read: bool,
}

impl Drop for InStoreToken {
    fn drop(&mut self) {
        self.counts.requests.fetch_sub(1, Ordering::Relaxed);
        if self.read {
            self.counts.reads.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One worker's waiting requests.
pub struct StorageRequests {
    /// The worker's index: the top bits of its request ids, so they are unique across the gateway.
    worker: usize,
    table: RefCell<Table>,
}

#[derive(Default)]
struct Table {
    /// Each waiting request: its incarnation, owner, and whether it is a history read.
    waiting: HashMap<u64, (Incarnation, Option<ConnectionId>, bool)>,
    /// Waiting history reads, by incarnation.
    reads: HashMap<Incarnation, usize>,
    by_incarnation: HashMap<Incarnation, HashSet<u64>>,
    by_owner: HashMap<ConnectionId, HashSet<u64>>,
    last: u64,
}

impl StorageRequests {
    pub fn new(worker: usize) -> Self {
        StorageRequests {
            worker,
            table: RefCell::default(),
        }
    }

    /// How many requests `incarnation` has waiting.
    pub fn count(&self, incarnation: Incarnation) -> usize {
        self.table
            .borrow()
            .by_incarnation
            .get(&incarnation)
            .map_or(0, HashSet::len)
    }

    /// How many history reads `incarnation` has waiting.
    pub fn reads(&self, incarnation: Incarnation) -> usize {
        self.table
            .borrow()
            .reads
            .get(&incarnation)
            .copied()
            .unwrap_or(0)
    }

    /// A new request's id, recorded as waiting for its event (`read`: a history read).
    pub fn start(&self, incarnation: Incarnation, owner: Option<ConnectionId>, read: bool) -> u64 {
        let mut table = self.table.borrow_mut();
        table.last += 1;
        let id = ((self.worker as u64) << 48) | table.last;
        table.waiting.insert(id, (incarnation, owner, read));
        table
            .by_incarnation
            .entry(incarnation)
            .or_default()
            .insert(id);
        if let Some(owner) = owner {
            table.by_owner.entry(owner).or_default().insert(id);
        }
        if read {
            *table.reads.entry(incarnation).or_default() += 1;
        }
        id
    }

    /// The worker took request `id`'s answer: true when it is to be delivered (the request is then forgotten), false
    /// when it was cancelled meanwhile.
    pub fn delivered(&self, id: u64) -> bool {
        self.table.borrow_mut().forget(id)
    }

    /// Forgets the requests a closing connection owns: their answers are dropped.
    pub fn cancel_owned_by(&self, conn: ConnectionId) {
        let mut table = self.table.borrow_mut();
        for id in table.by_owner.remove(&conn).unwrap_or_default() {
            table.forget(id);
        }
    }

    /// Forgets the requests of an incarnation that is gone (replaced, taken down, or ended).
    pub(crate) fn cancel_incarnation(&self, incarnation: Incarnation) {
        let mut table = self.table.borrow_mut();
        for id in table
            .by_incarnation
            .remove(&incarnation)
            .unwrap_or_default()
        {
            table.forget(id);
        }
    }
}

impl Table {
    fn forget(&mut self, id: u64) -> bool {
        let Some((incarnation, owner, read)) = self.waiting.remove(&id) else {
            return false;
        };
        if read && let Some(reads) = self.reads.get_mut(&incarnation) {
            *reads -= 1;
            if *reads == 0 {
                self.reads.remove(&incarnation);
            }
        }
        remove_from(&mut self.by_incarnation, incarnation, id);
        if let Some(owner) = owner {
            remove_from(&mut self.by_owner, owner, id);
        }
        true
    }
}

fn remove_from(map: &mut HashMap<u64, HashSet<u64>>, key: u64, id: u64) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_a_request_ends_forgets_it_everywhere() {
        let requests = StorageRequests::new(3);
        let owned = requests.start(7, Some(100), true);
        let unowned = requests.start(7, None, false);
        let other = requests.start(8, None, true);
        assert_eq!(owned >> 48, 3);
        assert_eq!((requests.count(7), requests.reads(7)), (2, 1));
        requests.cancel_owned_by(100);
        assert!(!requests.delivered(owned), "cancelled with its owner");
        assert_eq!((requests.count(7), requests.reads(7)), (1, 0));
        assert!(requests.delivered(unowned));
        assert!(requests.delivered(other));
        assert!(!requests.delivered(other), "exactly once");
        let late = requests.start(9, Some(5), true);
        requests.cancel_incarnation(9);
        assert!(!requests.delivered(late));
        let table = requests.table.borrow();
        assert!(table.waiting.is_empty() && table.by_owner.is_empty());
        assert!(table.by_incarnation.is_empty() && table.reads.is_empty());
    }

    #[test]
    fn a_request_counts_in_the_store_until_its_token_is_dropped() {
        let in_store = Arc::new(InStore::default());
        let read = in_store.enter(true);
        let write = in_store.enter(false);
        assert_eq!(in_store.counts(), (2, 1));
        // Cancelling a request here changes nothing there: only the store's answer (dropping the token) does.
        let requests = StorageRequests::new(0);
        let id = requests.start(1, Some(5), true);
        requests.cancel_owned_by(5);
        assert!(!requests.delivered(id));
        assert_eq!(in_store.counts(), (2, 1));
        let answer = move || drop(read);
        answer();
        assert_eq!(in_store.counts(), (1, 0));
        drop(write);
        assert_eq!(in_store.counts(), (0, 0));
    }
}
