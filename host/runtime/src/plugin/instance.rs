//! One plugin instance on one worker, the calls into it, and its recovery from traps.
//!
//! Every call runs under a CPU-time budget (and fuel, when the route sets it). A call that traps (panic,
//! `unreachable`, out of memory, deadline, fuel, a refused host call) leaves the instance unusable. What that costs
//! is aimed at whoever caused it:
//!
//! - the connection whose event trapped is closed with 1011 by the caller, and nothing else is: the instance is
//!   replaced by a fresh one at once, however often it happens; the trap is counted against the client's address,
//!   whose new upgrades are throttled after `max_traps_per_ip` (see [`wssgate_hub::admission`]);
//! - the other connections stay open. `on-connect` is replayed into the fresh instance (marked `restored`) for
//!   each open one lazily, just before that connection's next event, so a trap costs one instantiation, never work
//!   in proportion to the instance's open connections. Connections whose upgrade still waits for the plugin's
//!   answer have no next event, so they are replayed at once: that work is bounded by the deferred connections,
//!   which the connection caps, the handshake cap per address and `accept_timeout_ms` bound;
//! - the old instance's timers and outbound requests die with it (cancelled: no event follows);
//! - only a plugin that cannot run at all — it fails to instantiate, or its replays of `on-connect` trap for the
//!   connections of [`REPLAY_TRAPS_TO_BACK_OFF`] client addresses in a row — is taken down for a back-off that
//!   doubles each time (until it runs again): its
//!   connections are closed with 1011 "plugin unavailable" and new clients get 503 while no instance is up.

use super::cpu_budget;
use super::exports::Exports;
use super::host_calls::HostState;
use super::links::{HostLinks, RouteContext};
use super::memory_cap::MemoryCap;
use super::stdio::LogBudget;
use super::stdio::LogStream;
use super::{EPOCH_TICK, MessageParam, PluginTemplate, RequestInfoParam, Verdict};
use crate::owned::{self, Due, DueEvent, Incarnation};
use crate::worker::Worker;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wssgate_hub::ConnectionDetails;
use wssgate_hub::metrics::CapHit;
use wssgate_hub::outbound::{UpgradeAnswer, close_frame};
use wssgate_hub::registry::{ConnectionId, IdMap, IdSet};

/// The longest back-off between replacements of a plugin that cannot run.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Client addresses whose replayed `on-connect` trapped in a row (none succeeding in between) after which the plugin
/// counts as unable to run, rather than as hurt by one client (one address's connections count once).
pub(crate) const REPLAY_TRAPS_TO_BACK_OFF: usize = 3;

/// WASI resources (stream and pollable handles) one instance may hold at once: a plugin needs a handful, and each
/// costs host memory outside the memory cap (wasmtime's default allows a million).
const MAX_WASI_RESOURCES: usize = 1024;

/// The table of an instance's WASI resources, bounded by [`MAX_WASI_RESOURCES`].
fn wasi_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_WASI_RESOURCES);
    table
}

/// A callback trapped. The reason is already logged and the instance is being replaced.
#[derive(Debug)]
pub struct Trapped;

/// Why a fresh instance could not start.
#[derive(Debug)]
pub enum StartError {
    /// The plugin's `init` refused the route's settings, with its own message.
    Refused(String),
    /// Instantiation or `init` trapped, or the store could not be set up.
    Failed(wasmtime::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Refused(message) => write!(
                f,
                "the plugin's init refused the route's settings: {message}"
            ),
            StartError::Failed(error) => write!(f, "cannot start the plugin: {error:#}"),
        }
    }
}

