//! What a plugin can ask of the gateway: the `host` interface of `wit/plugin.wit`, implemented on the store's data.
//!
//! Every call that names a connection acts only on connections of the plugin's own route — another route's id
//! behaves exactly like an unknown one — and a timer only on the calling instance's own timers. Everything a call
//! creates in host memory (memberships, names, timers, log lines) is capped by `[limits]`, and a call past a cap
//! is refused with a `refusal` the plugin can see, never by silent growth.

use super::bindings::wssgate::plugin::{host, timers as timer_calls, types};
use super::links::{HostLinks, RouteContext};
use super::stdio::LogBudget;
use crate::owned::Incarnation;
use crate::timers::TimerRefusal;
use crate::worker::Worker;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wssgate_hub::metrics::CapHit;
use wssgate_hub::outbound::{NotDeferred, Refused, UpgradeAnswer, close_frame};
use wssgate_hub::registry::ConnectionId;
use wssgate_hub::{HubRefusal, Reached};

/// The data of one plugin instance's store.
pub(crate) struct HostState {
    /// WASI state: no preopens, no environment, stdout/stderr to the log.
    pub(super) wasi: WasiCtx,
    /// WASI resources (streams) the plugin holds.
    pub(super) table: ResourceTable,
    /// The instance's memory cap.
    pub(super) limits: super::memory_cap::MemoryCap,
    /// The route this instance serves: its settings and names for the log.
    pub(super) route: Arc<RouteContext>,
    /// The connection whose event is running: its task writes right after the call, so it needs no wake-up.
    pub(super) current: Option<ConnectionId>,
    /// The hub, the timers' way back, the limits and the metrics.
    pub(super) links: HostLinks,
    /// The store's incarnation, which owns the timers it starts.
    pub(super) incarnation: Incarnation,
    /// Log lines left this second, shared with stdout and stderr and with the instance's later incarnations.
    pub(super) log_budget: Arc<LogBudget>,
    /// Set once a reload retired the instance: it may no longer start timers or requests no connection owns.
    pub(super) retired: bool,
    /// `init` is running: requests cannot be sent from it (the instance may not be the one that serves).
    pub(super) in_init: bool,
    /// The instance's `uid`: the owner of a timer or request must be one of its own connections.
    pub(super) instance_uid: u64,
    /// The instance's requests the store holds, shared by its incarnations.
    pub(super) in_store: Arc<crate::storage_requests::InStore>,
    /// The worker thread's CPU time when the running callback started, against which its budget is checked.
    pub(super) cpu_at_event_start: Duration,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

/// The plugin's message as a frame payload, without copying it.
fn to_wire(message: types::MessageResult) -> Message {
    match message {
        types::MessageResult::Text(text) => Message::Text(text.into()),
        types::MessageResult::Binary(bytes) => Message::Binary(bytes.into()),
    }
}

impl From<HubRefusal> for types::Refusal {
    fn from(refusal: HubRefusal) -> Self {
        match refusal {
            HubRefusal::UnknownConnection => types::Refusal::UnknownConnection,
            HubRefusal::TooManyGroups => types::Refusal::TooManyGroups,
            HubRefusal::TooLarge => types::Refusal::TooLarge,
        }
    }
}

impl HostState {
    /// Refuses a group name, uid or session key over `max_name_bytes`.
    fn check_name(&self, name: &str) -> Result<(), types::Refusal> {
        if name.len() > self.links.limits.max_name_bytes {
            self.links.cap_hit(CapHit::NameBytes);
            return Err(types::Refusal::NameTooLong);
        }
        Ok(())
    }

    fn route(&self) -> &str {
        &self.route.path
    }

    /// The route's slot in the metrics (none, for a route a reload added).
    pub(super) fn metrics_slot(&self) -> usize {
        self.links.metrics.slot(&self.route.path)
    }

