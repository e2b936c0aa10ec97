//! Cluster mode: several gateway nodes as one over NATS. The link ([`link`]) is one NATS client per process on a
//! thread of its own; the hub hands it publications for other nodes' members and learns from it who is where
//! ([`presence`]). What crosses is in [`wire`]; what arrives, in [`subscriptions`].

pub mod config;
mod link;
mod presence;
mod state;
mod subscriptions;
mod wire;

pub use config::ClusterConfig;
pub use link::{ClusterHandle, ClusterLink};
pub use presence::{Key as PresenceKey, Value as PresenceValue};
pub use state::LinkState;
pub use wire::Publication;
