//! State shared by all workers: groups, users, sessions and connection details — what lets a plugin on worker 1
//! publish to members on worker 2, like GatewayWorker's joinGroup/sendToGroup, bindUid/sendToUid and sessions.
//!
//! Everything is scoped to a route: every call names the route it acts for, and a connection of another route is
//! treated exactly like an unknown one, so two applications on two paths cannot see or touch each other's clients.
//!
//! The hub holds ids, never sockets. A publish reaches another worker as one small [`Delivery`] naming its audience
//! (a group, a user, the route), not a list of members: the receiving worker looks up its own members when it
//! takes the delivery, so the message's size does not grow with the group. Each worker's queue of deliveries is
//! bounded in bytes; past the bound, that worker's copy is dropped and counted (`wssgate_cap_hits_total`).

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
/// What one queued delivery costs beyond its payload and exclusions (its names, the channel's node).
const DELIVERY_OVERHEAD: usize = 128;

/// A message for the members of an audience on one worker.
pub(crate) struct Delivery {
    pub route: Arc<str>,
    pub audience: Audience,
    /// Connections not to deliver to, as a set (a plugin may name many); shared by every worker's copy. Hashed
    /// with std's keyed hasher, not Fx: these ids are the plugin's input, which could be chosen to collide.
    pub exclude: Arc<HashSet<ConnectionId>>,
    pub message: Message,
    /// What this delivery counts against its worker's queue bound.
    cost: usize,
}

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

/// One worker's end of the hub: its delivery queue and what the queue holds.
struct WorkerQueue {
    channel: UnboundedSender<Delivery>,
    /// Bytes of deliveries sent and not yet taken by the worker.
    queued_bytes: AtomicUsize,
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

/// A worker's side of its delivery queue.
pub struct DeliveryReceiver {
    hub: Arc<Hub>,
    worker: usize,
    channel: UnboundedReceiver<Delivery>,
}

impl DeliveryReceiver {
    /// Takes deliveries and queues each for this worker's members of its audience (`here`, the worker's
    /// connections), until the hub is gone.
    pub async fn run(mut self, here: std::rc::Rc<Connections>) {
        while let Some(delivery) = self.channel.recv().await {
            self.hub.workers[self.worker]
                .queued_bytes
                .fetch_sub(delivery.cost, Ordering::AcqRel);
            let targets = self.hub.local_targets(&delivery, self.worker);
            deliver_here(&here, &delivery.message, &targets);
        }
    }
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

    /// Joins the hub to a cluster: `peers` is the link to the other nodes.
    pub fn set_peers(&self, peers: Box<dyn Peers>) {
        let _ = self.cluster.set(peers);
    }

    /// Tells the cluster link (if any) that this node now has, or no longer has, members of `audience`.
    fn interest(&self, route: &str, audience: &Audience, present: bool) {
        if let Some(cluster) = self.cluster.get() {
            cluster.interest(route, audience, present);
        }
    }

    /// Tells the cluster link (if any) that this node's members of `group` (`Group`) or connections of `uid`
    /// (`User`) changed, for the other nodes' presence.
    fn changed(&self, route: &str, audience: &Audience) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let route = route.to_owned();
        cluster.changed(match audience {
            Audience::Group(group) => PresenceKey::Group {
                route,
                group: group.clone(),
            },
            Audience::User(uid) => PresenceKey::User {
                route,
                uid: uid.clone(),
            },
            Audience::Route | Audience::Connection(_) => return,
        });
    }

    /// This node's part of one piece of presence, for the other nodes.
    pub fn local_presence(&self, key: PresenceKey) -> PresencePiece {
        let state = self.lock();
        match key {
            PresenceKey::Group { route, group } => {
                let members = state
                    .groups
                    .get(&(route.clone(), group.clone()))
                    .map_or(0, |m| m.len() as u32);
                PresencePiece::Group {
                    route,
                    group,
                    members,
                }
            }
            PresenceKey::User { route, uid } => {
                let ids = state
                    .users
                    .get(&(route.clone(), uid.clone()))
                    .map(Members::ids)
                    .unwrap_or_default();
                PresencePiece::User { route, uid, ids }
            }
        }
    }

