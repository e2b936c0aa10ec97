//! The link to NATS: one client per process, on a thread of its own with its own runtime, so that a slow or absent
//! broker can never stall a worker (workers will hand it work through bounded queues and never wait on it). It
//! connects when the broker is there — also when it comes up after the gateway — and reconnects forever; its state
//! ([`LinkState`]) is what `/healthz` and `/metrics` report.

use super::presence::{
    Announcer, CHANGES_EVERY, Changes, DEAD_AFTER, HEARTBEAT, Key, Piece, RemoteView,
    SNAPSHOT_EVERY,
};
use super::seal::{self, Sealer};
use super::state::LinkState;
use super::subscriptions::{self, Inbox, SEND_WAIT};
use super::wire;
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use wssgate_config::cluster::{ClusterConfig, Credentials};
use wssgate_hub::peers::Peers;
use wssgate_hub::registry::{self, ConnectionId};
use wssgate_hub::{Audience, Hub};

/// Publications waiting for the link: past this, new ones are dropped and counted (a worker never waits on the
/// broker).
const PUBLISH_QUEUE: usize = 4096;

/// How often the client pings the broker: a broker that vanished without closing the connection is noticed within
/// about three of these (async-nats' default of a minute would take three minutes).
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// The running link; its thread ends with the gateway's shutdown.
pub struct ClusterLink {
    pub state: Arc<LinkState>,
    pub thread: std::thread::JoinHandle<()>,
}

/// What the hub hands the link: its interest in audiences, publications for other nodes, and changes to its
/// presence; and what it reads back: the other nodes' presence.
pub struct ClusterHandle {
    prefix: String,
    /// (subject, wanted): subscribe or unsubscribe. Unbounded: one entry per change of an audience's presence on
    /// this node, which the hub's own caps bound.
    interest: mpsc::UnboundedSender<(String, bool)>,
    publish: mpsc::Sender<(String, Vec<u8>)>,
    state: Arc<LinkState>,
    changes: Arc<Changes>,
    view: Arc<RemoteView>,
}

impl Peers for ClusterHandle {
    fn interest(&self, route: &str, audience: &Audience, present: bool) {
        let subject = wire::subject(&self.prefix, route, audience);
        let _ = self.interest.send((subject, present));
    }