    /// Gives a deferred upgrade of this route its answer.
    fn answer_upgrade(&self, connection: u64, answer: UpgradeAnswer) -> Result<(), types::Refusal> {
        let outbox = Worker::current()
            .connections
            .get_on_route(connection, self.route())
            .ok_or(types::Refusal::UnknownConnection)?;
        outbox
            .answer(answer)
            .map_err(|NotDeferred| types::Refusal::NotDeferred)
    }
}

/// A count as the WIT's u32.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl host::Host for HostState {
    fn send(
        &mut self,
        connection: u64,
        message: types::MessageResult,
    ) -> Result<(), types::SendError> {
        let Some(outbox) = Worker::current()
            .connections
            .get_on_route(connection, self.route())
        else {
            // Another worker's connection, through its delivery queue (a full queue there closes the client).
            let hub = &self.links.hub;
            return match hub.send_to_connection(None, self.route(), connection, to_wire(message)) {
                Reached::Queued => Ok(()),
                Reached::Unknown => Err(types::SendError::Closed),
                Reached::Dropped => Err(types::SendError::QueueFull),
            };
        };
        outbox
            .push(to_wire(message))
            .map_err(|refused| match refused {
                Refused::Closed => types::SendError::Closed,
                Refused::Full => types::SendError::QueueFull,
            })?;
        if self.current != Some(connection) {
            outbox.wake();
        }
        Ok(())
    }

    fn close(&mut self, connection: u64, code: u16, reason: String) {
        let frame = close_frame(code, &reason);
        let Some(outbox) = Worker::current()
            .connections
            .get_on_route(connection, self.route())
        else {
            // Another worker's connection, through its delivery queue.
            let close = Message::Close(Some(frame));
            self.links
                .hub
                .send_to_connection(None, self.route(), connection, close);
            return;
        };
        outbox.request_close(frame);
        // The running event's own connection writes right after it, unless it waits for its upgrade's answer (its
        // on-connect replayed from another connection's event): that wait must learn of the close now.
        if self.current != Some(connection) || outbox.is_deferred() {
            outbox.wake();
        }
    }

    fn accept(&mut self, connection: u64) -> Result<(), types::Refusal> {
        self.answer_upgrade(connection, UpgradeAnswer::Accept)
    }

    fn reject(&mut self, connection: u64, status: u16, body: String) -> Result<(), types::Refusal> {
        self.answer_upgrade(connection, UpgradeAnswer::Reject { status, body })
    }

