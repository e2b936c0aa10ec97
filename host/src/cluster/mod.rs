//! Cluster mode (work in progress, issue 12): several gateway nodes as one over NATS. So far: the `[cluster]`
//! config, and the link — one NATS client per process, on a thread of its own, that connects (also when the broker
//! comes up after the gateway), reconnects forever, and reports its state to `/healthz` and `/metrics`. Nothing
//! crosses nodes yet.

pub mod config;
mod link;

pub use config::ClusterConfig;
pub use link::{ClusterLink, LinkState};
