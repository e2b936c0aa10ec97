//! State shared by all workers: groups, users, sessions and connection details — what lets a plugin on worker 1
//! publish to members on worker 2, like GatewayWorker's joinGroup/sendToGroup, bindUid/sendToUid and sessions.
//!
//! Everything is scoped to a route: every call names the route it acts for, and a connection of another route is
//! treated exactly like an unknown one, so two applications on two paths cannot see or touch each other's clients.
//!
//! The hub holds ids, never sockets. A publish reaches another worker as one small [`delivery::Delivery`] naming its audience
//! (a group, a user, the route), not a list of members: the receiving worker looks up its own members when it
//! takes the delivery, so the message's size does not grow with the group. Each worker's queue of deliveries is
//! bounded in bytes; past the bound, that worker's copy is dropped and counted (`wssgate_cap_hits_total`).
//!
//! This file holds the hub itself and membership: connections, groups, users and sessions. [`delivery`] moves a
//! message to an audience's members; [`peering`] is the hub's side of the cluster link.

pub use crate::audience::Audience;
use crate::metrics::{CapHit, Metrics};
use crate::peers::{Peers, PresenceKey, PresencePiece, Publication};
use crate::registry::{self, ConnectionId, Connections, IdMap, IdSet};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;

/// The most bytes (keys and values) one connection's session may hold.
pub(crate) const MAX_SESSION_BYTES: usize = 64 * 1024;

/// What the hub knows of an open connection.
pub struct ConnectionDetails {
    /// The route's path, which scopes groups, users and every host call (and stays right across a reload that
    /// reorders routes).
    pub route: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub remote_address: String,
    /// The client's address, after trusted-proxy resolution: what the trap throttle counts.
    pub client_ip: IpAddr,
    pub subprotocol: Option<String>,
    pub connected_at_ms: u64,
    /// Messages and payload bytes each way so far: the session counts, the access log and `wssgate connections`
    /// read.
    pub traffic: Traffic,
}

/// Messages and payload bytes each way over one connection, counted by its session (on its worker) and read from
/// anywhere.
#[derive(Default)]
pub struct Traffic {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
}

/// What [`Traffic`] held when it was read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrafficCount {
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
}