    /// This node's whole presence, for another node that asked for it.
    pub fn all_local_presence(&self) -> Vec<PresencePiece> {
        let state = self.lock();
        let groups = state
            .groups
            .iter()
            .map(|((route, group), members)| PresencePiece::Group {
                route: route.clone(),
                group: group.clone(),
                members: members.len() as u32,
            });
        let users = state
            .users
            .iter()
            .map(|((route, uid), members)| PresencePiece::User {
                route: route.clone(),
                uid: uid.clone(),
                ids: members.ids(),
            });
        groups.chain(users).collect()
    }

    /// Delivers a publication another node sent to this node's members (it goes no further). The link hands over
    /// only publications whose seal verified and whose route and audience are those of the subject they came on;
    /// a connection's route is checked here, where the connection lives.
    pub fn deliver_from_cluster(&self, publication: Publication) {
        let Publication {
            route,
            audience,
            exclude,
            message,
        } = publication;
        if let Audience::Connection(id) = audience {
            self.to_local_connection(None, &route, id, message);
            return;
        }
        self.fan_out(None, &route, audience, message, &exclude);
    }

    /// Takes the queue bound of reloaded limits.
    pub fn set_max_queue_bytes(&self, bytes: usize) {
        self.max_queue_bytes.store(bytes, Ordering::Relaxed);
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

    /// Sends to every member of (route, group) but `exclude`; returns how many it was queued for.
    pub fn publish(
        &self,
        here: Option<&Connections>,
        route: &str,
        group: &str,
        message: Message,
        exclude: &[ConnectionId],
    ) -> usize {
        self.send(
            here,
            route,
            Audience::Group(group.to_owned()),
            message,
            exclude,
        )
    }

    /// Sends to every connection of (route, uid); returns how many.
    pub fn send_to_user(
        &self,
        here: Option<&Connections>,
        route: &str,
        uid: &str,
        message: Message,
    ) -> usize {
        self.send(here, route, Audience::User(uid.to_owned()), message, &[])
    }

    /// Sends to every connection of the route but `exclude`; returns how many.
    pub fn broadcast(
        &self,
        here: Option<&Connections>,
        route: &str,
        message: Message,
        exclude: &[ConnectionId],
    ) -> usize {
        self.send(here, route, Audience::Route, message, exclude)
    }

    /// Sends `message` to connection `id` of `route` (open, or waiting for its upgrade's answer), on whichever
    /// worker, and in a cluster whichever node, holds it; a `Message::Close` frame closes it instead. For another
    /// node's connection the answer is `Queued` once the link took it (that node drops it if the connection is
    /// gone or of another route), `Unknown` when no node in presence has that id's tag, `Dropped` when the broker
    /// is away or the link's queue is full.
    pub fn send_to_connection(
        &self,
        here: Option<&Connections>,
        route: &str,
        id: ConnectionId,
        message: Message,
    ) -> Reached {
        let tag = registry::node_tag_of(id);
        match self.cluster.get() {
            Some(cluster) if tag != registry::node_tag() => {
                if !cluster.knows(tag) {
                    Reached::Unknown
                } else if cluster.publish(route, &Audience::Connection(id), &[], &message) {
                    Reached::Queued
                } else {
                    Reached::Dropped
                }
            }
            _ => self.to_local_connection(here, route, id, message),
        }
    }

    /// [`Hub::send_to_connection`] for a connection of this node.
    fn to_local_connection(
        &self,
        here: Option<&Connections>,
        route: &str,
        id: ConnectionId,
        message: Message,
    ) -> Reached {
        if self.lock().member(route, id).is_none() {
            return Reached::Unknown;
        }
        match self.fan_out(here, route, Audience::Connection(id), message, &[]) {
            0 => Reached::Dropped,
            _ => Reached::Queued,
        }
    }

    /// Queues `message` for `audience`: on this node through [`Hub::fan_out`], and for the other nodes' members
    /// through the cluster link, if any. Returns how many of this node's members it went to (a worker whose queue is
    /// full gets none).
    fn send(
        &self,
        here: Option<&Connections>,
        route: &str,
        audience: Audience,
        message: Message,
        exclude: &[ConnectionId],
    ) -> usize {
        if let Some(cluster) = self.cluster.get() {
            cluster.publish(route, &audience, exclude, &message);
        }
        self.fan_out(here, route, audience, message, exclude)
    }

    /// Queues `message` for this node's members of `audience`: directly for the calling worker's own members (`here`:
    /// its connections, when a worker calls), as one [`Delivery`] for each other worker that has a member. Returns
    /// how many members it went to.
    fn fan_out(
        &self,
        here: Option<&Connections>,
        route: &str,
        audience: Audience,
        message: Message,
        exclude: &[ConnectionId],
    ) -> usize {
        let worker_here = here.map(Connections::worker);
        // A set, built outside the lock: looking each member up in a plugin's list would cost members × list.
        let exclude: Arc<HashSet<ConnectionId>> = Arc::new(exclude.iter().copied().collect());
        let mut local = Vec::new();
        let mut remote = Vec::new();
        {
            let state = self.lock();
            if let Audience::Connection(id) = audience {
                match registry::worker_of(id) {
                    worker if Some(worker) == worker_here => local.push(id),
                    worker if worker < self.workers.len() => remote.push((worker, 1)),
                    _ => return 0,
                }
            }
            let members = state.audience(route, &audience);
            for (worker, set) in members.iter().flat_map(|m| m.0.iter().enumerate()) {
                if Some(worker) == worker_here {
                    local.extend(set.iter().copied().filter(|id| !exclude.contains(id)));
                    continue;
                }
                let count = set.iter().filter(|id| !exclude.contains(id)).count();
                if count > 0 {
                    remote.push((worker, count));
                }
            }
        }
        let mut delivered = local.len();
        if let Some(here) = here {
            deliver_here(here, &message, &local);
        }
        if remote.is_empty() {
            return delivered;
        }
        let name = match &audience {
            Audience::Group(name) | Audience::User(name) => name.len(),
            Audience::Route | Audience::Connection(_) => 0,
        };
        let cost = message.len() + name + route.len() + exclude.len() * 8 + DELIVERY_OVERHEAD;
        let route: Arc<str> = route.into();
        let max = self.max_queue_bytes.load(Ordering::Relaxed);
        for (worker, count) in remote {
            let queue = &self.workers[worker];
            let queued = queue.queued_bytes.fetch_add(cost, Ordering::AcqRel);
            let delivery = Delivery {
                route: route.clone(),
                audience: audience.clone(),
                exclude: exclude.clone(),
                message: message.clone(),
                cost,
            };
            // Like a connection's queue, an empty one always takes one delivery, however large.
            if (queued > 0 && queued + cost > max) || queue.channel.send(delivery).is_err() {
                queue.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
                self.dropped(worker_here, worker, queued);
            } else {
                delivered += count;
            }
        }
        delivered
    }

    /// Counts a delivery dropped for `worker` (in the shard of the calling worker, `caller`, or the first one) and
    /// logs it, at most once a second.
    fn dropped(&self, caller: Option<usize>, worker: usize, queued: usize) {
        self.metrics
            .cap_hit(caller.unwrap_or(0), CapHit::DeliveryDropped);
        let now = self.started.elapsed().as_secs();
        let last = self.last_drop_log.swap(now, Ordering::Relaxed);
        if last != now {
            tracing::warn!(
                worker,
                queued_bytes = queued,
                "worker {worker} is not keeping up with deliveries ({queued} bytes queued, max_worker_queue_bytes reached): dropping its copies"
            );
        }
    }

    /// This worker's members of a delivery's audience, less its exclusions, as of now.
    fn local_targets(&self, delivery: &Delivery, worker: usize) -> Vec<ConnectionId> {
        let state = self.lock();
        if let Audience::Connection(id) = delivery.audience {
            return state
                .member(&delivery.route, id)
                .map_or_else(Vec::new, |_| vec![id]);
        }
        state
            .audience(&delivery.route, &delivery.audience)
            .and_then(|members| members.on_worker(worker))
            .map_or_else(Vec::new, |set| {
                set.iter()
                    .copied()
                    .filter(|id| !delivery.exclude.contains(id))
                    .collect()
            })
    }
}

/// Queues `message` for each of this worker's (`here`) `targets` and wakes their writers (a close frame starts their close
/// handshake instead). A target whose queue is full is closed as a slow consumer by its outbox; one that is gone is
/// skipped.
pub(crate) fn deliver_here(here: &Connections, message: &Message, targets: &[ConnectionId]) {
    for id in targets {
        let Some(outbox) = here.get(*id) else {
            continue;
        };
        let queued = match message {
            Message::Close(Some(frame)) => {
                outbox.request_close(frame.clone());
                true
            }
            _ => outbox.push(message.clone()).is_ok(),
        };
        if queued {
            outbox.wake();
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

#[cfg(test)]
mod tests;
