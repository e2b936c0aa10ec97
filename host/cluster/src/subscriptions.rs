//! What a node receives from NATS, each subscription a task on the link's thread: publications for the audiences
//! it has members of and for its own connections (delivered through the hub, which never blocks), other nodes'
//! presence, and requests for its own. The link subscribes (so a subscription is on its way to the broker before
//! anything the link publishes after it) and hands the subscriber to a task here; aborting the task drops the
//! subscriber, which unsubscribes.
//!
//! Nothing is acted on unless its seal verifies, it is new on its subscription ([`seal::Replay`]), and it is about
//! what its subject names: a publication's route and audience must give back the subject it came on, an
//! announcement must speak for the node that sealed it. Whoever can publish on the broker without the secret can
//! send nothing a node acts on.

use super::presence::{Heard, RemoteView};
use super::seal::{self, Opened, Reject, Replay, Sealer};
use super::state::{LinkState, Throttle};
use super::wire::{self, Reassembly};
use async_nats::Subscriber;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::AbortHandle;
use wssgate_hub::Hub;

/// The longest the link waits for the NATS client to take a command: past it the client is not draining its
/// queue (reconnecting, or its connection died silently), and the command is dropped (a publication, counted) or
/// tried again (a subscription, a snapshot request).
pub(crate) const SEND_WAIT: Duration = Duration::from_millis(100);

/// What every subscription task shares: who this node is, how to open (and seal) messages, and where what arrives
/// goes.
pub struct Inbox {
    pub prefix: String,
    /// This node's tag (the top bits of its connection ids) and name.
    pub tag: u32,
    pub node: String,
    pub sealer: Sealer,
    pub hub: Arc<Hub>,
    pub state: Arc<LinkState>,
    pub view: Arc<RemoteView>,
    /// Log lines about other nodes sharing this node's tag or name, at most once a minute each.
    clash_log: Throttle,
    same_name_log: Throttle,
}

impl Inbox {
    pub fn new(
        (prefix, tag, node): (String, u32, String),
        sealer: Sealer,
        hub: Arc<Hub>,
        state: Arc<LinkState>,
    ) -> Inbox {
        let view = state.view.clone();
        Inbox {
            prefix,
            tag,
            node,
            sealer,
            hub,
            state,
            view,
            clash_log: Throttle::default(),
            same_name_log: Throttle::default(),
        }
    }

    /// Opens `message` if it is sealed with this cluster's secret and new on its subscription; otherwise counts
    /// (and logs, throttled) why not.
    fn admit<'a>(
        &self,
        replay: &mut Replay,
        message: &'a async_nats::Message,
    ) -> Option<Opened<'a>> {
        let subject = message.subject.as_str();
        let verdict = match self.sealer.key().open(subject, &message.payload) {
            None => Err(Reject::Unauthenticated),
            Some(opened) => replay.admit(&opened, seal::now_ms()).map(|()| opened),
        };
        verdict
            .inspect_err(|reason| self.state.reject(*reason, subject))
            .ok()
    }
}

/// How often a subscription forgets what is out of the window (partial publications and senders gone quiet).
const SWEEP: Duration = Duration::from_secs(5);

