//! What a plugin can ask of the gateway: the `host` interface of `wit/plugin.wit`, implemented on the store's data.

use super::bindings::wssgate::plugin::{host, types};
use super::instance::RouteContext;
use crate::outbound::{Refused, close_frame, is_sendable_close_code};
use crate::registry::{self, ConnectionId};
use std::sync::Arc;
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

impl host::Host for HostState {
    fn send(
        &mut self,
        connection: u64,
        message: types::MessageResult,
    ) -> Result<(), types::SendError> {
        let outbox = registry::get(connection).ok_or(types::SendError::Closed)?;
        let message = match message {
            types::MessageResult::Text(text) => Message::Text(text.into()),
            types::MessageResult::Binary(bytes) => Message::Binary(bytes.into()),
        };
        outbox.push(message).map_err(|refused| match refused {
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
}
