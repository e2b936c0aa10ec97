//! Cluster mode (work in progress, issue 12): several gateway nodes as one over NATS. So far: the `[cluster]`
//! config; the link — one NATS client per process, on a thread of its own, that connects (also when the broker
//! comes up after the gateway), reconnects forever, and reports its state to `/healthz` and `/metrics`; and
//! publications to groups, users and routes crossing nodes, each node subscribed only to the audiences it has
//! members of. Not yet: presence across nodes, send/close to another node's connection, messages past NATS'
//! `max_payload`, a delay before unsubscribing.

pub mod config;
mod link;
mod wire;

pub use config::ClusterConfig;
pub use link::{ClusterHandle, ClusterLink, LinkState};
pub use wire::Publication;
