//! The worker's table of live connections: how a host call that names a connection id finds its outbound queue.
//!
//! A worker owns its thread and its table ([`Connections`]), so host calls reach it without a lock. The ids and
//! what they say (which node, which worker) are here too.

use crate::outbound::Outbox;
use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A connection id: this gateway process's tag in the top 20 bits ([`node_tag`]: random at every start, so the ids
/// of different nodes, and of one node across restarts, differ; it is also how a cluster finds the node that holds
/// a connection), the worker's index in the next 8, and a per-worker counter in the low 36 (68 billion connections
/// per worker and start).
pub type ConnectionId = u64;

/// Where the parts of a [`ConnectionId`] start.
const TAG_SHIFT: u32 = 44;
const WORKER_SHIFT: u32 = 36;

/// A map keyed by connection ids. It hashes with Fx, fast and unkeyed: the ids are the gateway's own counters, not
/// client input, so nobody can choose colliding keys, and these maps are looked up on every message and for every
/// member of a publish.
pub type IdMap<V> = FxHashMap<ConnectionId, V>;
/// A set of connection ids, hashed like [`IdMap`].
pub type IdSet = FxHashSet<ConnectionId>;

/// A live connection as host calls find it.
struct Entry {
    outbox: Rc<Outbox>,
    /// The route's path: a plugin reaches only connections of its own route.
    route: Rc<str>,
    /// The plugin instance that serves the connection (see `PluginInstance::uid`): only it may tie work (timers,
    /// requests) to the connection, since only it gets that work's events.
    served_by: u64,
}

/// A worker's live connections. The worker that owns it passes it to what needs it; it is not `Sync`, so only
/// that worker's thread ever touches it (see `wssgate_runtime::worker` for how a plugin's host calls reach it).
pub struct Connections {
    /// The worker's index, bits 36 to 43 of its ids.
    worker: u64,
    /// The last id handed out.
    last: Cell<u64>,
    table: RefCell<IdMap<Entry>>,
}

/// The worker a connection lives on.
pub(crate) fn worker_of(id: ConnectionId) -> usize {
    ((id >> WORKER_SHIFT) & 0xff) as usize
}

/// The tag of the process (node) that holds connection `id`.
pub fn node_tag_of(id: ConnectionId) -> u32 {
    (id >> TAG_SHIFT) as u32
}

/// This process's tag, the top 20 bits of its connection ids: random at every start and never zero. Two nodes
/// clash with a chance of one in a million per pair; a cluster node that hears another with its own tag says so in
/// its log.
pub fn node_tag() -> u32 {
    static TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        ((random & 0xf_ffff) as u32).max(1)
    })
}

impl Connections {
    /// The table of worker `index`: its connection ids carry the index.
    pub fn new(index: usize) -> Self {
        Connections {
            worker: index as u64,
            last: Cell::new(0),
            table: RefCell::default(),
        }
    }

    /// The index of the worker that owns the table.
    pub fn worker(&self) -> usize {
        self.worker as usize
    }

    /// Registers a new connection of the route at path `route` and returns its id.
    pub fn open(&self, outbox: Rc<Outbox>, route: Rc<str>, served_by: u64) -> ConnectionId {
        let next = self.last.get() + 1;
        self.last.set(next);
        let id = (u64::from(node_tag()) << TAG_SHIFT) | (self.worker << WORKER_SHIFT) | next;
        self.table.borrow_mut().insert(
            id,
            Entry {
                outbox,
                route,
                served_by,
            },
        );
        id
    }

    /// The outbound queue of connection `id`, if it is open on this worker. For the gateway's own use; a plugin's
    /// call goes through [`Connections::get_on_route`].
    #[inline]
    pub fn get(&self, id: ConnectionId) -> Option<Rc<Outbox>> {
        self.table.borrow().get(&id).map(|e| e.outbox.clone())
    }

    /// The outbound queue of connection `id` if it is open on this worker and belongs to the route at path
    /// `route`; another route's connection is not found.
    #[inline]
    pub fn get_on_route(&self, id: ConnectionId, route: &str) -> Option<Rc<Outbox>> {
        self.table
            .borrow()
            .get(&id)
            .filter(|e| &*e.route == route)
            .map(|e| e.outbox.clone())
    }

    /// Whether connection `id` is open on this worker, on `route`, served by the plugin instance whose uid is `served_by`: what an
    /// owner of a timer or request must be.
    pub fn is_served_by(&self, id: ConnectionId, route: &str, served_by: u64) -> bool {
        self.table
            .borrow()
            .get(&id)
            .is_some_and(|e| &*e.route == route && e.served_by == served_by)
    }

    pub fn remove(&self, id: ConnectionId) {
        self.table.borrow_mut().remove(&id);
    }

    /// How many connections this worker has open.
    pub fn len(&self) -> usize {
        self.table.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks every open connection of this worker to close with `frame` (on shutdown). Each session writes it and
    /// waits for its client's answer; a connection that opens afterwards sees the shutdown itself (see
    /// `Session::open`).
    pub fn close_all(&self, frame: &tokio_tungstenite::tungstenite::protocol::CloseFrame) {
        for entry in self.table.borrow().values() {
            entry.outbox.request_close(frame.clone());
            entry.outbox.wake();
        }
    }
}
