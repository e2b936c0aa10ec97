//! What the link reports: whether it is connected, what it counted, and who else is in presence — read by
//! `/healthz` and `/metrics` — and what it logs as the NATS client's events come.

use super::presence::RemoteView;
use super::seal::Reject;
use super::wire::ReassemblyBudget;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wssgate_hub::exposition::{Exposition, Kind};
use wssgate_hub::sync::lock;

/// A log line that is written at most once per period, however often its cause comes (anyone who can publish on
/// the broker can make causes come fast).
#[derive(Default)]
pub struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    /// How often a throttled line may be written.
    pub const EVERY: Duration = Duration::from_secs(60);

    /// Whether the line is due now (and, if so, not again for [`Throttle::EVERY`]).
    pub fn due(&self) -> bool {
        let now = Instant::now();
        let mut last = lock(&self.0);
        if last.is_some_and(|at| now.duration_since(at) < Self::EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

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
    /// Messages dropped before they were acted on, by [`Reject`] (in [`Reject::ALL`]'s order), and their log lines.
    rejected: [AtomicU64; 4],
    rejected_log: [Throttle; 4],
    /// Subscription tasks found ended and subscribed again.
    pub(super) restarts: AtomicU64,
    pub(super) restarts_log: Throttle,
    /// Chunked publications being put back together, and those lost.
    pub reassembly: Arc<ReassemblyBudget>,
    /// The other nodes' presence (`/metrics` counts them).
    pub(super) view: Arc<RemoteView>,
    /// The subscriptions' tasks as they start, for the unit test that ends one unasked: nothing outside the link can
    /// end one (async-nats never ends a subscription on a broker error), so the test does it by hand.
    #[cfg(test)]
    pub(super) tasks: std::sync::Mutex<Vec<(String, tokio::task::AbortHandle)>>,
}

impl LinkState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Other nodes in presence now.
    pub fn nodes(&self) -> usize {
        self.view.nodes()
    }

    /// Publications for other nodes dropped so far (broker down, queue full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sets the connection state from the client itself, every tick of the link: the client's events, which also
    /// set it, can be dropped when their queue is full.
    pub(super) fn follow(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    /// Counts a message dropped for `reason` on `subject`, and says so in the log (once a minute per reason).
    pub(super) fn reject(&self, reason: Reject, subject: &str) {
        let at = Reject::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        let total = self.rejected[at].fetch_add(1, Ordering::Relaxed) + 1;
        if !self.rejected_log[at].due() {
            return;
        }
        let why = match reason {
            Reject::Unauthenticated => {
                "failed authentication: not sealed with this node's `[cluster] secret` (a node with another or no \
                 secret, another wssgate version, or a forgery)"
            }
            Reject::Replay => "repeated a message already taken (a replay)",
            Reject::Stale => {
                "was stamped outside the 30 s window or before this node subscribed (a replay, or the nodes' clocks \
                 differ: run NTP)"
            }
            Reject::Mismatch => {
                "names another route, audience or node than the subject and seal it came with"
            }
        };
        tracing::warn!(
            "cluster: dropped a message on {subject} that {why}; {total} so far \
             (wssgate_cluster_rejected_total{{reason=\"{}\"}}; logged at most once a minute)",
            reason.label()
        );
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
                "reassembly_bytes",
                Kind::Gauge,
                "Bytes held by chunked publications being put back together, overheads included",
                self.reassembly.held() as u64,
            ),
            (
                "nodes",
                Kind::Gauge,
                "Other nodes in presence",
                self.view.nodes() as u64,
            ),
            (
                "presence_refused_total",
                Kind::Counter,
                "Pieces of other nodes' presence not taken: a node's view at its cap, or too many nodes",
                self.view.refused(),
            ),
            (
                "subscription_restarts_total",
                Kind::Counter,
                "Subscriptions whose task ended unasked and were subscribed again",
                count(&self.restarts),
            ),
        ];
        let mut e = Exposition::new(out);
        for (name, kind, help, value) in metrics {
            let name = format!("wssgate_cluster_{name}");
            e.family(&name, kind, help);
            e.sample(&name, &[], value);
        }
        let name = "wssgate_cluster_rejected_total";
        e.family(
            name,
            Kind::Counter,
            "Cluster messages dropped before they were acted on, by reason: unauthenticated (no or a wrong seal), \
             replay (a duplicate), stale (outside the time window), mismatch (another route, audience or node than \
             its subject and seal)",
        );
        for (reason, counter) in Reject::ALL.iter().zip(&self.rejected) {
            e.sample(name, &[("reason", reason.label())], count(counter));
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