impl std::error::Error for StartError {}

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
    /// Names this instance (across its incarnations) in the registry, which records who serves each connection.
    uid: u64,
    template: PluginTemplate,
    route: Arc<RouteContext>,
    /// `None` while the instance is down (it cannot run; see the module doc).
    live: Option<(Store<HostState>, Exports)>,
    /// The live store's number: its timers carry it, and die with it.
    incarnation: Incarnation,
    /// When a callback's budget is first checked: the budget in epoch ticks, rounded up, plus one for the tick
    /// already under way (CPU time cannot outrun wall time, so no callback is over budget sooner).
    deadline_ticks: u64,
    /// The connections this instance serves, with what they opened with (for replay).
    connections: IdMap<Arc<ConnectionDetails>>,
    /// Connections whose `on-connect` has not been replayed into the live store yet: each is replayed just before
    /// its next event.
    awaiting_replay: IdSet,
    /// Connections whose upgrade waits for the plugin's answer (see [`PluginInstance::opened`]): after a
    /// replacement they are replayed at once, having no next event to wait for.
    deferred: IdSet,
    /// What the instance's host calls reach beyond the route.
    links: HostLinks,
    /// The worker it runs on: the connections it closes, the timers and requests it ends.
    worker: Rc<Worker>,
    /// The route's slot in the metrics.
    metrics_slot: usize,
    /// The client addresses of the replays that trapped since the last one that succeeded: only replays of
    /// several clients' connections trapping count as a plugin that cannot run, never one client's.
    replay_traps_in_a_row: Vec<std::net::IpAddr>,
    /// Shared by every incarnation, so a trap does not refill it.
    log_budget: Arc<LogBudget>,
    /// The requests the store holds for this instance, whatever incarnation made them.
    in_store: Arc<crate::storage_requests::InStore>,
    /// A reload retired the instance (see [`PluginInstance::retire`]); its later incarnations stay retired.
    retired: bool,
    /// Times in a row the plugin could not run (each doubles the back-off); reset when it runs again.
    failures_in_a_row: u32,
    /// Traps over the instance's life, for the log.
    traps_total: u64,
    /// While set, the instance is down and is not replaced before this time.
    down_until: Option<Instant>,
    /// A replacement left connections whose upgrade still waits for its answer: their `on-connect` is replayed at
    /// once (they have no next event to wait for), when the current call is over.
    deferred_replays_due: bool,
}

/// Who an event is for, so a trap in it is charged to the right party.
#[derive(Clone, Copy)]
enum Caller {
    /// An event of this connection, whose session writes what the plugin queued right after the call: a trap
    /// closes it and counts against its client's address.
    Connection(ConnectionId),
    /// A timer or a response, charged to the connection that owns it, if any.
    Later { owner: Option<ConnectionId> },
}

impl Caller {
    /// The connection a trap in the event is charged to.
    fn charged(self) -> Option<ConnectionId> {
        match self {
            Caller::Connection(conn) => Some(conn),
            Caller::Later { owner } => owner,
        }
    }
}

