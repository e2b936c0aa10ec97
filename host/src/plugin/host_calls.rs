//! What a plugin can ask of the gateway: the `host` interface of `wit/plugin.wit`, implemented on the store's data.

use super::bindings::wssgate::plugin::{host, types};
use super::instance::RouteContext;
use crate::hub::{Hub, SessionError};
use crate::outbound::{Refused, close_frame, is_sendable_close_code};
use crate::registry::{self, ConnectionId};
use crate::timers::{self, TimerTarget};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The data of one plugin instance's store.
pub struct HostState {
    /// WASI state: no preopens, no environment, stdout/stderr to the log.
    pub(super) wasi: WasiCtx,
    /// WASI resources (streams) the plugin holds.
    pub(super) table: ResourceTable,
    /// The instance's memory cap.
    pub(super) limits: StoreLimits,
    /// The route this instance serves: its settings and names for the log.
    pub(super) route: Arc<RouteContext>,
    /// The connection whose event is running: its task writes right after the call, so it needs no wake-up.
    pub(super) current: Option<ConnectionId>,
    /// Groups, users and sessions shared by all workers.
    pub(super) hub: Arc<Hub>,
    /// Where this instance's timers report.
    pub(super) timers: TimerTarget,
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
        let outbox = registry::get(connection).ok_or(types::SendError::Closed)?;
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
        let Some(outbox) = registry::get(connection) else {
            return;
        };
        let code = if is_sendable_close_code(code) {
            code
        } else {
            tracing::warn!(route = %self.route.path, plugin = %self.route.plugin, "plugin asked to close with code {code}, which may not be sent; using 1000");
            1000
        };
        outbox.request_close(close_frame(code, &reason));
        if self.current != Some(connection) {
            outbox.wake();
        }
    }

    fn log(&mut self, level: types::LogLevel, message: String) {
        let (route, plugin) = (&self.route.path, &self.route.plugin);
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

    fn join_group(&mut self, connection: u64, group: String) {
        self.hub.join(connection, &group);
    }

    fn leave_group(&mut self, connection: u64, group: String) {
        self.hub.leave(connection, &group);
    }

    fn publish(&mut self, group: String, message: types::MessageResult, exclude: Vec<u64>) -> u32 {
        count(
            self.hub
                .publish(&self.route.path, &group, to_wire(message), &exclude),
        )
    }

    fn group_size(&mut self, group: String) -> u32 {
        count(self.hub.group_size(&self.route.path, &group))
    }

    fn groups_of(&mut self, connection: u64) -> Vec<String> {
        self.hub.groups_of(connection)
    }

    fn bind_user(&mut self, connection: u64, uid: String) {
        self.hub.bind_user(connection, &uid);
    }

    fn unbind_user(&mut self, connection: u64) {
        self.hub.unbind_user(connection);
    }

    fn send_to_user(&mut self, uid: String, message: types::MessageResult) -> u32 {
        count(
            self.hub
                .send_to_user(&self.route.path, &uid, to_wire(message)),
        )
    }

    fn is_user_online(&mut self, uid: String) -> bool {
        !self
            .hub
            .connections_of_user(&self.route.path, &uid)
            .is_empty()
    }

    fn connections_of_user(&mut self, uid: String) -> Vec<u64> {
        self.hub.connections_of_user(&self.route.path, &uid)
    }

    fn broadcast(&mut self, message: types::MessageResult, exclude: Vec<u64>) -> u32 {
        count(
            self.hub
                .broadcast(&self.route.path, to_wire(message), &exclude),
        )
    }

    fn session_set(
        &mut self,
        connection: u64,
        key: String,
        value: String,
    ) -> Result<(), types::SessionError> {
        self.hub
            .session_set(connection, &key, &value)
            .map_err(|e| match e {
                SessionError::UnknownConnection => types::SessionError::UnknownConnection,
                SessionError::TooLarge => types::SessionError::TooLarge,
            })
    }

    fn session_get(&mut self, connection: u64, key: String) -> Option<String> {
        self.hub.session_get(connection, &key)
    }

    fn session_remove(&mut self, connection: u64, key: String) {
        self.hub.session_remove(connection, &key);
    }

    fn set_timer(&mut self, delay_ms: u64, repeat: bool, owner: Option<u64>) -> u64 {
        timers::start(&self.timers, Duration::from_millis(delay_ms), repeat, owner)
    }

    fn cancel_timer(&mut self, timer: u64) -> bool {
        timers::cancel(timer)
    }

    fn connection_info(&mut self, connection: u64) -> Option<types::ConnectionDetails> {
        let details = self.hub.details(connection)?;
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
