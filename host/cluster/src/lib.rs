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

/// For the fuzz targets (`fuzz/`, crate `wssgate-fuzz`) only: the wire format's private readers — publications,
/// their reassembly from chunks, presence announcements and the envelope — which are what any NATS client on the
/// cluster's prefix can send a node. Hidden from the docs; the targets call the real code through it.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::presence::fuzzing::{Held, held, view};
    pub use crate::presence::{Announcer, Piece, RemoteView};
    pub use crate::seal::{Key, Opened, Replay, Sealer, WINDOW};
    pub use crate::wire::{Reassembly, ReassemblyBudget, decode, encode, frames};
}
