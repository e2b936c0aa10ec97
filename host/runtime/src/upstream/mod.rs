//! Outbound HTTP for plugins: the upstreams the operator names in `[[upstream]]` and grants to routes, reached
//! through per-worker keep-alive pools, with every request capped, timed out and owned.
//!
//! A plugin never names an address: it names an upstream its route was granted, and a path under the upstream's
//! URL. The call returns at once with an id; the request runs as a task on the worker, and its answer comes back as
//! an `on-http-response` event (see [`crate::owned`] for how it is cancelled with its owner or instance).

mod client;

pub mod requests;

pub(crate) use client::UpstreamClient;
pub use client::{InFlight, NoPlace, OutboundRequest, RequestRefusal};
pub use wssgate_config::upstream::UpstreamConfig;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use wssgate_hub::sync;

/// An upstream's answer, as handed to the plugin.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

/// Why a sent request got no response (`http-error` in the contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    Timeout,
    ConnectFailed(String),
    Tls(String),
    ResponseTooLarge,
    Protocol(String),
}

impl HttpError {
    /// The `outcome` label in /metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            HttpError::Timeout => "timeout",
            HttpError::ConnectFailed(_) => "connect_failed",
            HttpError::Tls(_) => "tls",
            HttpError::ResponseTooLarge => "response_too_large",
            HttpError::Protocol(_) => "protocol",
        }
    }
}

/// One worker's clients, one per configured upstream (so a route's grants decide which it may use, and the pools
/// and in-flight caps are per worker and upstream, shared by every route granted it, each route up to its share). The worker keeps one for its
/// whole life: a reload renews it in place, keeping the client (its pool and its in-flight count) of every upstream
/// whose settings did not change, and dropping the ones the config no longer names — for old connections too.
#[derive(Default)]
pub struct WorkerUpstreams {
    clients: RwLock<HashMap<String, Arc<UpstreamClient>>>,
}

impl WorkerUpstreams {
    /// Clients for `upstreams`, counting into `stats`; must be called on the worker's runtime.
    pub fn new(
        upstreams: &[Arc<UpstreamConfig>],
        stats: &Arc<wssgate_hub::upstream_stats::UpstreamStats>,
    ) -> Self {
        let renewed = WorkerUpstreams::default();
        renewed.renew(upstreams, stats);
        renewed
    }

    /// Takes a reloaded config's upstreams.
    pub fn renew(
        &self,
        upstreams: &[Arc<UpstreamConfig>],
        stats: &Arc<wssgate_hub::upstream_stats::UpstreamStats>,
    ) {
        let mut clients = sync::write(&self.clients);
        let renewed = upstreams
            .iter()
            .map(|u| {
                let kept = clients
                    .get(&u.name)
                    .filter(|c| c.config.same_as(u))
                    .cloned();
                let client =
                    kept.unwrap_or_else(|| Arc::new(UpstreamClient::new(u.clone(), stats.clone())));
                (u.name.clone(), client)
            })
            .collect();
        *clients = renewed;
    }

    pub fn get(&self, name: &str) -> Option<Arc<UpstreamClient>> {
        let clients = sync::read(&self.clients);
        clients.get(name).cloned()
    }
}
