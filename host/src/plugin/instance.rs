//! One plugin instance on one worker, and the calls into it.
//!
//! Every call runs under an epoch deadline. A call that traps (panic, `unreachable`, out of memory, deadline, a
//! refused host call) leaves the instance unusable, so it is thrown away and a fresh one takes its place; the caller
//! closes the connection whose event trapped with 1011.

use super::bindings::Plugin;
use super::host_calls::HostState;
use super::stdio::LogStream;
use super::{EPOCH_TICK, PluginTemplate};
use super::{MessageParam, RequestInfoParam};
use crate::config::RouteConfig;
use crate::registry::ConnectionId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};

/// What an instance knows of the route it serves; shared by the route's instances on every worker.
pub struct RouteContext {
    /// The route's path, for log lines.
    pub path: String,
    /// The plugin's file name, for log lines.
    pub plugin: String,
    /// The route's `[route.settings]`, handed to the plugin on request.
    pub settings: BTreeMap<String, String>,
    /// The memory cap of each instance.
    pub max_memory_bytes: usize,
    /// How long one callback may run.
    pub event_deadline: Duration,
}

impl RouteContext {
    pub fn new(route: &RouteConfig) -> Self {
        RouteContext {
            path: route.path.clone(),
            plugin: route
                .plugin
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            settings: route.settings.clone(),
            max_memory_bytes: route.max_memory_bytes,
            event_deadline: route.event_deadline,
        }
    }
}

/// A callback trapped; the instance has been replaced. The reason is already logged.
#[derive(Debug)]
pub struct Trapped;

/// A live instance together with the means to replace it.
pub struct PluginInstance {
    template: PluginTemplate,
    route: Arc<RouteContext>,
    /// `None` after a trap whose replacement failed to instantiate; the next call tries again.
    live: Option<(Store<HostState>, Plugin)>,
    /// The deadline in epoch ticks, rounded up, plus one for the tick already under way.
    deadline_ticks: u64,
}

impl PluginInstance {
    pub fn new(template: PluginTemplate, route: Arc<RouteContext>) -> wasmtime::Result<Self> {
        let ticks = route
            .event_deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos()) as u64
            + 1;
        let mut instance = PluginInstance {
            template,
            route,
            live: None,
            deadline_ticks: ticks,
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
        };
        let mut store = Store::new(self.template.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        let plugin = self.template.instantiate(&mut store)?;
        Ok((store, plugin))
    }

    pub fn on_connect(
        &mut self,
        conn: ConnectionId,
        request: RequestInfoParam<'_>,
    ) -> Result<Result<(), super::PluginCloseFrame>, Trapped> {
        self.call(conn, "on-connect", |p, s| {
            p.call_on_connect(s, conn, request)
        })
    }

    pub fn on_message(
        &mut self,
        conn: ConnectionId,
        message: MessageParam<'_>,
    ) -> Result<(), Trapped> {
        self.call(conn, "on-message", |p, s| {
            p.call_on_message(s, conn, message)
        })
    }

    pub fn on_close(&mut self, conn: ConnectionId, code: u16, reason: &str) -> Result<(), Trapped> {
        self.call(conn, "on-close", |p, s| {
            p.call_on_close(s, conn, code, reason)
        })
    }

    fn call<R>(
        &mut self,
        conn: ConnectionId,
        event: &'static str,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trapped> {
        if self.live.is_none() {
            self.replace();
        }
        let Some((store, plugin)) = self.live.as_mut() else {
            return Err(Trapped);
        };
        store.data_mut().current = Some(conn);
        store.set_epoch_deadline(self.deadline_ticks);
        let result = f(plugin, store);
        store.data_mut().current = None;
        result.map_err(|error| {
            tracing::error!(route = %self.route.path, plugin = %self.route.plugin, event, connection = conn,
                "plugin trapped: {error:#}");
            self.live = None;
            self.replace();
            Trapped
        })
    }

    /// Puts a fresh instance in place of one that trapped.
    fn replace(&mut self) {
        match self.instantiate() {
            Ok(live) => self.live = Some(live),
            Err(error) => tracing::error!(route = %self.route.path, plugin = %self.route.plugin,
                "cannot instantiate the plugin: {error:#}"),
        }
    }
}
