//! Outbound HTTP for plugins: the upstreams the operator names in `[[upstream]]` and grants to routes, reached
//! through per-worker keep-alive pools, with every request capped, timed out and owned.
//!
//! A plugin never names an address: it names an upstream its route was granted, and a path under the upstream's
//! URL. The call returns at once with an id; the request runs as a task on the worker, and its answer comes back as
//! an `on-http-response` event (see [`crate::owned`] for how it is cancelled with its owner or instance).

mod client;
pub mod config;
pub mod requests;
pub mod stats;

pub use client::{InFlight, OutboundRequest, RequestRefusal, UpstreamClient};
pub use config::UpstreamConfig;

use std::collections::HashMap;
use std::sync::Arc;

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
/// and in-flight caps are per worker and upstream, shared by every route granted it).
#[derive(Default)]
pub struct WorkerUpstreams {
    clients: HashMap<String, Arc<UpstreamClient>>,
}

impl WorkerUpstreams {
    /// Clients for `upstreams`, counting into `stats`; must be called on the worker's runtime.
    pub fn new(upstreams: &[Arc<UpstreamConfig>], stats: &Arc<stats::UpstreamStats>) -> Self {
        WorkerUpstreams {
            clients: upstreams
                .iter()
                .map(|u| {
                    let client = UpstreamClient::new(u.clone(), stats.clone());
                    (u.name.clone(), Arc::new(client))
                })
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<UpstreamClient>> {
        self.clients.get(name)
    }
}
