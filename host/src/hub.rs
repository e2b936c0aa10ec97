//! State shared by all workers: groups, users, sessions and connection details — what lets a plugin on worker 1
//! publish to members on worker 2, like GatewayWorker's joinGroup/sendToGroup, bindUid/sendToUid and sessions.
//!
//! The hub holds ids, never sockets: a delivery to a connection on another worker travels through that worker's
//! channel, and the worker puts it in the connection's outbound queue. A message is built once and shared by all
//! its recipients (its payload is reference-counted), and each recipient's queue limit still applies.
//!
//! Groups and users are scoped to a route, so two applications on two paths cannot see each other's.

use crate::registry::{self, ConnectionId, IdMap, IdSet};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;

/// The most bytes (keys and values) one connection's session may hold.
pub const MAX_SESSION_BYTES: usize = 64 * 1024;

/// Messages for connections of one worker.
pub struct Delivery {
    pub message: Message,
    pub targets: Vec<ConnectionId>,
}

/// What the hub knows of an open connection.
pub struct ConnectionDetails {
    /// The route's path, which scopes groups and users (and stays right across a reload that reorders routes).
    pub route: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub remote_address: String,
    pub subprotocol: Option<String>,
    pub connected_at_ms: u64,
}

/// A connection's entry: its details, groups, user and session.
struct Member {
    details: Arc<ConnectionDetails>,
    groups: HashSet<String>,
    user: Option<String>,
    session: BTreeMap<String, String>,
    session_bytes: usize,
}

#[derive(Default)]
struct State {
    members: IdMap<Member>,
    /// Members of each (route, group).
    groups: HashMap<(String, String), IdSet>,
    /// Connections of each (route, uid).
    users: HashMap<(String, String), IdSet>,
    /// Connections of each route, for broadcasts.
    routes: HashMap<String, IdSet>,
}

/// Why a session value was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    UnknownConnection,
    TooLarge,
}

pub struct Hub {
    state: Mutex<State>,
    /// One channel per worker, indexed by the worker number in a connection id's high bits.
    workers: Vec<UnboundedSender<Delivery>>,
}