impl Traffic {
    /// A message of `bytes` came from the client.
    #[inline]
    pub fn received(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A message of `bytes` went to the client.
    #[inline]
    pub fn sent(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> TrafficCount {
        TrafficCount {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// One connection as `wssgate connections` lists it.
#[derive(Debug, Clone)]
pub struct ConnectionSummary {
    pub id: ConnectionId,
    pub route: String,
    pub remote_address: String,
    pub user: Option<String>,
    pub groups: usize,
    pub connected_at_ms: u64,
    pub traffic: TrafficCount,
    /// Open (its WebSocket is up), or still waiting for the plugin's answer to its upgrade.
    pub open: bool,
}

/// A connection's entry: its details, groups, user and session.
struct Member {
    details: Arc<ConnectionDetails>,
    groups: HashSet<String>,
    user: Option<String>,
    session: BTreeMap<String, String>,
    session_bytes: usize,
}

/// The members of one audience, one set per worker, so a worker finds its own without scanning the others'.
#[derive(Default)]
struct Members(Vec<IdSet>);

impl Members {
    fn insert(&mut self, id: ConnectionId) {
        let worker = registry::worker_of(id);
        if self.0.len() <= worker {
            self.0.resize_with(worker + 1, IdSet::default);
        }
        self.0[worker].insert(id);
    }

    fn remove(&mut self, id: ConnectionId) {
        if let Some(set) = self.0.get_mut(registry::worker_of(id)) {
            set.remove(&id);
        }
    }

    fn len(&self) -> usize {
        self.0.iter().map(|set| set.len()).sum()
    }

    fn contains(&self, id: ConnectionId) -> bool {
        self.on_worker(registry::worker_of(id))
            .is_some_and(|set| set.contains(&id))
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|set| set.is_empty())
    }

    fn on_worker(&self, worker: usize) -> Option<&IdSet> {
        self.0.get(worker)
    }

    /// Every member, in no order.
    fn ids(&self) -> Vec<ConnectionId> {
        self.0.iter().flatten().copied().collect()
    }
}

#[derive(Default)]
struct State {
    members: IdMap<Member>,
    /// Members of each (route, group).
    groups: HashMap<(String, String), Members>,
    /// Connections of each (route, uid).
    users: HashMap<(String, String), Members>,
    /// Connections of each route, for broadcasts.
    routes: HashMap<String, Members>,
}

impl State {
    fn audience(&self, route: &str, audience: &Audience) -> Option<&Members> {
        match audience {
            Audience::Group(group) => self.groups.get(&(route.to_owned(), group.clone())),
            Audience::User(uid) => self.users.get(&(route.to_owned(), uid.clone())),
            Audience::Route => self.routes.get(route),
            // One connection is not a member set: see `Hub::send_to_connection`.
            Audience::Connection(_) => None,
        }
    }

    /// The member `id` if it is open on `route`: another route's connection is not found.
    fn member_mut(&mut self, route: &str, id: ConnectionId) -> Option<&mut Member> {
        self.members
            .get_mut(&id)
            .filter(|m| m.details.route == route)
    }

    fn member(&self, route: &str, id: ConnectionId) -> Option<&Member> {
        self.members.get(&id).filter(|m| m.details.route == route)
    }
}

/// What became of a message for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Queued for the connection's worker.
    Queued,
    /// No such connection on the route (closed, unknown, or another route's).
    Unknown,
    /// The connection's worker has `max_worker_queue_bytes` of deliveries waiting: this one was dropped.
    Dropped,
}

/// Why the hub refused a change.
#[derive(Debug, PartialEq, Eq)]
pub enum HubRefusal {
    /// Closed, unknown, or another route's.
    UnknownConnection,
    /// The connection is in `max_groups_per_connection` groups already.
    TooManyGroups,
    /// The session would pass [`MAX_SESSION_BYTES`].
    TooLarge,
}

pub struct Hub {
    state: Mutex<State>,
    /// One queue per worker, indexed by the worker number a connection id carries (`registry::worker_of`).
    workers: Vec<WorkerQueue>,
    /// The most bytes one worker's queue may hold (`max_worker_queue_bytes`, replaced on reload).
    max_queue_bytes: AtomicUsize,
    /// Counts dropped deliveries.
    metrics: Arc<Metrics>,
    /// When a dropped delivery was last logged, in seconds since the hub started, so a storm logs once a second.
    last_drop_log: AtomicU64,
    started: std::time::Instant,
    /// The link to the other nodes, in cluster mode: publications go to it, and it learns which audiences this
    /// node has members of.
    cluster: std::sync::OnceLock<Box<dyn Peers>>,
}

impl Hub {
    /// A hub for `workers` workers, with the receiving end of each worker's delivery queue.
    pub fn new(
        workers: usize,
        max_queue_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> (Arc<Hub>, Vec<DeliveryReceiver>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| unbounded_channel()).unzip();
        let hub = Arc::new(Hub {
            state: Mutex::default(),
            workers: senders
                .into_iter()
                .map(|channel| WorkerQueue {
                    channel,
                    queued_bytes: AtomicUsize::new(0),
                })
                .collect(),
            max_queue_bytes: AtomicUsize::new(max_queue_bytes),
            metrics,
            last_drop_log: AtomicU64::new(u64::MAX),
            started: std::time::Instant::now(),
            cluster: std::sync::OnceLock::new(),
        });
        let receivers = receivers
            .into_iter()
            .enumerate()
            .map(|(worker, channel)| DeliveryReceiver {
                hub: hub.clone(),
                worker,
                channel,
            })
            .collect();
        (hub, receivers)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Registers a connection whose plugin is being asked about its upgrade: from now on it has details, groups,
    /// a user and a session. It joins the route's audience (broadcasts) only once it opens ([`Hub::opened`]).
    pub fn register(&self, id: ConnectionId, details: Arc<ConnectionDetails>) {
        let member = Member {
            details,
            groups: HashSet::new(),
            user: None,
            session: BTreeMap::new(),
            session_bytes: 0,
        };
        self.lock().members.insert(id, member);
    }

    /// The connection's WebSocket opened: broadcasts to its route reach it from now on.
    pub fn opened(&self, id: ConnectionId) {
        let mut state = self.lock();
        let Some(route) = state.members.get(&id).map(|m| m.details.route.clone()) else {
            return;
        };
        let first = !state.routes.contains_key(&route);
        state.routes.entry(route.clone()).or_default().insert(id);
        if first {
            self.interest(&route, &Audience::Route, true);
        }
    }

    /// Forgets a closed connection: it leaves its groups, its user and its session.
    pub fn close(&self, id: ConnectionId) {
        let mut state = self.lock();
        let Some(member) = state.members.remove(&id) else {
            return;
        };
        let route = member.details.route.clone();
        for group in member.groups {
            let emptied = remove_from(&mut state.groups, (route.clone(), group.clone()), id);
            self.left(&route, Audience::Group(group), emptied);
        }
        if let Some(uid) = member.user {
            let emptied = remove_from(&mut state.users, (route.clone(), uid.clone()), id);
            self.left(&route, Audience::User(uid), emptied);
        }
        if remove_from(&mut state.routes, route.clone(), id) {
            self.interest(&route, &Audience::Route, false);
        }
    }

    /// A member left `audience` on `route`: the other nodes learn of it, and, if it was the last here, this node
    /// loses interest.
    fn left(&self, route: &str, audience: Audience, emptied: bool) {
        self.changed(route, &audience);
        if emptied {
            self.interest(route, &audience, false);
        }
    }

    /// A member joined `audience` on `route`; `first` if it is the first here.
    fn joined(&self, route: &str, audience: Audience, first: bool) {
        // Interest first: the link subscribes before it announces the member.
        if first {
            self.interest(route, &audience, true);
        }
        self.changed(route, &audience);
    }

    /// How many connections of `route` (every route with `None`) this node holds, and the first `limit` by id.
    pub fn connections(
        &self,
        route: Option<&str>,
        limit: usize,
    ) -> (usize, Vec<ConnectionSummary>) {
        let state = self.lock();
        let mut ids: Vec<ConnectionId> = state
            .members
            .iter()
            .filter(|(_, m)| route.is_none_or(|r| m.details.route == r))
            .map(|(id, _)| *id)
            .collect();
        let total = ids.len();
        ids.sort_unstable();
        ids.truncate(limit);
        let listed = ids
            .into_iter()
            .filter_map(|id| {
                let m = state.members.get(&id)?;
                let open = state
                    .routes
                    .get(&m.details.route)
                    .is_some_and(|members| members.contains(id));
                Some(ConnectionSummary {
                    id,
                    route: m.details.route.clone(),
                    remote_address: m.details.remote_address.clone(),
                    user: m.user.clone(),
                    groups: m.groups.len(),
                    connected_at_ms: m.details.connected_at_ms,
                    traffic: m.details.traffic.count(),
                    open,
                })
            })
            .collect();
        (total, listed)
    }

    /// The details of connection `id` if it is open on `route`.
    pub fn details(&self, route: &str, id: ConnectionId) -> Option<Arc<ConnectionDetails>> {
        self.lock().member(route, id).map(|m| m.details.clone())
    }

    /// Adds `id` to `group`, unless that would put it in more than `max_groups` groups.
    pub fn join(
        &self,
        route: &str,
        id: ConnectionId,
        group: &str,
        max_groups: usize,
    ) -> Result<(), HubRefusal> {
        let mut state = self.lock();
        let member = state
            .member_mut(route, id)
            .ok_or(HubRefusal::UnknownConnection)?;
        if member.groups.contains(group) {
            return Ok(());
        }
        if member.groups.len() >= max_groups {
            return Err(HubRefusal::TooManyGroups);
        }
        member.groups.insert(group.to_owned());
        let key = (route.to_owned(), group.to_owned());
        let first = !state.groups.contains_key(&key);
        state.groups.entry(key).or_default().insert(id);
        self.joined(route, Audience::Group(group.to_owned()), first);
        Ok(())
    }

    pub fn leave(&self, route: &str, id: ConnectionId, group: &str) {
        let mut state = self.lock();
        let Some(member) = state.member_mut(route, id) else {
            return;
        };
        if member.groups.remove(group) {
            let emptied = remove_from(&mut state.groups, (route.to_owned(), group.to_owned()), id);
            self.left(route, Audience::Group(group.to_owned()), emptied);
        }
    }

    /// Members of the group on this node and, in a cluster, on the others as they last announced.
    pub fn group_size(&self, route: &str, group: &str) -> usize {
        let here = self
            .lock()
            .groups
            .get(&(route.to_owned(), group.to_owned()))
            .map_or(0, Members::len);
        let others = self.cluster.get();
        here + others.map_or(0, |c| c.group_size(route, group))
    }

    pub fn groups_of(&self, route: &str, id: ConnectionId) -> Vec<String> {
        let state = self.lock();
        let mut groups: Vec<String> = state
            .member(route, id)
            .map(|m| m.groups.iter().cloned().collect())
            .unwrap_or_default();
        groups.sort();
        groups
    }

    pub fn bind_user(&self, route: &str, id: ConnectionId, uid: &str) -> Result<(), HubRefusal> {
        let mut state = self.lock();
        let member = state
            .member_mut(route, id)
            .ok_or(HubRefusal::UnknownConnection)?;
        if member.user.as_deref() == Some(uid) {
            return Ok(());
        }
        let previous = member.user.replace(uid.to_owned());
        if let Some(previous) = previous {
            let emptied = remove_from(&mut state.users, (route.to_owned(), previous.clone()), id);
            self.left(route, Audience::User(previous), emptied);
        }
        let key = (route.to_owned(), uid.to_owned());
        let first = !state.users.contains_key(&key);
        state.users.entry(key).or_default().insert(id);
        self.joined(route, Audience::User(uid.to_owned()), first);
        Ok(())
    }

    pub fn unbind_user(&self, route: &str, id: ConnectionId) {
        let mut state = self.lock();
        let Some(member) = state.member_mut(route, id) else {
            return;
        };
        if let Some(uid) = member.user.take() {
            let emptied = remove_from(&mut state.users, (route.to_owned(), uid.clone()), id);
            self.left(route, Audience::User(uid), emptied);
        }
    }

    /// The user's connections on this node and, in a cluster, on the others as they last announced.
    pub fn connections_of_user(&self, route: &str, uid: &str) -> Vec<ConnectionId> {
        let mut ids: Vec<ConnectionId> = self
            .lock()
            .users
            .get(&(route.to_owned(), uid.to_owned()))
            .map(Members::ids)
            .unwrap_or_default();
        if let Some(cluster) = self.cluster.get() {
            ids.extend(cluster.connections_of_user(route, uid));
        }
        ids.sort_unstable();
        ids
    }

    pub fn session_set(
        &self,
        route: &str,
        id: ConnectionId,
        key: &str,
        value: &str,
    ) -> Result<(), HubRefusal> {
        let mut state = self.lock();
        let member = state
            .member_mut(route, id)
            .ok_or(HubRefusal::UnknownConnection)?;
        let old = member.session.get(key).map_or(0, |v| key.len() + v.len());
        let new_total = member.session_bytes - old + key.len() + value.len();
        if new_total > MAX_SESSION_BYTES {
            return Err(HubRefusal::TooLarge);
        }
        member.session.insert(key.to_owned(), value.to_owned());
        member.session_bytes = new_total;
        Ok(())
    }

    pub fn session_get(&self, route: &str, id: ConnectionId, key: &str) -> Option<String> {
        self.lock()
            .member(route, id)
            .and_then(|m| m.session.get(key).cloned())
    }

    pub fn session_remove(&self, route: &str, id: ConnectionId, key: &str) {
        let mut state = self.lock();
        if let Some(member) = state.member_mut(route, id)
            && let Some(value) = member.session.remove(key)
        {
            member.session_bytes -= key.len() + value.len();
        }
    }
}

/// Removes `id` from the audience `key`; true when that emptied it (this node has no member left).
fn remove_from<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Members>,
    key: K,
    id: ConnectionId,
) -> bool {
    let Some(members) = map.get_mut(&key) else {
        return false;
    };
    members.remove(id);
    let emptied = members.is_empty();
    if emptied {
        map.remove(&key);
    }
    emptied
}

mod delivery;
mod peering;
#[cfg(test)]
mod tests;

pub use delivery::DeliveryReceiver;
use delivery::WorkerQueue;