    fn publish(
        &self,
        route: &str,
        audience: &Audience,
        exclude: &[ConnectionId],
        message: &Message,
    ) -> bool {
        let subject = wire::subject(&self.prefix, route, audience);
        let Some(payload) = wire::encode(route, audience, exclude, message) else {
            return true;
        };
        let sent = self.state.is_connected() && self.publish.try_send((subject, payload)).is_ok();
        if !sent {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    fn changed(&self, key: Key) {
        self.changes.mark(key);
    }

    fn knows(&self, tag: u32) -> bool {
        self.view.knows(tag)
    }

    fn group_size(&self, route: &str, group: &str) -> usize {
        self.view.group_size(route, group)
    }

    fn connections_of_user(&self, route: &str, uid: &str) -> Vec<ConnectionId> {
        self.view.connections_of_user(route, uid)
    }
}

/// The subject a piece of presence is about: a group's, or a user's.
fn key_subject(prefix: &str, key: &Key) -> String {
    match key {
        Key::Group { route, group } => {
            wire::subject(prefix, route, &Audience::Group(group.clone()))
        }
        Key::User { route, uid } => wire::subject(prefix, route, &Audience::User(uid.clone())),
    }
}

/// Whole messages as the bodies [`Link::send`] seals.
fn whole(messages: &[Vec<u8>]) -> Vec<[&[u8]; 2]> {
    messages.iter().map(|m| [&m[..], &[][..]]).collect()
}

/// Subscriptions to audiences nobody here is a member of any more end this long after the last member left, so
/// members that come and go do not make the node subscribe and unsubscribe each time.
const UNSUBSCRIBE_AFTER: Duration = Duration::from_secs(2);

/// Messages async-nats holds for one subscription that the link has not taken yet; past it, it drops them and says
/// so (counted in `wssgate_cluster_slow_consumer_total`). The link takes each at once (the hub never blocks), so
/// only a starved thread fills it.
const SUBSCRIPTION_CAPACITY: usize = 4096;

impl ClusterLink {
    /// Starts the link's thread, delivering what other nodes publish through `hub`, and gives `hub` its handle.
    /// Returns at once: the broker may come later.
    pub fn start(
        config: &ClusterConfig,
        hub: Arc<Hub>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<ClusterLink> {
        let servers = config
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .context("[cluster] servers")?;
        let state = Arc::new(LinkState::default());
        let events = state.clone();
        let node = config.node.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(&config.node)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(PING_INTERVAL)
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            // Its own publications reach this node's members directly: the broker must not send them back.
            .no_echo()
            .event_callback(move |event| {
                let (state, node) = (events.clone(), node.clone());
                async move { state.record(&node, event) }
            });
        options = match &config.credentials {
            Credentials::None => options,
            Credentials::Token(token) => options.token(token.clone()),
            Credentials::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        if let Some(ca) = &config.ca {
            options = options.add_root_certificates(ca.clone());
        }
        let (interest, interest_rx) = mpsc::unbounded_channel();
        let (publish, publish_rx) = mpsc::channel::<(String, Vec<u8>)>(PUBLISH_QUEUE);
        let changes = Arc::new(Changes::default());
        let view = state.view.clone();
        hub.set_peers(Box::new(ClusterHandle {
            prefix: config.prefix.clone(),
            interest,
            publish,
            state: state.clone(),
            changes: changes.clone(),
            view,
        }));
        let tag = registry::node_tag();
        let sealer = Sealer::new(seal::Key::new(config.secret.as_deref()), tag);
        let identity = (config.prefix.clone(), tag, config.node.clone());
        let link = Link {
            inbox: Arc::new(Inbox::new(identity, sealer, hub, state.clone())),
            changes,
            shutdown,
        };
        let thread = std::thread::Builder::new()
            .name("wssgate-cluster".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return tracing::error!("cluster runtime: {e}"),
                };
                runtime.block_on(async move {
                    // With `retry_on_initial_connect` this returns at once and connects in the background.
                    match options.connect(servers).await {
                        Ok(client) => link.run(client, interest_rx, publish_rx).await,
                        Err(e) => tracing::error!("cluster: {e}"),
                    }
                });
            })
            .context("spawning the cluster thread")?;
        Ok(ClusterLink { state, thread })
    }
}

/// The link's side, on its own thread.
struct Link {
    /// Who this node is, its seal, and where what arrives goes: shared with the subscription tasks.
    inbox: Arc<Inbox>,
    changes: Arc<Changes>,
    shutdown: watch::Receiver<bool>,
}

/// The subscriptions a node holds for as long as it runs, each restarted if its task ends.
#[derive(Clone, Copy)]
enum Fixed {
    /// Publications for this node's connections.
    Own,
    Presence,
    /// Requests for this node's snapshot.
    Requests,
}

/// What the link does between commands: presence announcements and delayed unsubscriptions.
struct Chores {
    /// The number of this node's last presence change.
    seq: u64,
    last_heartbeat: Instant,
    last_snapshot: Option<Instant>,
    /// Set by the task that hears snapshot requests.
    snapshot_wanted: Arc<AtomicBool>,
    /// Subscriptions whose last member left, and when they end.
    unsubscribing: HashMap<String, Instant>,
    /// Subjects to subscribe to that the client could not take yet.
    to_subscribe: HashSet<String>,
    /// Subjects whose subscription ended within the last [`seal::SLACK`], and when (ms): a new subscription to one
    /// takes nothing stamped before then, which its predecessor may have taken already.
    ended: HashMap<String, u64>,
    /// Serial numbers of this node's chunked publications and snapshots.
    serial: u64,
}

impl Chores {
    /// Takes a change of interest: a subject to subscribe to (now, or again if its unsubscription is pending), or
    /// one to unsubscribe from after [`UNSUBSCRIBE_AFTER`].
    fn interest(
        &mut self,
        (subject, wanted): (String, bool),
        subscriptions: &HashMap<String, AbortHandle>,
    ) {
        if wanted {
            self.unsubscribing.remove(&subject);
            if !subscriptions.contains_key(&subject) {
                self.to_subscribe.insert(subject);
            }
        } else {
            self.to_subscribe.remove(&subject);
            if subscriptions.contains_key(&subject) {
                self.unsubscribing
                    .insert(subject, Instant::now() + UNSUBSCRIBE_AFTER);
            }
        }
    }

    /// The floor for a subscription to `subject` that begins now: [`seal::SLACK`] before now, or when its last
    /// subscription ended if that was later.
    fn floor(&self, subject: &str) -> u64 {
        let slack = seal::SLACK.as_millis() as u64;
        let floor = seal::now_ms().saturating_sub(slack);
        self.ended.get(subject).map_or(floor, |&at| floor.max(at))
    }

    /// Notes that the subscription to `subject` ended now.
    fn note_ended(&mut self, subject: String) {
        self.ended.insert(subject, seal::now_ms());
    }
}

impl Link {
    async fn run(
        self,
        client: async_nats::Client,
        mut interest_rx: mpsc::UnboundedReceiver<(String, bool)>,
        mut publish_rx: mpsc::Receiver<(String, Vec<u8>)>,
    ) {
        let mut chores = Chores {
            seq: 0,
            last_heartbeat: Instant::now(),
            last_snapshot: None,
            snapshot_wanted: Arc::new(AtomicBool::new(false)),
            unsubscribing: HashMap::new(),
            to_subscribe: HashSet::new(),
            ended: HashMap::new(),
            serial: 0,
        };
        // Each subscription is a task; aborting it unsubscribes.
        let mut subscriptions: HashMap<String, AbortHandle> = HashMap::new();
        // The client's command queue is empty at the start: these go in at once, connected or not.
        let mut fixed = Vec::new();
        for kind in [Fixed::Own, Fixed::Presence, Fixed::Requests] {
            match self.fixed(&client, kind, &chores).await {
                Some(task) => fixed.push((kind, task)),
                None => return,
            }
        }
        let mut tick = tokio::time::interval(CHANGES_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = self.shutdown.clone();
        // Bounded by the shutdown: each turn handles one command or one tick.
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|down| *down) => break,
                Some(interest) = interest_rx.recv() => {
                    chores.interest(interest, &subscriptions);
                    self.subscribe(&client, &mut chores, &mut subscriptions).await;
                }
                Some((subject, payload)) = publish_rx.recv() => {
                    chores.serial += 1;
                    let max = client.server_info().max_payload;
                    let frames = wire::frames(&payload, max, chores.serial);
                    let bodies = frames.iter().map(|(head, data)| [&head[..], *data]);
                    if !self.send(&client, &subject, bodies).await {
                        self.inbox.state.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ = tick.tick() => {
                    let state = &self.inbox.state;
                    state.follow(client.connection_state() == async_nats::connection::State::Connected);
                    self.restart_ended(&client, &mut chores, &mut fixed, &mut subscriptions).await;
                    // Every interest that came before the changes about to be announced is subscribed first.
                    while let Ok(interest) = interest_rx.try_recv() {
                        chores.interest(interest, &subscriptions);
                    }
                    self.subscribe(&client, &mut chores, &mut subscriptions).await;
                    let now = Instant::now();
                    let mut ended = Vec::new();
                    chores.unsubscribing.retain(|subject, at| {
                        let waiting = *at > now;
                        if !waiting && let Some(task) = subscriptions.remove(subject) {
                            task.abort();
                            ended.push(subject.clone());
                        }
                        waiting
                    });
                    for subject in ended {
                        chores.note_ended(subject);
                    }
                    let slack = seal::SLACK.as_millis() as u64;
                    let recent = seal::now_ms().saturating_sub(slack);
                    chores.ended.retain(|_, at| *at >= recent);
                    self.announce(&client, &mut chores).await;
                    for node in self.inbox.view.expire() {
                        tracing::warn!("cluster: node {node} left presence (not heard from for {DEAD_AFTER:?})");
                    }
                }
            }
        }
        if client.connection_state() == async_nats::connection::State::Connected {
            // Out of presence at once rather than after a silence (bounded: the gateway is stopping).
            let leaving = Announcer {
                tag: self.inbox.tag,
                node: &self.inbox.node,
                seq: chores.seq,
            }
            .leaving();
            let subject = wire::presence_subject(&self.inbox.prefix);
            let sealed = self.inbox.sealer.seal(&subject, &[&leaving]);
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                let _ = client.publish(subject, sealed.into()).await;
                let _ = client.flush().await;
            })
            .await;
        }
        for task in subscriptions
            .into_values()
            .chain(fixed.into_iter().map(|(_, task)| task))
        {
            task.abort();
        }
    }

