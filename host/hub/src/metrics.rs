//! Counters for the admin listener's `/metrics` (Prometheus text format): connections, messages and bytes per route,
//! plugin event latency, traps, rejected connections and closes by code.
//!
//! Each worker writes only its own shard, so counting on the hot path is an uncontended relaxed add; a scrape sums
//! the shards. The per-message counters are written by their worker's thread alone, so they are bumped with a plain
//! load and store ([`bump`]) rather than a locked read-modify-write, which costs tens of nanoseconds per message.

use crate::exposition::{Exposition, Kind};
use crate::sync::lock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the plugin event latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 5e-2, 0.5,
];

/// Adds `n` to a counter that only the calling thread writes (a worker's own shard): readers on other threads see
/// every update eventually, and with a single writer none is lost.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Why a connection was turned away before its WebSocket opened.
#[derive(Debug, Clone, Copy)]
pub enum Rejection {
    TooManyConnections,
    TooManyFromAddress,
    PluginDown,
    Origin,
    /// The address is throttled after making plugins trap (HTTP 429).
    Throttled,
    /// Any other HTTP answer: unknown path, not an upgrade, malformed.
    BadRequest,
    /// The plugin's answer: its rejection, a deferred upgrade's timeout, a trap in on-connect.
    Plugin,
    /// A peer that is not a trusted proxy connected to a PROXY-protocol listener: closed before anything is read.
    UntrustedPeer,
}

const REJECTIONS: [(&str, Rejection); 8] = [
    ("too_many_connections", Rejection::TooManyConnections),
    ("too_many_from_address", Rejection::TooManyFromAddress),
    ("plugin_down", Rejection::PluginDown),
    ("origin", Rejection::Origin),
    ("trap_throttle", Rejection::Throttled),
    ("bad_request", Rejection::BadRequest),
    ("plugin", Rejection::Plugin),
    ("untrusted_peer", Rejection::UntrustedPeer),
];

/// A cap that was hit: what a hostile plugin or client ran into instead of growing the gateway.
#[derive(Debug, Clone, Copy)]
pub enum CapHit {
    /// A cross-worker delivery was dropped because the receiving worker's queue was full.
    DeliveryDropped,
    /// `set-timer` refused at `max_timers_per_instance`.
    Timers,
    /// `join-group` refused at `max_groups_per_connection`.
    Groups,
    /// A group name, uid or session key over `max_name_bytes`.
    NameBytes,
    /// A plugin log line dropped over `max_plugin_log_lines_per_sec`.
    LogLines,
    /// An address started throttling after `max_traps_per_ip` traps.
    TrapThrottleStarted,
    /// An upgrade refused because its address is throttled.
    TrapThrottled,
    /// A connection closed at once because its address had `max_handshakes_per_ip` handshakes in progress.
    Handshakes,
    /// An outbound request refused because its route had its share of the upstream (`max_in_flight_per_route`).
    UpstreamRouteShare,
    /// An admin connection answered 503 at once: `[admin] max_connections` were open.
    AdminConnections,
    /// An admin request answered 401: a missing or wrong token.
    AdminTokenFailures,
    /// An admin request answered 429: its address failed the token too often.
    AdminThrottled,
    /// A history or storage request refused at `max_storage_requests_per_instance`.
    StorageRequests,
    /// A history or storage write refused by a route's quota.
    StorageQuota,
}

const CAP_HITS: [(&str, CapHit); 14] = [
    ("delivery_queue", CapHit::DeliveryDropped),
    ("timers_per_instance", CapHit::Timers),
    ("groups_per_connection", CapHit::Groups),
    ("name_bytes", CapHit::NameBytes),
    ("plugin_log_lines", CapHit::LogLines),
    ("trap_throttle_started", CapHit::TrapThrottleStarted),
    ("trap_throttled_upgrades", CapHit::TrapThrottled),
    ("handshakes_per_ip", CapHit::Handshakes),
    ("upstream_route_share", CapHit::UpstreamRouteShare),
    ("admin_connections", CapHit::AdminConnections),
    ("admin_token_failures", CapHit::AdminTokenFailures),
    ("admin_throttled", CapHit::AdminThrottled),
    ("storage_requests_per_instance", CapHit::StorageRequests),
    ("storage_quota", CapHit::StorageQuota),
];

