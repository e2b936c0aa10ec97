//! One plugin instance on one worker, the calls into it, and its recovery from traps.
//!
//! Every call runs under a CPU-time budget (and fuel, when the route sets it). A call that traps (panic,
//! `unreachable`, out of memory, deadline, fuel, a refused host call) leaves the instance unusable. The connection
//! whose event trapped is closed with 1011 by the caller; the instance is replaced by a fresh one, into which
//! `on-connect` is replayed (marked `restored`) for every other connection it served, so they stay open.
//!
//! A plugin that keeps trapping is not re-instantiated in a hot loop: from the second trap in a row (traps less
//! than [`STABLE_AFTER`] apart), the replacement waits for a back-off that doubles each time. While it waits, the instance's connections are closed
//! with 1011 and new clients of the route are answered 503 (when no other instance is up).

use super::bindings::Plugin;
use super::cpu_budget;
use super::host_calls::HostState;
use super::stdio::LogStream;
use super::{EPOCH_TICK, MessageParam, PluginCloseFrame, PluginTemplate, RequestInfoParam};
use crate::config::RouteConfig;
use crate::hub::{ConnectionDetails, Hub};
use crate::metrics::Metrics;
use crate::outbound::close_frame;
use crate::registry::{self, ConnectionId, IdMap};
use crate::timers::{TimerId, TimerTarget};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};

/// The longest back-off between replacements of a plugin that keeps trapping.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A trap this long after the previous one starts a new count: the plugin had recovered.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// What an instance knows of the route it serves; shared by the route's instances on every worker.
pub struct RouteContext {
    /// The route's position in the config: scopes its groups and users, and routes its timers.
    pub index: usize,
    /// The route's path, for log lines.
    pub path: String,
    /// The plugin's file name, for log lines.
    pub plugin: String,
    /// The route's `[route.settings]`, handed to the plugin on request.
    pub settings: BTreeMap<String, String>,
    /// The memory cap of each instance.
    pub max_memory_bytes: usize,
    /// How much CPU time one callback may use.
    pub event_deadline: Duration,
    /// Fuel (roughly, wasm instructions) one callback may use; `None` when fuel is off.
    pub fuel: Option<u64>,
    /// The first back-off before replacing an instance that trapped twice in a row; zero replaces at once.
    pub restart_backoff: Duration,
    /// The engine meters fuel (some route sets it), so every store needs some.
    pub fuel_metering: bool,
}

impl RouteContext {
    pub fn new(route: &RouteConfig, index: usize, fuel_metering: bool) -> Self {
        RouteContext {
            index,
            fuel_metering,
            path: route.path.clone(),
            plugin: route
                .plugin
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            settings: route.settings.clone(),
            max_memory_bytes: route.max_memory_bytes,
            event_deadline: route.event_deadline,
            fuel: route.fuel,
            restart_backoff: route.restart_backoff,
        }
    }
}

/// A callback trapped. The reason is already logged and the instance is being replaced.
#[derive(Debug)]
pub struct Trapped;

/// The host links an instance needs beyond its route: the shared hub and its timers' way back.
#[derive(Clone)]
pub struct HostLinks {
    /// Counters for /metrics, and the worker's shard in them.
    pub metrics: Arc<Metrics>,
    pub worker: usize,
    pub hub: Arc<Hub>,
    pub timers: TimerTarget,
}

/// The `on-connect` argument for a connection.
fn request_info<'a>(
    details: &'a ConnectionDetails,
    headers: &'a [(&'a str, &'a str)],
    restored: bool,
) -> RequestInfoParam<'a> {
    RequestInfoParam {
        path: &details.path,
        query: &details.query,
        headers,
        remote_address: &details.remote_address,
        subprotocol: details.subprotocol.as_deref(),
        restored,
    }
}