    fn log(&mut self, level: types::LogLevel, message: String) -> Result<(), types::Refusal> {
        let (route, plugin) = (&self.route.path, &self.route.plugin);
        if !self.log_budget.take(route) {
            return Err(types::Refusal::RateLimited);
        }
        if matches!(level, types::LogLevel::Warn | types::LogLevel::Error) {
            let slot = self.metrics_slot();
            let error = matches!(level, types::LogLevel::Error);
            self.links
                .metrics
                .plugin_logged(self.links.worker, slot, error);
        }
        let message = super::stdio::one_line(&message);
        match level {
            types::LogLevel::Trace => {
                tracing::trace!(target: "plugin", %route, %plugin, "{message}")
            }
            types::LogLevel::Debug => {
                tracing::debug!(target: "plugin", %route, %plugin, "{message}")
            }
            types::LogLevel::Info => tracing::info!(target: "plugin", %route, %plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(target: "plugin", %route, %plugin, "{message}"),
            types::LogLevel::Error => {
                tracing::error!(target: "plugin", %route, %plugin, "{message}")
            }
        }
        Ok(())
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.route.settings.get(&key).cloned()
    }

    fn settings(&mut self) -> Vec<(String, String)> {
        self.route
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn join_group(&mut self, connection: u64, group: String) -> Result<(), types::Refusal> {
        self.check_name(&group)?;
        let max = self.links.limits.max_groups_per_connection;
        let joined = self.links.hub.join(self.route(), connection, &group, max);
        if joined == Err(HubRefusal::TooManyGroups) {
            self.links.cap_hit(CapHit::Groups);
        }
        Ok(joined?)
    }

    fn leave_group(&mut self, connection: u64, group: String) {
        self.links.hub.leave(self.route(), connection, &group);
    }

    fn publish(&mut self, group: String, message: types::MessageResult, exclude: Vec<u64>) -> u32 {
        let worker = Worker::current();
        let here = Some(&*worker.connections);
        count(
            self.links
                .hub
                .publish(here, self.route(), &group, to_wire(message), &exclude),
        )
    }

    fn group_size(&mut self, group: String) -> u32 {
        count(self.links.hub.group_size(self.route(), &group))
    }

    fn groups_of(&mut self, connection: u64) -> Vec<String> {
        self.links.hub.groups_of(self.route(), connection)
    }

    fn bind_user(&mut self, connection: u64, uid: String) -> Result<(), types::Refusal> {
        self.check_name(&uid)?;
        Ok(self.links.hub.bind_user(self.route(), connection, &uid)?)
    }

    fn unbind_user(&mut self, connection: u64) {
        self.links.hub.unbind_user(self.route(), connection);
    }

    fn send_to_user(&mut self, uid: String, message: types::MessageResult) -> u32 {
        let worker = Worker::current();
        let here = Some(&*worker.connections);
        count(
            self.links
                .hub
                .send_to_user(here, self.route(), &uid, to_wire(message)),
        )
    }

    fn is_user_online(&mut self, uid: String) -> bool {
        !self
            .links
            .hub
            .connections_of_user(self.route(), &uid)
            .is_empty()
    }

    fn connections_of_user(&mut self, uid: String) -> Vec<u64> {
        self.links.hub.connections_of_user(self.route(), &uid)
    }

    fn broadcast(&mut self, message: types::MessageResult, exclude: Vec<u64>) -> u32 {
        let worker = Worker::current();
        let here = Some(&*worker.connections);
        count(
            self.links
                .hub
                .broadcast(here, self.route(), to_wire(message), &exclude),
        )
    }

    fn session_set(
        &mut self,
        connection: u64,
        key: String,
        value: String,
    ) -> Result<(), types::Refusal> {
        self.check_name(&key)?;
        Ok(self
            .links
            .hub
            .session_set(self.route(), connection, &key, &value)?)
    }

    fn session_get(&mut self, connection: u64, key: String) -> Option<String> {
        self.links.hub.session_get(self.route(), connection, &key)
    }

    fn session_remove(&mut self, connection: u64, key: String) {
        self.links
            .hub
            .session_remove(self.route(), connection, &key);
    }

    fn connection_info(&mut self, connection: u64) -> Option<types::ConnectionDetails> {
        let details = self.links.hub.details(self.route(), connection)?;
        Some(types::ConnectionDetails {
            path: details.path.clone(),
            query: details.query.clone(),
            headers: details.headers.clone(),
            remote_address: details.remote_address.clone(),
            subprotocol: details.subprotocol.clone(),
            connected_at_ms: details.connected_at_ms,
        })
    }
}

impl timer_calls::Host for HostState {
    fn set_timer(
        &mut self,
        delay_ms: u64,
        repeat: bool,
        owner: Option<u64>,
    ) -> Result<u64, types::Refusal> {
        // An owner must be one of this instance's connections: its close ends the timer, and only this instance
        // gets the timer's events.
        if let Some(owner) = owner
            && !Worker::current()
                .connections
                .is_served_by(owner, self.route(), self.instance_uid)
        {
            return Err(types::Refusal::UnknownConnection);
        }
        let max = if self.retired && owner.is_none() {
            0
        } else {
            self.links.limits.max_timers_per_instance
        };
        let delay = Duration::from_millis(delay_ms);
        Worker::current()
            .timers
            .start(
                &self.links.address,
                self.metrics_slot(),
                self.incarnation,
                delay,
                repeat,
                owner,
                max,
            )
            .map_err(|TimerRefusal::TooMany| {
                self.links.cap_hit(CapHit::Timers);
                types::Refusal::TooManyTimers
            })
    }

    fn cancel_timer(&mut self, timer: u64) -> bool {
        Worker::current().timers.cancel(timer, self.incarnation)
    }
}