/// Delivers the publications that arrive on `subscriber` — one route audience's subject, or this node's own — to
/// this node's members. `floor`: messages stamped before it (ms) are dropped as replays.
pub fn publications(subscriber: Subscriber, inbox: Arc<Inbox>, floor: u64) -> AbortHandle {
    let mut subscriber = subscriber;
    tokio::spawn(async move {
        let mut replay = Replay::new(floor);
        let mut reassembly = Reassembly::new(inbox.state.reassembly.clone());
        let mut sweep = tokio::time::interval(SWEEP);
        // Bounded by the subscription: it ends when aborted or when the client closes.
        loop {
            tokio::select! {
                message = subscriber.next() => {
                    let Some(message) = message else { break };
                    let Some(opened) = inbox.admit(&mut replay, &message) else { continue };
                    if opened.tag == inbox.tag {
                        // The broker never sends a node its own publications (`no_echo`): this is one replayed.
                        inbox.state.reject(Reject::Replay, &message.subject);
                        continue;
                    }
                    let Some(bytes) = reassembly.take(opened.tag, opened.body) else { continue };
                    match wire::decode(&bytes) {
                        Some(publication)
                            if wire::subject(&inbox.prefix, &publication.route, &publication.audience)
                                == message.subject.as_str() =>
                        {
                            inbox.hub.deliver_from_cluster(publication);
                        }
                        Some(_) => inbox.state.reject(Reject::Mismatch, &message.subject),
                        None => tracing::debug!("cluster: an unreadable publication"),
                    }
                }
                _ = sweep.tick() => {
                    reassembly.expire();
                    replay.forget_old(seal::now_ms());
                }
            }
        }
    })
    .abort_handle()
}

/// Follows the other nodes' presence into the view, asking a node for a snapshot when its part is incomplete.
pub fn presence(
    subscriber: Subscriber,
    client: &async_nats::Client,
    inbox: Arc<Inbox>,
    floor: u64,
) -> AbortHandle {
    let (mut subscriber, client) = (subscriber, client.clone());
    tokio::spawn(async move {
        let mut replay = Replay::new(floor);
        let mut sweep = tokio::time::interval(SWEEP);
        // Bounded by the subscription.
        loop {
            let message = tokio::select! {
                message = subscriber.next() => match message {
                    Some(message) => message,
                    None => break,
                },
                _ = sweep.tick() => {
                    replay.forget_old(seal::now_ms());
                    continue;
                }
            };
            let Some(opened) = inbox.admit(&mut replay, &message) else {
                continue;
            };
            match inbox
                .view
                .apply(opened.tag, opened.body, inbox.tag, &inbox.node)
            {
                Heard::Nothing => {}
                Heard::AskSnapshot(other) => {
                    let subject = wire::sync_subject(&inbox.prefix, other);
                    let ask = inbox.sealer.seal(&subject, &[]);
                    // Never waits long on a client that cannot send (it asks again at the next heartbeat).
                    let sent = client.publish(subject, ask.into());
                    if !matches!(tokio::time::timeout(SEND_WAIT, sent).await, Ok(Ok(()))) {
                        tracing::debug!("cluster: could not ask node {other:05x} for a snapshot");
                    }
                }
                Heard::Mismatch => inbox.state.reject(Reject::Mismatch, &message.subject),
                Heard::Clash(other) => {
                    if inbox.clash_log.due() {
                        tracing::error!(
                            "cluster: node {other} has this node's tag {:05x}: connection ids of the two could \
                             be mistaken for each other; restart one of them (it draws a new tag) (logged at most \
                             once a minute)",
                            inbox.tag
                        );
                    }
                }
                Heard::SameName(other) => {
                    if inbox.same_name_log.due() {
                        tracing::error!(
                            "cluster: another node (tag {other:05x}) is named {} too: give each node its own \
                             `node` name (logged at most once a minute)",
                            inbox.node
                        );
                    }
                }
            }
        }
    })
    .abort_handle()
}

/// Raises `wanted` whenever another node of the cluster asks for this node's snapshot (the link sends at most one
/// a second).
pub fn snapshot_requests(
    subscriber: Subscriber,
    inbox: Arc<Inbox>,
    floor: u64,
    wanted: Arc<AtomicBool>,
) -> AbortHandle {
    let mut subscriber = subscriber;
    tokio::spawn(async move {
        let mut replay = Replay::new(floor);
        // Bounded by the subscription.
        while let Some(message) = subscriber.next().await {
            replay.forget_old(seal::now_ms());
            if inbox.admit(&mut replay, &message).is_some() {
                wanted.store(true, Ordering::Relaxed);
            }
        }
    })
    .abort_handle()
}
