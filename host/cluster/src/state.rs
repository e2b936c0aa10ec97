//! What the link reports: whether it is connected, what it counted, and who else is in presence — read by
//! `/healthz` and `/metrics` — and what it logs as the NATS client's events come.

use super::presence::RemoteView;
use super::wire::ReassemblyBudget;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use wssgate_hub::exposition::{Exposition, Kind};

/// What the link reports.
#[derive(Default)]
pub struct LinkState {
    connected: AtomicBool,
    /// Times the link connected, the first included.
    connects: AtomicU64,
    disconnects: AtomicU64,
    /// Publications dropped: the link was down or its queue full.
    pub(super) dropped: AtomicU64,
    /// Messages async-nats dropped because a subscription fell behind.
    slow_consumer: AtomicU64,
    /// Chunked publications being put back together, and those lost.
    pub reassembly: Arc<ReassemblyBudget>,
    /// The other nodes' presence (`/metrics` counts them).
    pub(super) view: Arc<RemoteView>,
}

impl LinkState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Sets the connection state from the client itself, every tick of the link: the client's events, which also
    /// set it, can be dropped when their queue is full.
    pub(super) fn follow(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    /// Appends the link's `/metrics` lines.
    pub fn render(&self, out: &mut String) {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let metrics = [
            (
                "connected",
                Kind::Gauge,
                "Whether the link to NATS is up",
                u64::from(self.is_connected()),
            ),
            (
                "connects_total",
                Kind::Counter,
                "Times the link to NATS connected",
                count(&self.connects),
            ),
            (
                "disconnects_total",
                Kind::Counter,
                "Times the link to NATS was lost",
                count(&self.disconnects),
            ),
            (
                "dropped_total",
                Kind::Counter,
                "Publications for other nodes dropped (broker down, queue full)",
                count(&self.dropped),
            ),
            (
                "slow_consumer_total",
                Kind::Counter,
                "Times NATS messages for this node were dropped because a subscription fell behind",
                count(&self.slow_consumer),
            ),
            (
                "reassembly_lost_total",
                Kind::Counter,
                "Chunked publications from other nodes that never came together",
                count(&self.reassembly.lost),
            ),
            (
                "nodes",
                Kind::Gauge,
                "Other nodes in presence",
                self.view.nodes() as u64,
            ),
        ];
        let mut e = Exposition::new(out);
        for (name, kind, help, value) in metrics {
            let name = format!("wssgate_cluster_{name}");
            e.family(&name, kind, help);
            e.sample(&name, &[], value);
        }
    }
}

impl LinkState {
    /// Follows the NATS client's events: the connection state, and what the operator must see.
    pub(super) fn record(&self, node: &str, event: async_nats::Event) {
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
            async_nats::Event::SlowConsumer(_) => {
                // Logged at the first and then every 1,000th: one event comes per dropped message.
                if self
                    .slow_consumer
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::warn!(
                        node,
                        "cluster: a subscription fell behind; NATS messages were dropped (wssgate_cluster_slow_consumer_total)"
                    );
                }
            }
            event @ (async_nats::Event::ServerError(_) | async_nats::Event::ClientError(_)) => {
                // A wrong token or password, a TLS or permission problem: what the operator must fix.
                tracing::error!(node, "cluster: NATS: {event}");
            }
            other => tracing::debug!(node, "cluster: {other}"),
        }
    }
}