/// One route's counters in one shard.
#[derive(Default)]
struct RouteCounters {
    opened: AtomicU64,
    closed: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    traps: AtomicU64,
    /// Upgrades whose on-connect deferred its answer, and those since answered (accepted, rejected, timed out or
    /// left): the difference is how many wait now.
    deferred: AtomicU64,
    deferred_ended: AtomicU64,
    /// Deferred upgrades answered 504 because the plugin did not answer in `accept_timeout_ms`.
    accept_timeouts: AtomicU64,
    /// Instances whose `init` refused the route's settings or trapped (at start, replacement or reload).
    init_failures: AtomicU64,
    /// Lines the plugin logged at warn and error level: what a plugin reports as going wrong (a webhook's failed
    /// backend call) shows in /metrics.
    plugin_warnings: AtomicU64,
    plugin_errors: AtomicU64,
    /// Linear memory the route's plugin instances grew to, and what instances that ended held: the difference is
    /// what they hold now (wasm memory never shrinks while an instance lives).
    memory_grown: AtomicU64,
    memory_freed: AtomicU64,
    /// Plugin instances (wasmtime stores: a replacement after a trap is a new one) started and ended.
    instances_started: AtomicU64,
    instances_ended: AtomicU64,
    /// Connections that negotiated permessage-deflate, opened and closed.
    deflate_opened: AtomicU64,
    deflate_closed: AtomicU64,
    /// Compressed messages each way, their bytes before compression and on the wire, and how many times a message
    /// was compressed (less than the messages out when one message went to many).
    deflate_messages_out: AtomicU64,
    deflate_plain_out: AtomicU64,
    deflate_wire_out: AtomicU64,
    deflate_compressions: AtomicU64,
    deflate_messages_in: AtomicU64,
    deflate_plain_in: AtomicU64,
    deflate_wire_in: AtomicU64,
    /// Timers and outbound requests the route's plugin started and that ended (see [`Live`]): the differences are
    /// how many are alive now.
    timers_started: AtomicU64,
    timers_ended: AtomicU64,
    requests_started: AtomicU64,
    requests_ended: AtomicU64,
    /// Events per latency bucket (the last one is +Inf).
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
}

/// One worker's counters.
#[derive(Default)]
struct Shard {
    routes: Vec<RouteCounters>,
    rejected: [AtomicU64; REJECTIONS.len()],
    cap_hits: [AtomicU64; CAP_HITS.len()],
    /// Timers started minus timers ended on this worker, whatever their route (one a reload added has no slot):
    /// the live count.
    timers_started: AtomicU64,
    timers_ended: AtomicU64,
    /// Closes by code; a mutex is fine at one lock per connection.
    closes: Mutex<BTreeMap<u16, u64>>,
}

/// One route's counters summed over workers, or one worker's summed over routes (`Metrics::totals`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub opened: u64,
    pub closed: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub traps: u64,
    /// Upgrades waiting for the plugin's answer now.
    pub deferred_waiting: u64,
    /// Linear memory the plugin instances hold now.
    pub plugin_memory_bytes: u64,
    /// Plugin instances alive now.
    pub plugin_instances: u64,
    /// Timers alive now.
    pub timers: u64,
    /// Outbound requests in flight now (answered and not yet handed to their plugin included).
    pub requests_in_flight: u64,
}

/// What a [`Live`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    Timer,
    Request,
}

/// One timer or outbound request of a route on a worker, counted as alive from [`Metrics::live`] until dropped:
/// whoever holds the timer or the request's place holds this, so the count cannot drift from what exists.
pub struct Live {
    metrics: Arc<Metrics>,
    worker: usize,
    slot: usize,
    kind: LiveKind,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.metrics.live_ended(self.worker, self.slot, self.kind);
    }
}

