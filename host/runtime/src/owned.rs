//! Work a plugin instance starts that outlives the call that started it — timers, outbound HTTP requests, history
//! and storage requests — and the
//! one rule they share: it belongs to the instance *incarnation* that started it (each fresh instance after a trap
//! is a new incarnation) and, optionally, to one connection, and dies with either. Whatever it produces later comes
//! back to the worker as a [`Due`] event addressed to that instance, never into the middle of another plugin call.
//!
//! [`OwnedTasks`] is the per-worker index of such work, by id, incarnation and owner, so that every way it can end
//! (finished, cancelled, its connection closed, its instance replaced or retired) forgets it everywhere.

use crate::upstream::{HttpError, InFlight, UpstreamResponse};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use wssgate_hub::registry::ConnectionId;

/// Names one incarnation of a plugin instance, unique in the process.
pub(crate) type Incarnation = u64;

static INCARNATIONS: AtomicU64 = AtomicU64::new(1);

/// A number for a fresh instance.
pub(crate) fn next_incarnation() -> Incarnation {
    INCARNATIONS.fetch_add(1, Ordering::Relaxed)
}

/// Where a plugin instance's later events go: its worker's queue, and the instance's place on that worker.
#[derive(Clone)]
pub struct InstanceAddress {
    pub events: UnboundedSender<Due>,
    /// The routes generation (see reloads) the instance belongs to.
    pub generation: u64,
    /// The route's position in that generation, and the instance's among the route's instances on the worker.
    pub route_index: usize,
    pub instance_index: usize,
}

/// An event for the instance at an address, produced by work incarnation `incarnation` started (an event for an
/// incarnation since replaced is dropped).
pub struct Due {
    pub generation: u64,
    pub route_index: usize,
    pub instance_index: usize,
    pub incarnation: Incarnation,
    /// The connection the work was started for: a trap in the event is charged to it.
    pub owner: Option<ConnectionId>,
    pub event: DueEvent,
}

pub enum DueEvent {
    /// A timer fired.
    Timer(u64),
    /// An outbound request was answered or failed.
    Response {
        request: u64,
        result: Result<UpstreamResponse, HttpError>,
        /// The request's place under its upstream's in-flight cap, held until the plugin has the answer: answers
        /// waiting for the worker count too, so they cannot pile up past the cap.
        place: InFlight,
    },
    /// A history or storage request was answered.
    Stored {
        request: u64,
        answer: wssgate_storage::Answer,
    },
}

impl InstanceAddress {
    /// Queues `event` for this instance; false when the worker is gone.
    pub fn send(
        &self,
        incarnation: Incarnation,
        owner: Option<ConnectionId>,
        event: DueEvent,
    ) -> bool {
        self.events
            .send(Due {
                generation: self.generation,
                route_index: self.route_index,
                instance_index: self.instance_index,
                incarnation,
                owner,
                event,
            })
            .is_ok()
    }
}

/// One piece of running work; `K` is what its kind keeps besides (a timer's [`crate::timers`] fire flag, a
/// request's upstream client).
pub(crate) struct Owned<K> {
    pub task: AbortHandle,
    pub incarnation: Incarnation,
    pub owner: Option<ConnectionId>,
    pub kind: K,
}

/// A worker's running work of one kind, indexed every way it is ended.
pub(crate) struct OwnedTasks<K> {
    running: HashMap<u64, Owned<K>>,
    /// Live work of each incarnation: its cap, and what dies with it.
    by_incarnation: HashMap<Incarnation, HashSet<u64>>,
    /// Live work owned by each connection.
    by_owner: HashMap<ConnectionId, HashSet<u64>>,
}

impl<K> Default for OwnedTasks<K> {
    fn default() -> Self {
        OwnedTasks {
            running: HashMap::new(),
            by_incarnation: HashMap::new(),
            by_owner: HashMap::new(),
        }
    }
}

impl<K> OwnedTasks<K> {
    /// How much live work `incarnation` has.
    pub fn count(&self, incarnation: Incarnation) -> usize {
        self.by_incarnation
            .get(&incarnation)
            .map_or(0, HashSet::len)
    }

    /// All live work (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    pub fn insert(&mut self, id: u64, owned: Owned<K>) {
        self.by_incarnation
            .entry(owned.incarnation)
            .or_default()
            .insert(id);
        if let Some(owner) = owned.owner {
            self.by_owner.entry(owner).or_default().insert(id);
        }
        self.running.insert(id, owned);
    }

    pub fn get(&self, id: u64) -> Option<&Owned<K>> {
        self.running.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Owned<K>> {
        self.running.get_mut(&id)
    }

    /// Forgets `id` everywhere, returning it.
    pub fn remove(&mut self, id: u64) -> Option<Owned<K>> {
        let owned = self.running.remove(&id)?;
        remove_from(&mut self.by_incarnation, owned.incarnation, id);
        if let Some(owner) = owned.owner {
            remove_from(&mut self.by_owner, owner, id);
        }
        Some(owned)
    }

    /// The work `conn` owns.
    pub(crate) fn owned_by(&self, conn: ConnectionId) -> Vec<u64> {
        self.by_owner
            .get(&conn)
            .map_or_else(Vec::new, |s| s.iter().copied().collect())
    }

    /// The work of `incarnation`; with `unowned_only`, only what no connection owns.
    pub(crate) fn of_incarnation(&self, incarnation: Incarnation, unowned_only: bool) -> Vec<u64> {
        self.by_incarnation
            .get(&incarnation)
            .map_or_else(Vec::new, |s| {
                s.iter()
                    .copied()
                    .filter(|id| {
                        !unowned_only || self.running.get(id).is_some_and(|e| e.owner.is_none())
                    })
                    .collect()
            })
    }

    /// Whether no connection owns any live work (for tests).
    #[cfg(test)]
    pub(crate) fn owners_is_empty(&self) -> bool {
        self.by_owner.is_empty()
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
