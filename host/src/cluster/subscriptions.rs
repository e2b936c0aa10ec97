//! What a node receives from NATS, each subscription a task on the link's thread: publications for the audiences
//! it has members of and for its own connections (delivered through the hub, which never blocks), other nodes'
//! presence, and requests for its own. Aborting a task drops its subscriber, which unsubscribes.

use super::link::LinkState;
use super::presence::{Heard, RemoteView};
use super::wire::{self, Publication, Reassembly};
use crate::hub::Hub;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::AbortHandle;

/// Subscribes to `subject` (once the client is connected: the task waits for it, the link does not) and delivers
/// the publications that arrive to this node's members.
pub fn publications(
    client: &async_nats::Client,
    subject: String,
    hub: Arc<Hub>,
    state: Arc<LinkState>,
) -> AbortHandle {
    let client = client.clone();
    tokio::spawn(async move {
        let mut subscriber = match client.subscribe(subject.clone()).await {
            Ok(subscriber) => subscriber,
            Err(e) => return tracing::warn!("cluster: cannot subscribe to {subject}: {e}"),
        };
        let mut reassembly = Reassembly::new(state.reassembly.clone());
        // Bounded by the subscription: it ends when aborted or when the client closes.
        while let Some(message) = subscriber.next().await {
            if let Some(bytes) = reassembly.take(&message.payload) {
                match Publication::decode(&bytes) {
                    Some(publication) => hub.deliver_from_cluster(publication),
                    None => tracing::debug!("cluster: unreadable publication on {subject}"),
                }
            }
        }
    })
    .abort_handle()
}

/// Follows the other nodes' presence into `view`, asking a node for a snapshot when its part is incomplete.
pub fn presence(
    client: &async_nats::Client,
    prefix: String,
    (tag, node): (u32, String),
    view: Arc<RemoteView>,
) -> AbortHandle {
    let client = client.clone();
    tokio::spawn(async move {
        let subject = wire::presence_subject(&prefix);
        let mut subscriber = match client.subscribe(subject.clone()).await {
            Ok(subscriber) => subscriber,
            Err(e) => return tracing::warn!("cluster: cannot subscribe to {subject}: {e}"),
        };
        // Bounded by the subscription.
        while let Some(message) = subscriber.next().await {
            match view.apply(&message.payload, tag, &node) {
                Heard::Nothing => {}
                Heard::AskSnapshot(other) => {
                    let ask = wire::sync_subject(&prefix, other);
                    if let Err(e) = client.publish(ask, Vec::new().into()).await {
                        tracing::debug!("cluster: cannot ask for a snapshot: {e}");
                    }
                }
                Heard::Clash(other) => tracing::error!(
                    "cluster: node {other} has this node's tag {tag:05x}: connection ids of the two could be \
                     mistaken for each other; restart one of them (it draws a new tag)"
                ),
            }
        }
    })
    .abort_handle()
}

/// Raises `wanted` whenever another node asks for this node's snapshot (the link sends at most one a second).
pub fn snapshot_requests(
    client: &async_nats::Client,
    subject: String,
    wanted: Arc<AtomicBool>,
) -> AbortHandle {
    let client = client.clone();
    tokio::spawn(async move {
        let mut subscriber = match client.subscribe(subject.clone()).await {
            Ok(subscriber) => subscriber,
            Err(e) => return tracing::warn!("cluster: cannot subscribe to {subject}: {e}"),
        };
        // Bounded by the subscription.
        while subscriber.next().await.is_some() {
            wanted.store(true, Ordering::Relaxed);
        }
    })
    .abort_handle()
}
