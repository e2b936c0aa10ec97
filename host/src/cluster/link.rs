//! The link to NATS: one client per process, on a thread of its own with its own runtime, so that a slow or absent
//! broker can never stall a worker (workers will hand it work through bounded queues and never wait on it). It
//! connects when the broker is there — also when it comes up after the gateway — and reconnects forever; its state
//! is what `/healthz` and `/metrics` report.

use super::config::{ClusterConfig, Credentials};
use super::wire::{self, Publication};
use crate::hub::{Audience, Hub};
use crate::registry::ConnectionId;
use anyhow::{Context, Result};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Publications waiting for the link: past this, new ones are dropped and counted (a worker never waits on the
/// broker).
const PUBLISH_QUEUE: usize = 4096;

/// How often the client pings the broker: a broker that vanished without closing the connection is noticed within
/// about three of these (async-nats' default of a minute would take three minutes).
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// What the link reports.
#[derive(Default)]
pub struct LinkState {
    connected: AtomicBool,
    /// Times the link connected, the first included.
    connects: AtomicU64,
    disconnects: AtomicU64,
    /// Publications dropped: the link was down or its queue full.
    dropped: AtomicU64,
}

impl LinkState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Appends the link's `/metrics` lines.
    pub fn render(&self, out: &mut String) {
        let connected = u8::from(self.is_connected());
        let (connects, disconnects) = (
            self.connects.load(Ordering::Relaxed),
            self.disconnects.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP wssgate_cluster_connected Whether the link to NATS is up\n# TYPE wssgate_cluster_connected gauge\nwssgate_cluster_connected {connected}\n# HELP wssgate_cluster_connects_total Times the link to NATS connected\n# TYPE wssgate_cluster_connects_total counter\nwssgate_cluster_connects_total {connects}\n# HELP wssgate_cluster_disconnects_total Times the link to NATS was lost\n# TYPE wssgate_cluster_disconnects_total counter\nwssgate_cluster_disconnects_total {disconnects}\n# HELP wssgate_cluster_dropped_total Publications for other nodes dropped (broker down, queue full)\n# TYPE wssgate_cluster_dropped_total counter\nwssgate_cluster_dropped_total {}",
            self.dropped.load(Ordering::Relaxed)
        );
    }
}

/// The running link; its thread ends with the gateway's shutdown.
pub struct ClusterLink {
    pub state: Arc<LinkState>,
    pub thread: std::thread::JoinHandle<()>,
}

/// What the hub hands the link: its interest in an audience, and publications for other nodes.
pub struct ClusterHandle {
    prefix: String,
    /// (subject, wanted): subscribe or unsubscribe. Unbounded: one entry per change of an audience's presence on
    /// this node, which the hub's own caps bound.
    interest: mpsc::UnboundedSender<(String, bool)>,
    publish: mpsc::Sender<(String, Vec<u8>)>,
    state: Arc<LinkState>,
}

impl ClusterHandle {
    /// This node now has (`present`) or no longer has members of `audience` on `route`.
    pub fn interest(&self, route: &str, audience: &Audience, present: bool) {
        if let Some(subject) = wire::subject(&self.prefix, route, audience) {
            let _ = self.interest.send((subject, present));
        }
    }