pub struct Metrics {
    /// Route paths, the `route` label.
    routes: Vec<String>,
    /// Each certificate's expiry (Unix seconds), by listener and source (`file` or `acme`).
    certificates: Mutex<BTreeMap<(String, String), i64>>,
    /// One per worker.
    shards: Vec<Shard>,
    /// Outbound requests to upstreams.
    pub upstreams: std::sync::Arc<crate::upstream_stats::UpstreamStats>,
}

impl Metrics {
    pub fn new(routes: Vec<String>, workers: usize) -> Self {
        let shards = (0..workers)
            .map(|_| Shard {
                routes: routes.iter().map(|_| RouteCounters::default()).collect(),
                ..Shard::default()
            })
            .collect();
        Metrics {
            routes,
            shards,
            certificates: Mutex::default(),
            upstreams: Default::default(),
        }
    }

    /// The slot of the route at `path`; routes added by a reload have none (counted from the next restart).
    pub fn slot(&self, path: &str) -> usize {
        self.routes
            .iter()
            .position(|r| r == path)
            .unwrap_or(usize::MAX)
    }

    #[inline]
    fn counters(&self, worker: usize, slot: usize) -> Option<&RouteCounters> {
        self.shards.get(worker)?.routes.get(slot)
    }

    pub fn opened(&self, worker: usize, slot: usize) {
        if let Some(r) = self.counters(worker, slot) {
            r.opened.fetch_add(1, Relaxed);
        }
    }

    pub fn closed(&self, worker: usize, slot: usize, code: u16) {
        if let Some(r) = self.counters(worker, slot) {
            r.closed.fetch_add(1, Relaxed);
        }
        if let Some(shard) = self.shards.get(worker) {
            *lock(&shard.closes).entry(code).or_default() += 1;
        }
    }

    /// A message from a client, counted by the worker that serves it (on its own thread).
    #[inline]
    pub fn message_in(&self, worker: usize, slot: usize, bytes: usize) {
        if let Some(r) = self.counters(worker, slot) {
            bump(&r.messages_in, 1);
            bump(&r.bytes_in, bytes as u64);
        }
    }

    /// A message written to a client, counted by the worker that serves it (on its own thread).
    #[inline]
    pub fn message_out(&self, worker: usize, slot: usize, bytes: usize) {
        if let Some(r) = self.counters(worker, slot) {
            bump(&r.messages_out, 1);
            bump(&r.bytes_out, bytes as u64);
        }
    }

    /// A plugin callback's duration, counted by the worker that ran it (on its own thread).
    #[inline]
    pub fn plugin_event(&self, worker: usize, slot: usize, took: Duration) {
        if let Some(r) = self.counters(worker, slot) {
            let seconds = took.as_secs_f64();
            let bucket = LATENCY_BUCKETS
                .iter()
                .position(|&le| seconds <= le)
                .unwrap_or(LATENCY_BUCKETS.len());
            bump(&r.latency[bucket], 1);
            bump(&r.latency_sum_ns, took.as_nanos() as u64);
        }
    }

    /// A connection that negotiated permessage-deflate opened (`open`) or closed.
    pub fn deflate_connection(&self, worker: usize, slot: usize, open: bool) {
        if let Some(r) = self.counters(worker, slot) {
            bump(
                if open {
                    &r.deflate_opened
                } else {
                    &r.deflate_closed
                },
                1,
            );
        }
    }

    /// A compressed message of `plain` bytes went out as `wire` bytes; `compressed_now` unless an earlier
    /// compression of the same message was reused.
    #[inline]
    pub fn deflated_out(
        &self,
        worker: usize,
        slot: usize,
        plain: usize,
        wire: usize,
        compressed_now: bool,
    ) {
        if let Some(r) = self.counters(worker, slot) {
            bump(&r.deflate_messages_out, 1);
            bump(&r.deflate_plain_out, plain as u64);
            bump(&r.deflate_wire_out, wire as u64);
            bump(&r.deflate_compressions, u64::from(compressed_now));
        }
    }

