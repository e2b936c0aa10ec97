//! Who a message is for within its route: the hub's word for a publication's target, which deliveries between
//! workers and publications between nodes both carry.

use crate::registry::ConnectionId;

/// Who a delivery is for, within its route.
#[derive(Clone)]
pub enum Audience {
    Group(String),
    User(String),
    Route,
    /// One connection (the push API's `/api/send` and `/api/close`).
    Connection(ConnectionId),
}
