//! What an instance is given when it starts and its host calls read: its route ([`RouteContext`], shared by the
//! route's instances on every worker) and the links beyond it ([`HostLinks`]: the hub, the way back for its timers
//! and responses, the worker's upstream clients, the limits, the metrics, the store of routes' memory).

use super::language::Language;
use crate::owned::{Due, InstanceAddress};
use crate::upstream::WorkerUpstreams;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use wssgate_config::RouteConfig;
use wssgate_config::limits::Limits;
use wssgate_hub::Hub;
use wssgate_hub::admission::Admission;
use wssgate_hub::metrics::{CapHit, Metrics};
use wssgate_storage::{Namespace, Store};

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
    /// The upstreams the route grants its plugin.
    pub upstreams: Vec<String>,
    /// The memory cap of each instance.
    pub max_memory_bytes: usize,
    /// How much CPU time one callback may use.
    pub event_deadline: Duration,
    /// Fuel (roughly, wasm instructions) one callback may use; `None` when fuel is off.
    pub fuel: Option<u64>,
    /// The first back-off before replacing an instance that cannot run.
    pub restart_backoff: Duration,
    /// The engine meters fuel (some route sets it), so every store needs some.
    pub fuel_metering: bool,
    /// The route's part of the gateway's memory (its `[route.history]` and `[route.storage]`, either may be off).
    pub memory: Arc<Namespace>,
}

impl RouteContext {
    /// The route's context, for a plugin in `language` (which decides the memory cap the route does not set).
    pub fn new(route: &RouteConfig, index: usize, fuel_metering: bool, language: Language) -> Self {
        RouteContext {
            index,
            fuel_metering,
            path: route.path.clone(),
            plugin: route
                .plugin
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            settings: route.settings.clone(),
            upstreams: route.upstreams.clone(),
            max_memory_bytes: route
                .max_memory_bytes
                .unwrap_or_else(|| language.default_memory_cap()),
            event_deadline: route
                .event_deadline
                .unwrap_or_else(|| language.default_event_deadline()),
            fuel: route.fuel,
            restart_backoff: route.restart_backoff,
            memory: Arc::new(Namespace {
                route: route.path.clone(),
                history: route.history.clone(),
                storage: route.storage.clone(),
            }),
        }
    }
}

/// The host links an instance needs beyond its route: the shared hub, the way back for its timers and responses,
/// the worker's upstream clients, the limits.
#[derive(Clone)]
pub struct HostLinks {
    /// Counters for /metrics, and the worker's shard in them.
    pub metrics: Arc<Metrics>,
    pub worker: usize,
    pub hub: Arc<Hub>,
    /// Where the instance's timers and outbound responses report.
    pub address: InstanceAddress,
    /// This worker's clients of the configured upstreams (the route's grants pick among them).
    pub upstreams: Arc<WorkerUpstreams>,
    /// The caps on what host calls may create, as of the generation the instance belongs to.
    pub limits: Arc<Limits>,
    /// Where traps are counted against the client's address.
    pub admission: Arc<Admission>,
    /// Where routes' history and storage are kept: `None` when no route configures either.
    pub store: Option<Arc<dyn Store>>,
}

impl HostLinks {
    /// The links of instances that run alone, outside a serving gateway: on worker 0 of a hub of one worker, with
    /// no upstream clients, their timers and responses reporting to `events`. For validating plugins before
    /// serving, for the dispatch benchmark and for tests.
    pub fn alone(metrics: Arc<Metrics>, limits: &Limits, events: UnboundedSender<Due>) -> Self {
        let (hub, _deliveries) = Hub::new(1, limits.max_worker_queue_bytes, metrics.clone());
        HostLinks {
            metrics,
            worker: 0,
            hub,
            upstreams: Default::default(),
            address: InstanceAddress {
                events,
                generation: 0,
                route_index: 0,
                instance_index: 0,
            },
            limits: Arc::new(limits.clone()),
            admission: Admission::new(limits),
            store: None,
        }
    }

    pub fn cap_hit(&self, cap: CapHit) {
        self.metrics.cap_hit(self.worker, cap);
    }
}
