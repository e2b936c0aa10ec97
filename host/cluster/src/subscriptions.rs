//! What a node receives from NATS, each subscription a task on the link's thread: publications for the audiences
//! it has members of and for its own connections (delivered through the hub, which never blocks), other nodes'
//! presence, and requests for its own. The link subscribes (so a subscription is on its way to the broker before
//! anything the link publishes after it) and hands the subscriber to a task here; aborting the task drops the
//! subscriber, which unsubscribes.

use super::presence::{Heard, RemoteView};
use super::state::LinkState;
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

/// Delivers the publications that arrive on `subscriber` to this node's members.
pub fn publications(
    mut subscriber: Subscriber,
    hub: Arc<Hub>,
    state: Arc<LinkState>,
) -> AbortHandle {
    tokio::spawn(async move {
        let mut reassembly = Reassembly::new(state.reassembly.clone());
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        // Bounded by the subscription: it ends when aborted or when the client closes.
        loop {
            tokio::select! {
                message = subscriber.next() => {
                    let Some(message) = message else { break };
                    if let Some(bytes) = reassembly.take(&message.payload) {
                        match wire::decode(&bytes) {
                            Some(publication) => hub.deliver_from_cluster(publication),
                            None => tracing::debug!("cluster: an unreadable publication"),
                        }
                    }
                }
                _ = sweep.tick() => reassembly.expire(),
            }
        }
    })
    .abort_handle()
}

/// Follows the other nodes' presence into `view`, asking a node for a snapshot when its part is incomplete.
pub fn presence(
    mut subscriber: Subscriber,
    client: &async_nats::Client,
    prefix: String,
    (tag, node): (u32, String),
    view: Arc<RemoteView>,
) -> AbortHandle {
    let client = client.clone();
    tokio::spawn(async move {
        // Bounded by the subscription.
        while let Some(message) = subscriber.next().await {
            match view.apply(&message.payload, tag, &node) {
                Heard::Nothing => {}
                Heard::AskSnapshot(other) => {
                    // Never waits long on a client that cannot send (it asks again at the next heartbeat).
                    let ask = client.publish(wire::sync_subject(&prefix, other), Vec::new().into());
                    if !matches!(tokio::time::timeout(SEND_WAIT, ask).await, Ok(Ok(()))) {
                        tracing::debug!("cluster: could not ask node {other:05x} for a snapshot");
                    }
                }
                Heard::Clash(other) => tracing::error!(
                    "cluster: node {other} has this node's tag {tag:05x}: connection ids of the two could be \
                     mistaken for each other; restart one of them (it draws a new tag)"
                ),
                Heard::SameName(other) => tracing::error!(
                    "cluster: another node (tag {other:05x}) is named {node} too: give each node its own `node` \
                     name"
                ),
            }
        }
    })
    .abort_handle()
}

/// Raises `wanted` whenever another node asks for this node's snapshot (the link sends at most one a second).
pub fn snapshot_requests(mut subscriber: Subscriber, wanted: Arc<AtomicBool>) -> AbortHandle {
    tokio::spawn(async move {
        // Bounded by the subscription.
        while subscriber.next().await.is_some() {
            wanted.store(true, Ordering::Relaxed);
        }
    })
    .abort_handle()
}