impl Hub {
    /// A hub for `workers` workers, with the receiving end of each worker's delivery channel.
    pub fn new(workers: usize) -> (Arc<Hub>, Vec<UnboundedReceiver<Delivery>>) {
        let (senders, receivers) = (0..workers).map(|_| unbounded_channel()).unzip();
        (
            Arc::new(Hub {
                state: Mutex::default(),
                workers: senders,
            }),
            receivers,
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an open connection.
    pub fn open(&self, id: ConnectionId, details: Arc<ConnectionDetails>) {
        let mut state = self.lock();
        state
            .routes
            .entry(details.route.clone())
            .or_default()
            .insert(id);
        let member = Member {
            details,
            groups: HashSet::new(),
            user: None,
            session: BTreeMap::new(),
            session_bytes: 0,
        };
        state.members.insert(id, member);
    }

    /// Forgets a closed connection: it leaves its groups, its user and its session.
    pub fn close(&self, id: ConnectionId) {
        let mut state = self.lock();
        let Some(member) = state.members.remove(&id) else {
            return;
        };
        let route = member.details.route.clone();
        for group in member.groups {
            remove_from(&mut state.groups, (route.clone(), group), id);
        }
        if let Some(uid) = member.user {
            remove_from(&mut state.users, (route.clone(), uid), id);
        }
        if let Some(all) = state.routes.get_mut(&route) {
            all.remove(&id);
        }
    }

    pub fn details(&self, id: ConnectionId) -> Option<Arc<ConnectionDetails>> {
        self.lock().members.get(&id).map(|m| m.details.clone())
    }

    pub fn join(&self, id: ConnectionId, group: &str) {
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(&id) else {
            return;
        };
        member.groups.insert(group.to_owned());
        let route = member.details.route.clone();
        state
            .groups
            .entry((route, group.to_owned()))
            .or_default()
            .insert(id);
    }

    pub fn leave(&self, id: ConnectionId, group: &str) {
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(&id) else {
            return;
        };
        member.groups.remove(group);
        let route = member.details.route.clone();
        remove_from(&mut state.groups, (route, group.to_owned()), id);
    }

    pub fn group_size(&self, route: &str, group: &str) -> usize {
        self.lock()
            .groups
            .get(&(route.to_owned(), group.to_owned()))
            .map_or(0, HashSet::len)
    }

    pub fn groups_of(&self, id: ConnectionId) -> Vec<String> {
        let state = self.lock();
        let mut groups: Vec<String> = state
            .members
            .get(&id)
            .map(|m| m.groups.iter().cloned().collect())
            .unwrap_or_default();
        groups.sort();
        groups
    }

    pub fn bind_user(&self, id: ConnectionId, uid: &str) {
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(&id) else {
            return;
        };
        let route = member.details.route.clone();
        let previous = member.user.replace(uid.to_owned());
        if let Some(previous) = previous {
            remove_from(&mut state.users, (route.clone(), previous), id);
        }
        state
            .users
            .entry((route, uid.to_owned()))
            .or_default()
            .insert(id);
    }

    pub fn unbind_user(&self, id: ConnectionId) {
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(&id) else {
            return;
        };
        let route = member.details.route.clone();
        if let Some(uid) = member.user.take() {
            remove_from(&mut state.users, (route, uid), id);
        }
    }

    pub fn connections_of_user(&self, route: &str, uid: &str) -> Vec<ConnectionId> {
        let state = self.lock();
        let mut ids: Vec<ConnectionId> = state
            .users
            .get(&(route.to_owned(), uid.to_owned()))
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    pub fn session_set(
        &self,
        id: ConnectionId,
        key: &str,
        value: &str,
    ) -> Result<(), SessionError> {
        let mut state = self.lock();
        let member = state
            .members
            .get_mut(&id)
            .ok_or(SessionError::UnknownConnection)?;
        let old = member.session.get(key).map_or(0, |v| key.len() + v.len());
        let new_total = member.session_bytes - old + key.len() + value.len();
        if new_total > MAX_SESSION_BYTES {
            return Err(SessionError::TooLarge);
        }
        member.session.insert(key.to_owned(), value.to_owned());
        member.session_bytes = new_total;
        Ok(())
    }

    pub fn session_get(&self, id: ConnectionId, key: &str) -> Option<String> {
        self.lock()
            .members
            .get(&id)
            .and_then(|m| m.session.get(key).cloned())
    }

    pub fn session_remove(&self, id: ConnectionId, key: &str) {
        let mut state = self.lock();
        if let Some(member) = state.members.get_mut(&id)
            && let Some(value) = member.session.remove(key)
        {
            member.session_bytes -= key.len() + value.len();
        }
    }

    /// Sends to every member of (route, group) but `exclude`; returns how many it went to.
    pub fn publish(
        &self,
        route: &str,
        group: &str,
        message: Message,
        exclude: &[ConnectionId],
    ) -> usize {
        let targets = self.select(
            |s| s.groups.get(&(route.to_owned(), group.to_owned())),
            exclude,
        );
        self.deliver(message, targets)
    }

    /// Sends to every connection of (route, uid); returns how many.
    pub fn send_to_user(&self, route: &str, uid: &str, message: Message) -> usize {
        let targets = self.select(|s| s.users.get(&(route.to_owned(), uid.to_owned())), &[]);
        self.deliver(message, targets)
    }

    /// Sends to every connection of the route but `exclude`; returns how many.
    pub fn broadcast(&self, route: &str, message: Message, exclude: &[ConnectionId]) -> usize {
        let targets = self.select(|s| s.routes.get(route), exclude);
        self.deliver(message, targets)
    }

    fn select(
        &self,
        set: impl FnOnce(&State) -> Option<&IdSet>,
        exclude: &[ConnectionId],
    ) -> Vec<ConnectionId> {
        let state = self.lock();
        set(&state).map_or_else(Vec::new, |ids| {
            ids.iter()
                .copied()
                .filter(|id| !exclude.contains(id))
                .collect()
        })
    }

    /// Hands `message` to each target's worker: directly for this thread's own connections, through the worker's
    /// channel for the others. One message value is shared by all of them.
    fn deliver(&self, message: Message, targets: Vec<ConnectionId>) -> usize {
        let count = targets.len();
        let here = registry::current_worker();
        let mut per_worker: HashMap<usize, Vec<ConnectionId>> = HashMap::new();
        for id in targets {
            per_worker
                .entry(registry::worker_of(id))
                .or_default()
                .push(id);
        }
        for (worker, ids) in per_worker {
            if Some(worker) == here {
                deliver_here(&message, &ids);
            } else if let Some(channel) = self.workers.get(worker) {
                let _ = channel.send(Delivery {
                    message: message.clone(),
                    targets: ids,
                });
            }
        }
        count
    }
}

/// Queues `message` for each of this worker's `targets` and wakes their writers. A target whose queue is full is
/// closed as a slow consumer by its outbox; one that is gone is skipped.
pub fn deliver_here(message: &Message, targets: &[ConnectionId]) {
    for id in targets {
        if let Some(outbox) = registry::get(*id)
            && outbox.push(message.clone()).is_ok()
        {
            outbox.wake();
        }
    }
}

fn remove_from<K: std::hash::Hash + Eq>(map: &mut HashMap<K, IdSet>, key: K, id: ConnectionId) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}
