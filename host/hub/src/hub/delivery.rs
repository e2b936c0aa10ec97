//! Delivery: how a message reaches an audience's members on every worker. The sender's own worker queues to its
//! members directly (`here`); every other worker gets one [`Delivery`] naming the audience on its bounded queue, and
//! looks up its own members when it takes it ([`DeliveryReceiver`]). In cluster mode the same message goes to the
//! other nodes through the hub's [`Peers`](crate::peers::Peers).

use super::*;

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

/// One worker's end of the hub: its delivery queue and what the queue holds.
pub(super) struct WorkerQueue {
    pub(super) channel: UnboundedSender<Delivery>,
    /// Bytes of deliveries sent and not yet taken by the worker.
    pub(super) queued_bytes: AtomicUsize,
}

/// A worker's side of its delivery queue.
pub struct DeliveryReceiver {
    pub(super) hub: Arc<Hub>,
    pub(super) worker: usize,
    pub(super) channel: UnboundedReceiver<Delivery>,
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

impl Hub {
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
    pub(super) fn to_local_connection(
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
    pub(super) fn fan_out(
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

    /// Takes the queue bound of reloaded limits.
    pub fn set_max_queue_bytes(&self, bytes: usize) {
        self.max_queue_bytes.store(bytes, Ordering::Relaxed);
    }
}