    fn fixed_subject(&self, kind: Fixed) -> String {
        let inbox = &self.inbox;
        match kind {
            Fixed::Own => wire::node_subject(&inbox.prefix, inbox.tag),
            Fixed::Presence => wire::presence_subject(&inbox.prefix),
            Fixed::Requests => wire::sync_subject(&inbox.prefix, inbox.tag),
        }
    }

    /// Subscribes to one of the fixed subjects and starts its task; `None` when the client refuses (it is
    /// closed).
    async fn fixed(
        &self,
        client: &async_nats::Client,
        kind: Fixed,
        chores: &Chores,
    ) -> Option<AbortHandle> {
        let inbox = &self.inbox;
        let subject = self.fixed_subject(kind);
        let floor = chores.floor(&subject);
        let subscriber = match client.subscribe(subject).await {
            Ok(subscriber) => subscriber,
            Err(e) => {
                tracing::error!("cluster: cannot subscribe: {e}");
                return None;
            }
        };
        let inbox = inbox.clone();
        let task = match kind {
            Fixed::Own => subscriptions::publications(subscriber, inbox, floor),
            Fixed::Presence => subscriptions::presence(subscriber, client, inbox, floor),
            Fixed::Requests => subscriptions::snapshot_requests(
                subscriber,
                inbox,
                floor,
                chores.snapshot_wanted.clone(),
            ),
        };
        #[cfg(test)]
        self.inbox
            .state
            .tasks
            .lock()
            .unwrap()
            .push((self.fixed_subject(kind), task.clone()));
        Some(task)
    }

