//! Groups (rooms, channels, topics) and broadcasts, like GatewayWorker's joinGroup / sendToGroup / sendToAll.
//!
//! Groups belong to the route and span all of the gateway's workers: a publish reaches every member wherever it is
//! connected. Join and leave with [`Connection::join`] and [`Connection::leave`]; a closing connection leaves its
//! groups by itself. A join is refused (see [`crate::Refusal`]) for a group name longer than `max_name_bytes` or a
//! connection already in `max_groups_per_connection` groups.
//!
//! ```no_run
//! use wssgate_sdk::{groups, Connection};
//! # fn demo(conn: Connection) -> Result<(), wssgate_sdk::Refusal> {
//! conn.join("lobby")?;
//! let reached = groups::publish("lobby", "hello, lobby", &[conn]); // everyone but the sender
//! let everyone = wssgate_sdk::groups::broadcast("server restarting soon", &[]);
//! # let _ = (reached, everyone);
//! # Ok(())
//! # }
//! ```

use crate::{Connection, Outgoing, host};

fn ids(connections: &[Connection]) -> Vec<u64> {
    connections.iter().map(|c| c.id()).collect()
}

/// Sends `message` to every member of `group` except `exclude`; returns how many members it was queued for.
pub fn publish(group: &str, message: impl Outgoing, exclude: &[Connection]) -> u32 {
    host::with_host(|h| h.publish(group, message.payload(), &ids(exclude)))
}

/// How many connections are in `group`.
pub fn size(group: &str) -> u32 {
    host::with_host(|h| h.group_size(group))
}

/// Sends `message` to every connection of the route except `exclude`; returns how many.
pub fn broadcast(message: impl Outgoing, exclude: &[Connection]) -> u32 {
    host::with_host(|h| h.broadcast(message.payload(), &ids(exclude)))
}
