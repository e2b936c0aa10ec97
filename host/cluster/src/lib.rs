//! # wssgate-cluster: several gateway nodes as one over NATS
//!
//! The link ([`link`]) is one NATS client per process on a thread of its own; it plugs into the hub as its
//! `Peers`, takes the publications meant for other nodes' members and learns who is where ([`presence`]). What
//! crosses is in [`wire`], each message sealed ([`seal`]: authenticated with the cluster's secret, numbered and
//! timed against replays); what arrives, in [`subscriptions`]; the link's health, in [`state`].

mod link;
mod presence;
mod seal;
mod state;
mod subscriptions;
mod wire;

pub use link::ClusterLink;
pub use state::LinkState;