    /// Compressed messages came in: `messages` of `wire` bytes on the wire, `plain` bytes inflated.
    #[inline]
    pub fn inflated_in(&self, worker: usize, slot: usize, messages: u64, wire: u64, plain: u64) {
        if let Some(r) = self.counters(worker, slot) {
            bump(&r.deflate_messages_in, messages);
            bump(&r.deflate_plain_in, plain);
            bump(&r.deflate_wire_in, wire);
        }
    }

    pub fn trap(&self, worker: usize, slot: usize) {
        if let Some(r) = self.counters(worker, slot) {
            r.traps.fetch_add(1, Relaxed);
        }
    }

    /// A plugin instance of the route grew its linear memory by `bytes` (its first allocation included).
    pub fn plugin_memory_grown(&self, worker: usize, slot: usize, bytes: u64) {
        if let Some(r) = self.counters(worker, slot) {
            r.memory_grown.fetch_add(bytes, Relaxed);
        }
    }

    /// A plugin instance of the route that held `bytes` of linear memory ended.
    pub fn plugin_memory_freed(&self, worker: usize, slot: usize, bytes: u64) {
        if let Some(r) = self.counters(worker, slot) {
            r.memory_freed.fetch_add(bytes, Relaxed);
            r.instances_ended.fetch_add(1, Relaxed);
        }
    }

    /// A plugin instance of the route started.
    pub fn plugin_instance_started(&self, worker: usize, slot: usize) {
        if let Some(r) = self.counters(worker, slot) {
            r.instances_started.fetch_add(1, Relaxed);
        }
    }

    pub fn deferred(&self, worker: usize, slot: usize) {
        if let Some(r) = self.counters(worker, slot) {
            r.deferred.fetch_add(1, Relaxed);
        }
    }

    /// A deferred upgrade got its answer (or lost its client); `timed_out` when the answer was the 504.
    pub fn deferred_ended(&self, worker: usize, slot: usize, timed_out: bool) {
        if let Some(r) = self.counters(worker, slot) {
            r.deferred_ended.fetch_add(1, Relaxed);
            if timed_out {
                r.accept_timeouts.fetch_add(1, Relaxed);
            }
        }
    }

    /// A plugin log line at warn (`error` false) or error level, counted by the worker that ran the plugin.
    pub fn plugin_logged(&self, worker: usize, slot: usize, error: bool) {
        if let Some(r) = self.counters(worker, slot) {
            bump(
                if error {
                    &r.plugin_errors
                } else {
                    &r.plugin_warnings
                },
                1,
            );
        }
    }

    pub fn init_failed(&self, worker: usize, slot: usize) {
        if let Some(r) = self.counters(worker, slot) {
            r.init_failures.fetch_add(1, Relaxed);
        }
    }

    pub fn rejected(&self, worker: usize, why: Rejection) {
        if let Some(shard) = self.shards.get(worker) {
            shard.rejected[why as usize].fetch_add(1, Relaxed);
        }
    }

    /// Records when the certificate `listener` serves from `source` expires (a renewal or reload replaces it).
    pub fn certificate_expiry(&self, listener: &str, source: &str, unix_seconds: i64) {
        lock(&self.certificates).insert((listener.to_owned(), source.to_owned()), unix_seconds);
    }

    /// Counts one hit of `cap`; `worker` may be any shard (the push API's thread counts in shard 0).
    pub fn cap_hit(&self, worker: usize, cap: CapHit) {
        if let Some(shard) = self.shards.get(worker).or(self.shards.first()) {
            shard.cap_hits[cap as usize].fetch_add(1, Relaxed);
        }
    }