    /// Sends a publication to the other nodes; dropped (and counted) when the broker is away or the queue is full.
    pub fn publish(
        &self,
        route: &str,
        audience: &Audience,
        exclude: &[ConnectionId],
        message: &Message,
    ) {
        let Some(subject) = wire::subject(&self.prefix, route, audience) else {
            return;
        };
        let Some(payload) = Publication::encode(route, audience, exclude, message) else {
            return;
        };
        if !self.state.is_connected() || self.publish.try_send((subject, payload)).is_err() {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ClusterLink {
    /// Starts the link's thread, delivering what other nodes publish through `hub`, and gives `hub` its handle.
    /// Returns at once: the broker may come later.
    pub fn start(
        config: &ClusterConfig,
        hub: Arc<Hub>,
        mut shutdown: watch::Receiver<bool>,
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
        let (interest, mut interest_rx) = mpsc::unbounded_channel();
        let (publish, mut publish_rx) = mpsc::channel::<(String, Vec<u8>)>(PUBLISH_QUEUE);
        hub.set_cluster(ClusterHandle {
            prefix: config.prefix.clone(),
            interest,
            publish,
            state: state.clone(),
        });
        let state_for_loop = state.clone();
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
                    let client = match options.connect(servers).await {
                        Ok(client) => client,
                        Err(e) => return tracing::error!("cluster: {e}"),
                    };
                    // Each subscription is a task delivering what arrives; aborting it unsubscribes.
                    let mut subscriptions: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
                    // A second view of the shutdown, for the waits inside a turn.
                    let mut stopping = shutdown.clone();
                    // Bounded by the shutdown: each turn handles one command.
                    loop {
                        tokio::select! {
                            _ = shutdown.wait_for(|down| *down) => break,
                            Some((subject, wanted)) = interest_rx.recv() => {
                                if !wanted {
                                    if let Some(task) = subscriptions.remove(&subject) {
                                        task.abort();
                                    }
                                } else if let Entry::Vacant(slot) = subscriptions.entry(subject) {
                                    // While the client (re)connects it reads no commands: a full command queue
                                    // must not keep the gateway from shutting down.
                                    let subject = slot.key().clone();
                                    tokio::select! {
                                        task = subscribe(&client, subject, hub.clone()) => {
                                            if let Some(task) = task {
                                                slot.insert(task);
                                            }
                                        }
                                        _ = stopping.wait_for(|down| *down) => break,
                                    }
                                }
                            }
                            Some((subject, payload)) = publish_rx.recv() => {
                                // Published while disconnected, it would wait in the client's queue (and block
                                // the link once that is full): dropped and counted instead.
                                let connected = client.connection_state() == async_nats::connection::State::Connected;
                                let sent = connected && tokio::select! {
                                    sent = client.publish(subject, payload.into()) => sent.is_ok(),
                                    _ = stopping.wait_for(|down| *down) => break,
                                };
                                if !sent {
                                    state_for_loop.dropped.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    for task in subscriptions.into_values() {
                        task.abort();
                    }
                    drop(client);
                });
            })
            .context("spawning the cluster thread")?;
        Ok(ClusterLink { state, thread })
    }
}

/// Subscribes to `subject`; what arrives is delivered to this node's members through `hub` by a task, whose abort
/// handle ends the subscription.
async fn subscribe(
    client: &async_nats::Client,
    subject: String,
    hub: Arc<Hub>,
) -> Option<tokio::task::AbortHandle> {
    match client.subscribe(subject.clone()).await {
        Ok(mut subscriber) => {
            let task = tokio::spawn(async move {
                // Bounded by the subscription: it ends when aborted or when the client closes.
                while let Some(message) = subscriber.next().await {
                    if let Some(publication) = Publication::decode(&message.payload) {
                        hub.deliver_from_cluster(publication);
                    }
                }
            });
            Some(task.abort_handle())
        }
        Err(e) => {
            tracing::warn!("cluster: cannot subscribe to {subject}: {e}");
            None
        }
    }
}

impl LinkState {
    fn record(&self, node: &str, event: async_nats::Event) {
        match event {
            async_nats::Event::Connected => {
                self.connected.store(true, Ordering::Relaxed);
                self.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node, "cluster: connected to NATS");
            }
            async_nats::Event::Disconnected => {
                self.connected.store(false, Ordering::Relaxed);
                self.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    node,
                    "cluster: lost the connection to NATS; serving local clients, reconnecting"
                );
            }
            other => tracing::debug!(node, "cluster: {other}"),
        }
    }
}