    /// Subscribes again to the subjects whose task ended without being asked to (a subscription the client closed,
    /// or a task that panicked): counted and logged (at most once a minute), so a node never stops hearing a
    /// subject for good.
    async fn restart_ended(
        &self,
        client: &async_nats::Client,
        chores: &mut Chores,
        fixed: &mut [(Fixed, AbortHandle)],
        subscriptions: &mut HashMap<String, AbortHandle>,
    ) {
        let state = &self.inbox.state;
        let mut restarted = Vec::new();
        for (kind, task) in fixed.iter_mut() {
            if task.is_finished()
                && let Ok(Some(again)) =
                    tokio::time::timeout(SEND_WAIT, self.fixed(client, *kind, chores)).await
            {
                *task = again;
                restarted.push(self.fixed_subject(*kind));
            }
        }
        let ended: Vec<String> = subscriptions
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(subject, _)| subject.clone())
            .collect();
        for subject in ended {
            subscriptions.remove(&subject);
            chores.note_ended(subject.clone());
            chores.to_subscribe.insert(subject.clone());
            restarted.push(subject);
        }
        if restarted.is_empty() {
            return;
        }
        let total = state
            .restarts
            .fetch_add(restarted.len() as u64, Ordering::Relaxed)
            + restarted.len() as u64;
        if state.restarts_log.due() {
            tracing::error!(
                "cluster: {} subscription(s) ended unasked and are subscribed again ({}); {total} so far \
                 (wssgate_cluster_subscription_restarts_total; logged at most once a minute)",
                restarted.len(),
                restarted.join(", ")
            );
        }
    }

    /// Subscribes to the subjects in `chores.to_subscribe`, each handed to a delivery task in `subscriptions`.
    /// Awaited here, before anything the link publishes next (a presence announcement that tells other nodes to
    /// send here), so the subscription reaches the broker first. A subject the client cannot take now stays, for
    /// the next tick.
    async fn subscribe(
        &self,
        client: &async_nats::Client,
        chores: &mut Chores,
        subscriptions: &mut HashMap<String, AbortHandle>,
    ) {
        let subjects: Vec<String> = chores.to_subscribe.iter().cloned().collect();
        for subject in subjects {
            let floor = chores.floor(&subject);
            match tokio::time::timeout(SEND_WAIT, client.subscribe(subject.clone())).await {
                Ok(Ok(subscriber)) => {
                    chores.to_subscribe.remove(&subject);
                    let task = subscriptions::publications(subscriber, self.inbox.clone(), floor);
                    #[cfg(test)]
                    self.inbox
                        .state
                        .tasks
                        .lock()
                        .unwrap()
                        .push((subject.clone(), task.clone()));
                    subscriptions.insert(subject, task);
                }
                Ok(Err(e)) => {
                    chores.to_subscribe.remove(&subject);
                    tracing::warn!("cluster: cannot subscribe to {subject}: {e}");
                }
                // The client's queue is full (it is reconnecting): the next tick tries again.
                Err(_) => return,
            }
        }
    }

    /// Seals each body (its parts one after the other) and publishes it on `subject`, unless the client is not
    /// connected (the client would hold them) or cannot take one within [`SEND_WAIT`] (its queue is full: a
    /// connection that died silently, not noticed yet). Sealed just before it goes, so its time is fresh. True
    /// when all were handed to the client.
    async fn send<'a>(
        &self,
        client: &async_nats::Client,
        subject: &str,
        bodies: impl IntoIterator<Item = [&'a [u8]; 2]>,
    ) -> bool {
        for parts in bodies {
            if client.connection_state() != async_nats::connection::State::Connected {
                return false;
            }
            let sealed = self.inbox.sealer.seal(subject, &parts);
            let publish = client.publish(subject.to_owned(), sealed.into());
            if !matches!(tokio::time::timeout(SEND_WAIT, publish).await, Ok(Ok(()))) {
                return false;
            }
        }
        true
    }

    /// Announces what changed in this node's presence, a heartbeat when one is due, and a snapshot when asked.
    async fn announce(&self, client: &async_nats::Client, chores: &mut Chores) {
        let inbox = &self.inbox;
        let subject = wire::presence_subject(&inbox.prefix);
        let max = client.server_info().max_payload;
        let mut changed = self.changes.take();
        // A member whose subscription the client could not take yet is announced once it has: announced now, other
        // nodes would send to it before this node hears.
        changed.retain(|key| {
            let waiting = chores
                .to_subscribe
                .contains(&key_subject(&inbox.prefix, key));
            if waiting {
                self.changes.mark(key.clone());
            }
            !waiting
        });
        let announcer = |seq| Announcer {
            tag: inbox.tag,
            node: &inbox.node,
            seq,
        };
        if !changed.is_empty() {
            let pieces: Vec<Piece> = changed
                .into_iter()
                .map(|key| inbox.hub.local_presence(key))
                .collect();
            let mut changes = announcer(chores.seq);
            let messages = changes.changes(&pieces, max);
            chores.seq = changes.seq;
            // A change that does not go out leaves a gap in the numbers, which makes the others ask for a snapshot.
            self.send(client, &subject, whole(&messages)).await;
        }
        let now = Instant::now();
        let snapshot_due = chores
            .last_snapshot
            .is_none_or(|at| now.duration_since(at) >= SNAPSHOT_EVERY);
        if snapshot_due && chores.snapshot_wanted.swap(false, Ordering::Relaxed) {
            chores.last_snapshot = Some(now);
            let pieces = inbox.hub.all_local_presence();
            chores.serial += 1;
            let parts = announcer(chores.seq).snapshot(chores.serial, &pieces, max);
            self.send(client, &subject, whole(&parts)).await;
        }
        if now.duration_since(chores.last_heartbeat) >= HEARTBEAT {
            chores.last_heartbeat = now;
            let heartbeat = announcer(chores.seq).heartbeat();
            self.send(client, &subject, whole(&[heartbeat])).await;
        }
    }
}

#[cfg(test)]
mod tests;