    /// Counts a timer or request of route `slot` that starts on `worker` now, until the returned guard is dropped.
    pub fn live(self: &Arc<Self>, worker: usize, slot: usize, kind: LiveKind) -> Live {
        if let Some(r) = self.counters(worker, slot) {
            match kind {
                LiveKind::Timer => &r.timers_started,
                LiveKind::Request => &r.requests_started,
            }
            .fetch_add(1, Relaxed);
        }
        if let (LiveKind::Timer, Some(shard)) = (kind, self.shards.get(worker)) {
            shard.timers_started.fetch_add(1, Relaxed);
        }
        Live {
            metrics: self.clone(),
            worker,
            slot,
            kind,
        }
    }

    fn live_ended(&self, worker: usize, slot: usize, kind: LiveKind) {
        if let Some(r) = self.counters(worker, slot) {
            match kind {
                LiveKind::Timer => &r.timers_ended,
                LiveKind::Request => &r.requests_ended,
            }
            .fetch_add(1, Relaxed);
        }
        if let (LiveKind::Timer, Some(shard)) = (kind, self.shards.get(worker)) {
            shard.timers_ended.fetch_add(1, Relaxed);
        }
    }

    /// Hits of `cap` counted on `worker`.
    pub fn cap_hits_of(&self, worker: usize, cap: CapHit) -> u64 {
        self.shards
            .get(worker)
            .map_or(0, |s| s.cap_hits[cap as usize].load(Relaxed))
    }

