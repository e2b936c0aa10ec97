//! The other nodes, as the hub sees them: a trait the cluster link implements, and the vocabulary both sides share.
//!
//! The hub sits below the cluster link in the layers: it never names the link's type. In cluster mode the gateway
//! hands the hub a [`Peers`] (`Hub::set_peers`); without one the hub serves this node alone. Every method returns
//! at once — a worker never waits on the network — so what the hub reads about other nodes is their presence as
//! they last announced it.

use crate::audience::Audience;
use crate::registry::ConnectionId;
use tokio_tungstenite::tungstenite::Message;

/// The link to the other nodes.
pub trait Peers: Send + Sync {
    /// This node now has (`present`) or no longer has members of `audience` on `route`.
    fn interest(&self, route: &str, audience: &Audience, present: bool);

    /// Sends a publication to the other nodes (for one connection: to its node); false when it was dropped (and
    /// counted): the broker is away or the queue is full.
    fn publish(
        &self,
        route: &str,
        audience: &Audience,
        exclude: &[ConnectionId],
        message: &Message,
    ) -> bool;

    /// A piece of this node's presence changed: the link announces its new value.
    fn changed(&self, key: PresenceKey);

    /// Whether a live node carries the connection-id tag `tag`.
    fn knows(&self, tag: u32) -> bool;

    /// The group's members on the other nodes, as they last announced.
    fn group_size(&self, route: &str, group: &str) -> usize;

    /// The user's connections on the other nodes, as they last announced.
    fn connections_of_user(&self, route: &str, uid: &str) -> Vec<ConnectionId>;
}

/// One piece of a node's presence.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PresenceKey {
    /// A group of a route: its member count on the node.
    Group { route: String, group: String },
    /// A user of a route: its connections on the node.
    User { route: String, uid: String },
}

/// A piece of a node's presence with its value on the node: a group always with its member count, a user always
/// with its connections. Zero members or no connections takes the piece out.
pub enum PresencePiece {
    Group {
        route: String,
        group: String,
        members: u32,
    },
    User {
        route: String,
        uid: String,
        ids: Vec<ConnectionId>,
    },
}

/// A publication another node sent: the route and audience, the connections it must not reach, and the message.
pub struct Publication {
    pub route: String,
    pub audience: Audience,
    pub exclude: Vec<ConnectionId>,
    pub message: Message,
}