fn header_refs(details: &ConnectionDetails) -> Vec<(&str, &str)> {
    details
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// A live instance together with the means to replace it.
pub struct PluginInstance {
    template: PluginTemplate,
    route: Arc<RouteContext>,
    /// `None` while the instance is down (after a trap, until it is replaced).
    live: Option<(Store<HostState>, Plugin)>,
    /// When a callback's budget is first checked: the budget in epoch ticks, rounded up, plus one for the tick
    /// already under way (CPU time cannot outrun wall time, so no callback is over budget sooner).
    deadline_ticks: u64,
    /// The connections this instance serves, with what they opened with (for replay).
    connections: IdMap<Arc<ConnectionDetails>>,
    /// What the instance's host calls reach beyond the route.
    links: HostLinks,
    /// The route's slot in the metrics.
    metrics_slot: usize,
    /// Traps in a row: each within [`STABLE_AFTER`] of the one before.
    traps_in_a_row: u32,
    /// When the last trap happened.
    last_trap: Option<Instant>,
    /// Traps over the instance's life, for the log.
    traps_total: u64,
    /// While set, the instance is down and is not replaced before this time.
    down_until: Option<Instant>,
}

impl PluginInstance {
    pub fn new(
        template: PluginTemplate,
        route: Arc<RouteContext>,
        links: HostLinks,
    ) -> wasmtime::Result<Self> {
        let ticks = route
            .event_deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos()) as u64
            + 1;
        let metrics_slot = links.metrics.slot(&route.path);
        let mut instance = PluginInstance {
            template,
            route,
            live: None,
            deadline_ticks: ticks,
            connections: IdMap::default(),
            metrics_slot,
            links,
            traps_in_a_row: 0,
            last_trap: None,
            traps_total: 0,
            down_until: None,
        };
        instance.live = Some(instance.instantiate()?);
        Ok(instance)
    }

    fn instantiate(&self) -> wasmtime::Result<(Store<HostState>, Plugin)> {
        let origin: Arc<str> = format!("{} ({})", self.route.path, self.route.plugin).into();
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(LogStream {
                origin: origin.clone(),
                is_stderr: false,
            })
            .stderr(LogStream {
                origin,
                is_stderr: true,
            })
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.route.max_memory_bytes)
            .instances(64)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            route: self.route.clone(),
            current: None,
            hub: self.links.hub.clone(),
            timers: self.links.timers.clone(),
            cpu_at_event_start: Duration::ZERO,
        };
        let mut store = Store::new(self.template.engine(), state);
        store.limiter(|s| &mut s.limits);
        let budget = self.route.event_deadline;
        store.epoch_deadline_callback(move |store| {
            cpu_budget::on_deadline(store.data().cpu_at_event_start, budget)
        });
        start_budget(&mut store, self.deadline_ticks, quanta::Instant::now());
        if self.route.fuel_metering {
            store.set_fuel(self.route.fuel.unwrap_or(u64::MAX))?;
        }
        let plugin = self.template.instantiate(&mut store)?;
        Ok((store, plugin))
    }

    /// Whether the instance can take a new connection now; replaces it first if its back-off has passed.
    pub fn is_available(&mut self) -> bool {
        if self.live.is_none() && self.down_until.is_none_or(|until| Instant::now() >= until) {
            self.replace();
        }
        self.live.is_some()
    }

    pub fn on_connect(
        &mut self,
        conn: ConnectionId,
        details: &Arc<ConnectionDetails>,
    ) -> Result<Result<(), PluginCloseFrame>, Trapped> {
        let headers = header_refs(details);
        let request = request_info(details, &headers, false);
        let verdict = self.call(Some(conn), "on-connect", |p, s| {
            p.call_on_connect(s, conn, request)
        })?;
        if verdict.is_ok() {
            self.connections.insert(conn, details.clone());
        }
        Ok(verdict)
    }

    pub fn on_timer(&mut self, timer: TimerId) -> Result<(), Trapped> {
        self.call(None, "on-timer", |p, s| p.call_on_timer(s, timer))
    }

    pub fn on_message(
        &mut self,
        conn: ConnectionId,
        message: MessageParam<'_>,
    ) -> Result<(), Trapped> {
        if !self.connections.contains_key(&conn) {
            // Dropped from this instance (a replay rejected it); its close is under way.
            return Ok(());
        }
        self.call(Some(conn), "on-message", |p, s| {
            p.call_on_message(s, conn, message)
        })
    }

    pub fn on_close(&mut self, conn: ConnectionId, code: u16, reason: &str) -> Result<(), Trapped> {
        if self.connections.remove(&conn).is_none() {
            return Ok(());
        }
        self.call(Some(conn), "on-close", |p, s| {
            p.call_on_close(s, conn, code, reason)
        })
    }

    fn call<R>(
        &mut self,
        conn: Option<ConnectionId>,
        event: &'static str,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trapped> {
        let Some((store, plugin)) = self.live.as_mut() else {
            return Err(Trapped);
        };
        // quanta reads the CPU's time-stamp counter: two clock reads per event cost a few nanoseconds, not the
        // ~20 ns each of clock_gettime on this kind of virtual machine.
        let started = quanta::Instant::now();
        store.data_mut().current = conn;
        start_budget(store, self.deadline_ticks, started);
        if let Some(fuel) = self.route.fuel {
            // Refilled per callback: fuel bounds one event, like the deadline.
            store.set_fuel(fuel).map_err(|_| Trapped)?;
        }
        let result = f(plugin, store);
        let (metrics, worker, route) = (&self.links.metrics, self.links.worker, self.metrics_slot);
        metrics.plugin_event(worker, route, started.elapsed());
        store.data_mut().current = None;
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                self.links.metrics.trap(worker, route);
                self.count_trap();
                tracing::error!(route = %self.route.path, plugin = %self.route.plugin, event, connection = ?conn,
                    traps = self.traps_total, "plugin trapped: {error:#}");
                if let Some(conn) = conn {
                    self.connections.remove(&conn);
                }
                self.live = None;
                self.recover();
                Err(Trapped)
            }
        }
    }

    fn count_trap(&mut self) {
        let now = Instant::now();
        let in_a_row = self
            .last_trap
            .is_some_and(|last| now.duration_since(last) < STABLE_AFTER);
        self.traps_in_a_row = if in_a_row { self.traps_in_a_row + 1 } else { 1 };
        self.last_trap = Some(now);
        self.traps_total += 1;
    }

    /// After a trap: replace the instance at once, or, when it keeps trapping, take it down for a back-off.
    fn recover(&mut self) {
        let backoff = self.backoff();
        if backoff.is_zero() {
            self.replace();
        } else {
            self.take_down(backoff);
        }
    }

    /// Leaves the instance down for `backoff`, closing the connections it served.
    fn take_down(&mut self, backoff: Duration) {
        tracing::warn!(route = %self.route.path, plugin = %self.route.plugin,
            "plugin trapped {} times in a row; replacing it in {backoff:?}", self.traps_in_a_row);
        self.live = None;
        self.down_until = Some(Instant::now() + backoff);
        for (conn, _) in self.connections.drain() {
            close_connection(conn, 1011, "plugin unavailable");
        }
    }

    /// The wait before the next replacement: none after a single trap, then the route's back-off, doubling.
    fn backoff(&self) -> Duration {
        let base = self.route.restart_backoff;
        if self.traps_in_a_row <= 1 || base.is_zero() {
            return Duration::ZERO;
        }
        let doublings = (self.traps_in_a_row - 2).min(16);
        base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
    }

    /// Puts a fresh instance in place and replays `on-connect` into it for the connections it serves. Bounded:
    /// each round in which a replay traps drops that connection, or takes the instance down.
    fn replace(&mut self) {
        loop {
            match self.instantiate() {
                Ok(live) => {
                    self.live = Some(live);
                    self.down_until = None;
                }
                Err(error) => {
                    tracing::error!(route = %self.route.path, plugin = %self.route.plugin,
                        "cannot instantiate the plugin: {error:#}");
                    let wait = self.route.restart_backoff.max(Duration::from_secs(1));
                    return self.take_down(wait);
                }
            }
            if !self.replay_trapped() {
                return;
            }
            let backoff = self.backoff();
            if !backoff.is_zero() {
                return self.take_down(backoff);
            }
        }
    }

    /// Replays `on-connect` (marked `restored`) for every connection the instance serves; true when a replay
    /// trapped (that connection is closed with 1011 and the instance is gone). A connection the plugin now rejects
    /// is closed with the plugin's code.
    fn replay_trapped(&mut self) -> bool {
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for conn in ids {
            let (Some(details), Some((store, plugin))) =
                (self.connections.get(&conn), self.live.as_mut())
            else {
                continue;
            };
            let headers = header_refs(details);
            let request = request_info(details, &headers, true);
            store.data_mut().current = Some(conn);
            start_budget(store, self.deadline_ticks, quanta::Instant::now());
            let result = plugin.call_on_connect(&mut *store, conn, request);
            store.data_mut().current = None;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(reject)) => {
                    self.connections.remove(&conn);
                    close_connection(conn, reject.code, &reject.reason);
                }
                Err(error) => {
                    tracing::error!(route = %self.route.path, plugin = %self.route.plugin, connection = conn,
                        "plugin trapped replaying on-connect: {error:#}");
                    self.connections.remove(&conn);
                    close_connection(conn, 1011, "plugin error");
                    self.count_trap();
                    self.live = None;
                    return true;
                }
            }
        }
        false
    }
}

/// Starts the CPU budget of a callback starting `now`: the CPU time it is counted from, and the epoch deadline at
/// which it is first checked.
fn start_budget(store: &mut Store<HostState>, ticks: u64, now: quanta::Instant) {
    store.data_mut().cpu_at_event_start = cpu_budget::event_start(now);
    store.set_epoch_deadline(ticks);
}

/// Asks connection `conn` on this worker to close with `code`.
fn close_connection(conn: ConnectionId, code: u16, reason: &str) {
    if let Some(outbox) = registry::get(conn) {
        outbox.force_close(close_frame(code, reason));
        outbox.wake();
    }
}
