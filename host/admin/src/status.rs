//! `GET /api/connections` lists the connections one by one, for `wssgate connections`.
//!
//! `GET /api/status`: what `wssgate status` shows, as one JSON object — the process (version, uptime, config and
//! its last reload, resident memory), each worker and each route (connections open and waiting for an answer,
//! messages and bytes in and out, plugin memory, traps, timers), addresses throttled for traps, the cluster link and
//! the certificates. Counters are totals since the start: a reader takes two readings for rates (the command does,
//! a second apart), so the gateway keeps no clock-dependent state for it.

use crate::AdminApi;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wssgate_hub::metrics::{CapHit, Totals};

/// What the process knows of itself, for `/api/status`.
pub struct ProcessInfo {
    pub started: SystemTime,
    /// The config file it serves.
    pub config: PathBuf,
    /// When a reload last took effect; `None` before the first.
    pub last_reload: Mutex<Option<SystemTime>>,
}

impl ProcessInfo {
    pub fn new(config: PathBuf) -> Self {
        ProcessInfo {
            started: SystemTime::now(),
            config,
            last_reload: Mutex::new(None),
        }
    }

    /// Notes a reload that took effect now.
    pub fn reloaded(&self) {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// The process's resident memory, from `/proc/self/status` (`None` where there is no procfs).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn totals_json(t: &Totals) -> Value {
    json!({
        "connections_open": t.opened.saturating_sub(t.closed),
        "connections_waiting": t.deferred_waiting,
        "connections_total": t.opened,
        "messages_in": t.messages_in,
        "messages_out": t.messages_out,
        "bytes_in": t.bytes_in,
        "bytes_out": t.bytes_out,
        "plugin_memory_bytes": t.plugin_memory_bytes,
        "plugin_instances": t.plugin_instances,
        "traps": t.traps,
        "timers": t.timers,
        "requests_in_flight": t.requests_in_flight,
    })
}

/// The status object (its fields are documented in docs/src/configuration.md, "wssgate status").
pub fn status(api: &AdminApi) -> Value {
    let metrics = &api.metrics;
    let process = &api.process;
    let now = SystemTime::now();
    let last_reload = *process
        .last_reload
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let workers: Vec<Value> = (0..metrics.workers())
        .map(|w| {
            let mut worker = totals_json(&metrics.totals(Some(w), None));
            worker["worker"] = json!(w);
            // Every timer of the worker, those of routes a reload added (which have no slot) included.
            worker["timers"] = json!(metrics.timers_live(Some(w)));
            // Addresses are throttled for the whole process: per worker, the upgrades it refused for that.
            worker["throttled_upgrades"] = json!(metrics.cap_hits_of(w, CapHit::TrapThrottled));
            worker
        })
        .collect();
    let usage: std::collections::HashMap<String, wssgate_storage::Usage> = api
        .store
        .as_ref()
        .map(|s| s.usage().into_iter().collect())
        .unwrap_or_default();
    let routes: Vec<Value> = metrics
        .routes()
        .iter()
        .enumerate()
        .map(|(slot, path)| {
            let mut route = totals_json(&metrics.totals(None, Some(slot)));
            route["route"] = json!(path);
            if let Some(u) = usage.get(path) {
                route["stored"] = json!({
                    "history_groups": u.history_groups,
                    "history_bytes": u.history_bytes,
                    "keys": u.keys,
                    "key_bytes": u.key_bytes,
                });
            }
            route
        })
        .collect();
    let store = api.store.as_ref().map(|s| {
        let health = match s.health() {
            wssgate_storage::Health::Ok => "ok".to_owned(),
            wssgate_storage::Health::Degraded(why) => why,
        };
        json!({"kind": s.kind(), "health": health})
    });
    let cluster = api.cluster.as_ref().map(|c| {
        json!({
            "connected": c.is_connected(),
            "nodes": c.nodes(),
            "dropped": c.dropped(),
        })
    });
    let certificates: Vec<Value> = metrics
        .certificates()
        .into_iter()
        .map(|(listener, source, expiry)| {
            json!({"listener": listener, "source": source, "expires_unix": expiry})
        })
        .collect();
    let mut totals = totals_json(&metrics.totals(None, None));
    totals["timers"] = json!(metrics.timers_live(None));
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_unix_ms": unix_ms(process.started),
        "uptime_s": now.duration_since(process.started).unwrap_or(Duration::ZERO).as_secs(),
        "config": process.config.display().to_string(),
        "last_reload_unix_ms": last_reload.map(unix_ms),
        "rss_bytes": rss_bytes(),
        "totals": totals,
        "timers": metrics.timers_live(None),
        "throttled_addresses": api.admission.throttled_now(),
        "workers": workers,
        "routes": routes,
        "cluster": cluster,
        "store": store,
        "certificates": certificates,
    })
}

/// The most connections one `/api/connections` answer lists (about 250 bytes each): a gateway with a million
/// connections is asked about a route, or for a first page, not for all of them at once.
pub const CONNECTIONS_LIMIT: usize = 10_000;

/// `/api/connections`: this node's connections of `route` (or of every route), by id, at most `limit`, and how
/// many there are.
pub fn connections(api: &AdminApi, route: Option<&str>, limit: usize) -> Value {
    let now = unix_ms(SystemTime::now());
    let (all, summaries) = api.hub.connections(route, limit);
    let listed: Vec<Value> = summaries
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id.to_string(),
                "route": c.route,
                "remote_address": c.remote_address,
                "user": c.user,
                "groups": c.groups,
                "age_s": now.saturating_sub(c.connected_at_ms) / 1000,
                "messages_in": c.traffic.messages_in,
                "bytes_in": c.traffic.bytes_in,
                "messages_out": c.traffic.messages_out,
                "bytes_out": c.traffic.bytes_out,
                "state": if c.open { "open" } else { "waiting" },
            })
        })
        .collect();
    json!({"total": all, "connections": listed})
}