    /// Sums a shard counter over the shards.
    fn sum_shards(&self, field: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| field(s).load(Relaxed)).sum()
    }

    /// The counters of route `slot` (every route with `None`) on `worker` (every worker with `None`).
    pub fn totals(&self, worker: Option<usize>, slot: Option<usize>) -> Totals {
        let mut t = Totals::default();
        let (mut deferred, mut deferred_ended, mut grown, mut freed) = (0, 0, 0, 0);
        let (mut started, mut ended) = (0, 0);
        let (mut timers, mut timers_ended, mut requests, mut requests_ended) = (0, 0, 0, 0);
        for (w, shard) in self.shards.iter().enumerate() {
            if worker.is_some_and(|want| want != w) {
                continue;
            }
            for (s, r) in shard.routes.iter().enumerate() {
                if slot.is_some_and(|want| want != s) {
                    continue;
                }
                let get = |c: &AtomicU64| c.load(Relaxed);
                t.opened += get(&r.opened);
                t.closed += get(&r.closed);
                t.messages_in += get(&r.messages_in);
                t.messages_out += get(&r.messages_out);
                t.bytes_in += get(&r.bytes_in);
                t.bytes_out += get(&r.bytes_out);
                t.traps += get(&r.traps);
                deferred += get(&r.deferred);
                deferred_ended += get(&r.deferred_ended);
                grown += get(&r.memory_grown);
                freed += get(&r.memory_freed);
                started += get(&r.instances_started);
                ended += get(&r.instances_ended);
                timers += get(&r.timers_started);
                timers_ended += get(&r.timers_ended);
                requests += get(&r.requests_started);
                requests_ended += get(&r.requests_ended);
            }
        }
        t.timers = timers.saturating_sub(timers_ended);
        t.requests_in_flight = requests.saturating_sub(requests_ended);
        t.deferred_waiting = deferred.saturating_sub(deferred_ended);
        t.plugin_memory_bytes = grown.saturating_sub(freed);
        t.plugin_instances = started.saturating_sub(ended);
        t
    }

    /// Timers alive now on `worker` (every worker with `None`).
    pub fn timers_live(&self, worker: Option<usize>) -> u64 {
        self.shards
            .iter()
            .enumerate()
            .filter(|(w, _)| worker.is_none_or(|want| want == *w))
            .map(|(_, s)| {
                s.timers_started
                    .load(Relaxed)
                    .saturating_sub(s.timers_ended.load(Relaxed))
            })
            .sum()
    }

    /// The route paths, in slot order.
    pub fn routes(&self) -> &[String] {
        &self.routes
    }

    pub fn workers(&self) -> usize {
        self.shards.len()
    }

    /// Each certificate's listener, source and expiry (Unix seconds).
    pub fn certificates(&self) -> Vec<(String, String, i64)> {
        lock(&self.certificates)
            .iter()
            .map(|((listener, source), expiry)| (listener.clone(), source.clone(), *expiry))
            .collect()
    }

    /// Sums a route counter over the shards.
    fn sum(&self, slot: usize, field: impl Fn(&RouteCounters) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .filter_map(|s| s.routes.get(slot))
            .map(|r| field(r).load(Relaxed))
            .sum()
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        type Field = fn(&RouteCounters) -> &AtomicU64;
        let counters: [(&str, &str, Field); 12] = [
            (
                "wssgate_connections_total",
                "WebSocket connections opened",
                |r| &r.opened,
            ),
            (
                "wssgate_messages_in_total",
                "Messages received from clients",
                |r| &r.messages_in,
            ),
            (
                "wssgate_messages_out_total",
                "Messages written to clients",
                |r| &r.messages_out,
            ),
            (
                "wssgate_bytes_in_total",
                "Payload bytes received from clients",
                |r| &r.bytes_in,
            ),
            (
                "wssgate_bytes_out_total",
                "Payload bytes written to clients",
                |r| &r.bytes_out,
            ),
            (
                "wssgate_plugin_traps_total",
                "Plugin callbacks that trapped",
                |r| &r.traps,
            ),
            (
                "wssgate_connections_closed_total",
                "WebSocket connections closed",
                |r| &r.closed,
            ),
            (
                "wssgate_deferred_connections_total",
                "Upgrades whose on-connect deferred the answer",
                |r| &r.deferred,
            ),
            (
                "wssgate_accept_timeouts_total",
                "Deferred upgrades answered 504 after accept_timeout_ms",
                |r| &r.accept_timeouts,
            ),
            (
                "wssgate_plugin_init_failures_total",
                "Plugin instances whose init refused the settings or trapped",
                |r| &r.init_failures,
            ),
            (
                "wssgate_plugin_warnings_total",
                "Lines plugins logged at warn level",
                |r| &r.plugin_warnings,
            ),
            (
                "wssgate_plugin_errors_total",
                "Lines plugins logged at error level",
                |r| &r.plugin_errors,
            ),
        ];
        let mut e = Exposition::new(&mut out);
        for (name, help, field) in counters {
            e.family(name, Kind::Counter, help);
            for (i, route) in self.routes.iter().enumerate() {
                e.sample(name, &[("route", route)], self.sum(i, field));
            }
        }
        let name = "wssgate_connections_open";
        e.family(name, Kind::Gauge, "WebSocket connections open now");
        for (i, route) in self.routes.iter().enumerate() {
            let open = self
                .sum(i, |r| &r.opened)
                .saturating_sub(self.sum(i, |r| &r.closed));
            e.sample(name, &[("route", route)], open);
        }
        let name = "wssgate_deferred_connections";
        e.family(
            name,
            Kind::Gauge,
            "Upgrades waiting for the plugin's accept or reject now",
        );
        for (i, route) in self.routes.iter().enumerate() {
            let waiting = self
                .sum(i, |r| &r.deferred)
                .saturating_sub(self.sum(i, |r| &r.deferred_ended));
            e.sample(name, &[("route", route)], waiting);
        }
        let name = "wssgate_compressed_connections";
        e.family(
            name,
            Kind::Gauge,
            "Connections open now that negotiated permessage-deflate",
        );
        for (i, route) in self.routes.iter().enumerate() {
            let open = self
                .sum(i, |r| &r.deflate_opened)
                .saturating_sub(self.sum(i, |r| &r.deflate_closed));
            e.sample(name, &[("route", route)], open);
        }
        type Pair = (&'static str, fn(&RouteCounters) -> &AtomicU64);
        let families: [(&str, &str, [Pair; 2]); 3] = [
            (
                "wssgate_deflate_messages_total",
                "Compressed messages, by direction",
                [
                    ("out", |r| &r.deflate_messages_out),
                    ("in", |r| &r.deflate_messages_in),
                ],
            ),
            (
                "wssgate_deflate_plain_bytes_total",
                "Bytes of compressed messages before compression (out) or after inflating (in)",
                [
                    ("out", |r| &r.deflate_plain_out),
                    ("in", |r| &r.deflate_plain_in),
                ],
            ),
            (
                "wssgate_deflate_wire_bytes_total",
                "Bytes of compressed messages' payloads on the wire",
                [
                    ("out", |r| &r.deflate_wire_out),
                    ("in", |r| &r.deflate_wire_in),
                ],
            ),
        ];
        for (name, help, pairs) in families {
            e.family(name, Kind::Counter, help);
            for (i, route) in self.routes.iter().enumerate() {
                for (direction, field) in pairs {
                    e.sample(
                        name,
                        &[("route", route), ("direction", direction)],
                        self.sum(i, field),
                    );
                }
            }
        }
        let name = "wssgate_deflate_compressions_total";
        e.family(
            name,
            Kind::Counter,
            "Times a message was compressed: once per worker for a message sent to many connections alike",
        );
        for (i, route) in self.routes.iter().enumerate() {
            e.sample(
                name,
                &[("route", route)],
                self.sum(i, |r| &r.deflate_compressions),
            );
        }
        let name = "wssgate_plugin_memory_bytes";
        e.family(
            name,
            Kind::Gauge,
            "Linear memory the route's plugin instances hold now, on every worker",
        );
        for (i, route) in self.routes.iter().enumerate() {
            let held = self
                .sum(i, |r| &r.memory_grown)
                .saturating_sub(self.sum(i, |r| &r.memory_freed));
            e.sample(name, &[("route", route)], held);
        }
        let name = "wssgate_plugin_event_seconds";
        e.family(name, Kind::Histogram, "Time one plugin callback took");
        for (i, route) in self.routes.iter().enumerate() {
            let counts = (0..=LATENCY_BUCKETS.len()).map(|b| self.sum(i, |r| &r.latency[b]));
            let sum = self.sum(i, |r| &r.latency_sum_ns) as f64 / 1e9;
            e.histogram(name, &[("route", route)], &LATENCY_BUCKETS, counts, sum);
        }
        let name = "wssgate_rejected_connections_total";
        e.family(
            name,
            Kind::Counter,
            "Connections turned away before the upgrade",
        );
        for (label, why) in REJECTIONS {
            let count: u64 = self
                .shards
                .iter()
                .map(|s| s.rejected[why as usize].load(Relaxed))
                .sum();
            e.sample(name, &[("reason", label)], count);
        }
        let name = "wssgate_cap_hits_total";
        e.family(
            name,
            Kind::Counter,
            "Times a plugin or client ran into a cap, by cap",
        );
        for (label, cap) in CAP_HITS {
            let count = self.sum_shards(|s| &s.cap_hits[cap as usize]);
            e.sample(name, &[("cap", label)], count);
        }
        let name = "wssgate_plugin_timers";
        let live = self
            .sum_shards(|s| &s.timers_started)
            .saturating_sub(self.sum_shards(|s| &s.timers_ended));
        e.family(name, Kind::Gauge, "Plugin timers alive now");
        e.sample(name, &[], live);
        let name = "wssgate_certificate_expiry_timestamp_seconds";
        e.family(
            name,
            Kind::Gauge,
            "When each listener's certificate expires (Unix time)",
        );
        for ((listener, source), expiry) in lock(&self.certificates).iter() {
            e.sample(name, &[("listener", listener), ("source", source)], expiry);
        }
        let name = "wssgate_closes_total";
        e.family(name, Kind::Counter, "Connections closed, by close code");
        let mut closes = BTreeMap::new();
        for shard in &self.shards {
            for (code, n) in lock(&shard.closes).iter() {
                *closes.entry(*code).or_insert(0u64) += n;
            }
        }
        for (code, n) in closes {
            e.sample(name, &[("code", &code.to_string())], n);
        }
        self.upstreams.render(&mut out);
        out
    }
}