impl PluginInstance {
    pub fn new(
        template: PluginTemplate,
        route: Arc<RouteContext>,
        links: HostLinks,
        worker: Rc<Worker>,
    ) -> Result<Self, StartError> {
        let ticks = route
            .event_deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos()) as u64
            + 1;
        let metrics_slot = links.metrics.slot(&route.path);
        let log_budget = Arc::new(LogBudget::new(
            links.limits.max_plugin_log_lines_per_sec,
            links.metrics.clone(),
            links.worker,
        ));
        static UIDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut instance = PluginInstance {
            uid: UIDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            template,
            route,
            live: None,
            incarnation: owned::next_incarnation(),
            deadline_ticks: ticks,
            connections: IdMap::default(),
            awaiting_replay: IdSet::default(),
            deferred: IdSet::default(),
            metrics_slot,
            links,
            worker,
            replay_traps_in_a_row: Vec::new(),
            log_budget,
            in_store: Arc::default(),
            retired: false,
            failures_in_a_row: 0,
            traps_total: 0,
            down_until: None,
            deferred_replays_due: false,
        };
        instance.live = Some(instance.instantiate()?);
        Ok(instance)
    }

    /// A fresh store with the plugin instantiated in it and its `init` run.
    fn instantiate(&self) -> Result<(Store<HostState>, Exports), StartError> {
        let (mut store, exports) = self.instantiate_store().map_err(StartError::Failed)?;
        if let Some(lifecycle) = &exports.lifecycle {
            let settings: Vec<(&str, &str)> = self
                .route
                .settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            start_budget(
                &self.worker,
                &mut store,
                self.deadline_ticks,
                quanta::Instant::now(),
            );
            store.data_mut().in_init = true;
            let verdict = lifecycle.call_init(&mut store, &settings);
            store.data_mut().in_init = false;
            let refusal = match verdict {
                Ok(Ok(())) => None,
                // A reload retired this instance, whose settings were accepted when its generation started: it only
                // serves its remaining connections, and may no longer arm route-wide timers, which an init may
                // report as a refusal. Its connections are not closed over that.
                Ok(Err(message)) if self.retired => {
                    tracing::warn!(route = %self.route.path, plugin = %self.route.plugin,
                        "the retired instance's replacement refused its settings ({message}); it serves its remaining connections anyway");
                    None
                }
                Ok(Err(message)) => Some(StartError::Refused(message)),
                Err(trap) => Some(StartError::Failed(
                    trap.context("the plugin's init trapped"),
                )),
            };
            if let Some(refusal) = refusal {
                self.links
                    .metrics
                    .init_failed(self.links.worker, self.metrics_slot);
                end_work_of(&self.worker, self.incarnation);
                return Err(refusal);
            }
        }
        Ok((store, exports))
    }

    fn instantiate_store(&self) -> wasmtime::Result<(Store<HostState>, Exports)> {
        let origin: Arc<str> = format!("{} ({})", self.route.path, self.route.plugin).into();
        let budget = self.log_budget.clone();
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(LogStream::new(origin.clone(), false, budget.clone()))
            .stderr(LogStream::new(origin, true, budget.clone()))
            // No network but the contract's `http` (see `wasi_sockets`); wasmtime-wasi's default, said here.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = MemoryCap::new(
            self.route.max_memory_bytes,
            self.links.metrics.clone(),
            self.links.worker,
            self.metrics_slot,
        );
        let state = HostState {
            wasi,
            table: wasi_table(),
            limits,
            route: self.route.clone(),
            current: None,
            links: self.links.clone(),
            incarnation: self.incarnation,
            log_budget: budget,
            retired: self.retired,
            in_init: false,
            instance_uid: self.uid,
            in_store: self.in_store.clone(),
            cpu_at_event_start: Duration::ZERO,
        };
        let mut store = Store::new(self.template.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        let deadline = self.route.event_deadline;
        store.epoch_deadline_callback(move |store| {
            cpu_budget::on_deadline(store.data().cpu_at_event_start, deadline)
        });
        start_budget(
            &self.worker,
            &mut store,
            self.deadline_ticks,
            quanta::Instant::now(),
        );
        if self.route.fuel_metering {
            store.set_fuel(self.route.fuel.unwrap_or(u64::MAX))?;
        }
        let instance = self.template.pre.instantiate(&mut store)?;
        let exports = self.template.exports.load(&mut store, &instance)?;
        Ok((store, exports))
    }

    /// Whether the instance can take a new connection now; replaces it first if its back-off has passed.
    pub fn is_available(&mut self) -> bool {
        if self.live.is_none() && self.down_until.is_none_or(|until| Instant::now() >= until) {
            self.replace();
        }
        self.live.is_some()
    }

    /// Asks the plugin how to answer a connection's upgrade. The connection is the instance's from now on unless the
    /// plugin rejects it (or traps).
    pub fn on_connect(
        &mut self,
        conn: ConnectionId,
        details: &Arc<ConnectionDetails>,
    ) -> Result<Verdict, Trapped> {
        let headers = header_refs(details);
        let request = request_info(details, &headers, false);
        let verdict = self.call(
            Caller::Connection(conn),
            Some(details.client_ip),
            "on-connect",
            |e, s| e.connection.call_on_connect(s, conn, request),
        );
        match verdict {
            Ok(Verdict::Accept) => {
                self.connections.insert(conn, details.clone());
            }
            Ok(Verdict::Defer) => {
                self.connections.insert(conn, details.clone());
                self.deferred.insert(conn);
            }
            _ => {}
        }
        self.replay_deferred_if_due();
        verdict
    }

    /// A deferred connection's upgrade was accepted: its WebSocket is open, and it waits for its next event like
    /// any other.
    pub fn opened(&mut self, conn: ConnectionId) {
        self.deferred.remove(&conn);
    }

    /// A timer of this instance fired, or one of its requests was answered. A trap in the event is charged like one
    /// in an event of the work's `owner` connection, which is closed with 1011.
    pub fn on_due(&mut self, due: Due) -> Result<(), Trapped> {
        if due.incarnation != self.incarnation {
            // Started by an instance since replaced: its work died with it.
            return Ok(());
        }
        let owner = match due.owner {
            None => None,
            Some(conn) => match self.connections.get(&conn) {
                Some(details) => Some((conn, details.client_ip)),
                // An owner this instance no longer serves (closed, or rejected by a replay): its work ended with it.
                None => return Ok(()),
            },
        };
        let owner_id = owner.map(|(conn, _)| conn);
        // The owner's state must be in the fresh instance before an event about it.
        if let Some(conn) = owner_id {
            match self.replay_if_due(conn) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(Trapped) => {
                    close_connection(&self.worker, conn, 1011, "plugin error");
                    self.replay_deferred_if_due();
                    return Err(Trapped);
                }
            }
        }
        let caller = Caller::Later { owner: owner_id };
        let client_ip = owner.map(|(_, ip)| ip);
        let result = match due.event {
            DueEvent::Timer(timer) => self.call(caller, client_ip, "on-timer", |e, s| {
                match &e.timer_events {
                    Some(events) => events.call_on_timer(s, timer, owner_id),
                    // Refused at load: a plugin that can start timers exports their events.
                    None => Ok(()),
                }
            }),
            DueEvent::Response {
                request, result, ..
            } => {
                self.call(caller, client_ip, "on-http-response", |e, s| {
                    match &e.http_events {
                        Some(events) => {
                            super::http_calls::deliver(events, s, request, owner_id, &result)
                        }
                        // Refused at load: a plugin that can send requests exports their events.
                        None => Ok(()),
                    }
                })
            }
            DueEvent::Stored { request, answer } => {
                let name = match &answer {
                    wssgate_storage::Answer::Appended(_) => "on-appended",
                    wssgate_storage::Answer::History(_) => "on-history",
                    wssgate_storage::Answer::Value(_) => "on-read",
                    wssgate_storage::Answer::Written(_) => "on-written",
                };
                self.call(caller, client_ip, name, |e, s| {
                    let events = (e.history_events.as_ref(), e.storage_events.as_ref());
                    super::memory_calls::deliver(events, s, request, owner_id, &answer)
                })
            }
        };
        if let (Err(Trapped), Some((conn, _))) = (&result, owner) {
            close_connection(&self.worker, conn, 1011, "plugin error");
        }
        self.replay_deferred_if_due();
        result
    }

    pub fn on_message(
        &mut self,
        conn: ConnectionId,
        message: MessageParam<'_>,
    ) -> Result<(), Trapped> {
        let Some(client_ip) = self.connections.get(&conn).map(|d| d.client_ip) else {
            // Dropped from this instance (a replay rejected it); its close is under way.
            return Ok(());
        };
        let result = match self.replay_if_due(conn) {
            Ok(true) => self.call(
                Caller::Connection(conn),
                Some(client_ip),
                "on-message",
                |e, s| e.connection.call_on_message(s, conn, message),
            ),
            Ok(false) => Ok(()),
            Err(Trapped) => Err(Trapped),
        };
        self.replay_deferred_if_due();
        result
    }

    pub fn on_close(&mut self, conn: ConnectionId, code: u16, reason: &str) -> Result<(), Trapped> {
        let Some(client_ip) = self.connections.get(&conn).map(|d| d.client_ip) else {
            return Ok(());
        };
        let replayed = self.replay_if_due(conn);
        self.connections.remove(&conn);
        self.deferred.remove(&conn);
        let result = match replayed {
            Ok(true) => self.call(
                Caller::Connection(conn),
                Some(client_ip),
                "on-close",
                |e, s| e.connection.call_on_close(s, conn, code, reason),
            ),
            Ok(false) => Ok(()),
            Err(Trapped) => Err(Trapped),
        };
        self.replay_deferred_if_due();
        result
    }

    /// Names this instance for the registry (the same across its incarnations).
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// The live store's number, which its timers carry.
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// Stops the instance's route-wide work when a reload retires its generation: its timers that no connection
    /// owns end now; it keeps serving the connections it has until they close.
    pub fn retire(&mut self) {
        self.retired = true;
        if let Some((store, _)) = self.live.as_mut() {
            store.data_mut().retired = true;
        }
        self.worker.timers.cancel_unowned(self.incarnation);
        self.worker.requests.detach_unowned(self.incarnation);
    }

    fn call<R>(
        &mut self,
        caller: Caller,
        client_ip: Option<std::net::IpAddr>,
        event: &'static str,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trapped> {
        let Some((store, exports)) = self.live.as_mut() else {
            return Err(Trapped);
        };
        // quanta reads the CPU's time-stamp counter: two clock reads per event cost a few nanoseconds, not the
        // ~20 ns each of clock_gettime on this kind of virtual machine.
        let started = quanta::Instant::now();
        store.data_mut().current = match caller {
            Caller::Connection(conn) => Some(conn),
            Caller::Later { .. } => None,
        };
        start_budget(&self.worker, store, self.deadline_ticks, started);
        if let Some(fuel) = self.route.fuel {
            // Refilled per callback: fuel bounds one event, like the deadline.
            store.set_fuel(fuel).map_err(|_| Trapped)?;
        }
        let result = f(exports, store);
        let (metrics, worker, route) = (&self.links.metrics, self.links.worker, self.metrics_slot);
        metrics.plugin_event(worker, route, started.elapsed());
        store.data_mut().current = None;
        match result {
            Ok(value) => {
                // It runs: a later failure to start starts its back-off afresh.
                self.failures_in_a_row = 0;
                Ok(value)
            }
            Err(error) => Err(self.trapped(caller, client_ip, event, &error)),
        }
    }

    /// After a trap in `event`: logs it, charges it to the client, drops the connection it was for (its caller
    /// closes it with 1011) and replaces the instance.
    fn trapped(
        &mut self,
        caller: Caller,
        client_ip: Option<std::net::IpAddr>,
        event: &str,
        error: &wasmtime::Error,
    ) -> Trapped {
        let (worker, route) = (self.links.worker, self.metrics_slot);
        self.links.metrics.trap(worker, route);
        self.traps_total += 1;
        let connection = caller.charged();
        tracing::error!(route = %self.route.path, plugin = %self.route.plugin, event, connection = ?connection,
            client = ?client_ip, traps = self.traps_total, "plugin trapped: {error:#}");
        if let Some(ip) = client_ip
            && self.links.admission.record_trap(ip)
        {
            self.links.cap_hit(CapHit::TrapThrottleStarted);
            tracing::warn!(client = %ip, route = %self.route.path,
                "clients from {ip} made plugins trap {} times within trap_window_ms; refusing its new upgrades (429) for trap_cooloff_ms",
                self.links.limits.max_traps_per_ip);
        }
        if let Some(conn) = connection {
            self.connections.remove(&conn);
            self.awaiting_replay.remove(&conn);
            self.deferred.remove(&conn);
        }
        self.replace();
        Trapped
    }

    /// Replays `on-connect` into the live store for `conn` if it has not been since the last replacement. True
    /// when the connection's event may go ahead; false when the plugin now rejected the connection (it is being
    /// closed with 1008, or its upgrade answered with the rejection).
    fn replay_if_due(&mut self, conn: ConnectionId) -> Result<bool, Trapped> {
        // The set is empty except after a replacement: skip hashing on the per-message path.
        if self.awaiting_replay.is_empty() || !self.awaiting_replay.remove(&conn) {
            return Ok(true);
        }
        let Some(details) = self.connections.get(&conn).cloned() else {
            return Ok(false);
        };
        let headers = header_refs(&details);
        let request = request_info(&details, &headers, true);
        let verdict = self.call(
            Caller::Connection(conn),
            Some(details.client_ip),
            "on-connect (restored)",
            |e, s| e.connection.call_on_connect(s, conn, request),
        );
        let deferred = self
            .worker
            .connections
            .get(conn)
            .filter(|outbox| outbox.is_deferred());
        match verdict {
            Ok(verdict) => {
                self.replay_traps_in_a_row.clear();
                match (verdict, deferred) {
                    // Still waiting for its answer: the fresh instance gives it, now or later.
                    (Verdict::Accept, Some(outbox)) => {
                        let _ = outbox.answer(UpgradeAnswer::Accept);
                        Ok(true)
                    }
                    (Verdict::Reject(r), Some(outbox)) => {
                        let _ = outbox.answer(UpgradeAnswer::Reject {
                            status: r.status,
                            body: r.body,
                        });
                        Ok(true)
                    }
                    // Already open: the client got its 101 long ago.
                    (Verdict::Accept | Verdict::Defer, _) => Ok(true),
                    (Verdict::Reject(r), None) => {
                        self.connections.remove(&conn);
                        close_connection(&self.worker, conn, 1008, &r.body);
                        Ok(false)
                    }
                }
            }
            Err(Trapped) => {
                if !self.replay_traps_in_a_row.contains(&details.client_ip) {
                    self.replay_traps_in_a_row.push(details.client_ip);
                }
                let clients = self.replay_traps_in_a_row.len();
                if clients >= REPLAY_TRAPS_TO_BACK_OFF && self.live.is_some() {
                    tracing::error!(route = %self.route.path, plugin = %self.route.plugin,
                        "replays of on-connect for {clients} client addresses trapped in a row: the plugin cannot run");
                    self.replay_traps_in_a_row.clear();
                    self.take_down();
                }
                Err(Trapped)
            }
        }
    }

    /// After a replacement, replays `on-connect` at once for the connections whose upgrade still waits for its
    /// answer: an open connection's replay waits for its next event, but a deferred one may get its answer only
    /// from the fresh instance, which knows of it only once replayed. One whose replay traps is answered 500.
    fn replay_deferred_if_due(&mut self) {
        if !std::mem::take(&mut self.deferred_replays_due) {
            return;
        }
        // Bounded: each replay either succeeds (one fewer awaits it) or traps (one fewer connection; the others
        // await replay again in the next instance).
        let n = self.deferred.len() as u64 + 1;
        for _ in 0..n.saturating_mul(n) {
            let next = self
                .deferred
                .iter()
                .copied()
                .find(|conn| self.awaiting_replay.contains(conn));
            let Some(conn) = next else { break };
            if self.replay_if_due(conn).is_err() {
                close_connection(&self.worker, conn, 1011, "plugin error");
            }
        }
        self.deferred_replays_due = false;
    }

    /// Leaves the instance down for a back-off, closing the connections it served.
    fn take_down(&mut self) {
        self.failures_in_a_row += 1;
        let doublings = (self.failures_in_a_row - 1).min(16);
        let base = self.route.restart_backoff.max(Duration::from_millis(100));
        let backoff = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        tracing::warn!(route = %self.route.path, plugin = %self.route.plugin,
            "plugin cannot run ({} times in a row); replacing it in {backoff:?}", self.failures_in_a_row);
        self.drop_live();
        self.down_until = Some(Instant::now() + backoff);
        self.awaiting_replay.clear();
        self.deferred.clear();
        for (conn, _) in self.connections.drain() {
            close_connection(&self.worker, conn, 1011, "plugin unavailable");
        }
    }

    /// Ends the live store and everything it created.
    fn drop_live(&mut self) {
        self.live = None;
        end_work_of(&self.worker, self.incarnation);
    }

    /// Puts a fresh instance in place; every connection it serves is replayed into it before its next event.
    fn replace(&mut self) {
        self.drop_live();
        self.incarnation = owned::next_incarnation();
        match self.instantiate() {
            Ok(live) => {
                self.live = Some(live);
                self.down_until = None;
                self.awaiting_replay = self.connections.keys().copied().collect();
                self.deferred_replays_due = !self.deferred.is_empty();
            }
            Err(error) => {
                tracing::error!(route = %self.route.path, plugin = %self.route.plugin,
                    "cannot instantiate the plugin: {error:#}");
                self.take_down();
            }
        }
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        // The instance ends with its last connection (or the gateway): its requests' answers have nowhere to go,
        // but notices it sent on the way out still reach the backend.
        self.worker.timers.cancel_incarnation(self.incarnation);
        self.worker.requests.detach_incarnation(self.incarnation);
        self.worker.storage.cancel_incarnation(self.incarnation);
    }
}

/// Ends everything an incarnation that was replaced or taken down started and that is still running: its timers,
/// its outbound requests and its history and storage requests.
fn end_work_of(worker: &Worker, incarnation: Incarnation) {
    worker.timers.cancel_incarnation(incarnation);
    worker.requests.cancel_incarnation(incarnation);
    worker.storage.cancel_incarnation(incarnation);
}

/// Starts the CPU budget of a callback starting `now`: the CPU time it is counted from, and the epoch deadline at
/// which it is first checked.
fn start_budget(worker: &Worker, store: &mut Store<HostState>, ticks: u64, now: quanta::Instant) {
    store.data_mut().cpu_at_event_start = worker.cpu.event_start(now);
    store.set_epoch_deadline(ticks);
}

/// Asks connection `conn` on this worker to close with `code` (replaced by 1008 when a plugin's code may not be
/// sent).
fn close_connection(worker: &Worker, conn: ConnectionId, code: u16, reason: &str) {
    if let Some(outbox) = worker.connections.get(conn) {
        outbox.force_close(close_frame(code, reason));
        outbox.wake();
    }
}
