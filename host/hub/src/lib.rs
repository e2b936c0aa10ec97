//! # wssgate-hub: the state the workers share
//!
//! Each worker keeps a table of its live connections ([`registry`]) and an outgoing queue per connection
//! ([`outbound`]); the [`Hub`] holds groups, users and sessions for all workers and delivers between them, and
//! through [`peers::Peers`] to other nodes. [`admission`] caps who may connect, [`metrics`] counts what happened
//! (written out by [`exposition`]),
//! and [`sync`] is how shared state is locked. Below it is only the configuration.

pub mod admission;
mod audience;
pub mod exposition;
mod hub;
pub mod metrics;
pub mod outbound;
pub mod peers;
pub mod registry;
pub mod sync;
pub mod upstream_stats;

pub use hub::*;
