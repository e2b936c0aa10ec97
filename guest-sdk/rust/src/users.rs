//! User ids, like GatewayWorker's bindUid / sendToUid / isUidOnline: one user may have several connections (phone
//! and desktop), on any worker. Bind with [`Connection::bind_user`].
//!
//! ```no_run
//! use wssgate_sdk::{users, Connection};
//! # fn demo(conn: Connection) -> Result<(), wssgate_sdk::Refusal> {
//! conn.bind_user("alice")?;
//! if users::is_online("bob") {
//!     users::send("bob", "alice says hi");
//! }
//! # Ok(())
//! # }
//! ```

use crate::{Connection, Outgoing, host};

/// Sends `message` to every connection of user `uid`; returns how many.
pub fn send(uid: &str, message: impl Outgoing) -> u32 {
    host::with_host(|h| h.send_to_user(uid, message.payload()))
}

/// Whether user `uid` has a connection open on this route.
pub fn is_online(uid: &str) -> bool {
    host::with_host(|h| h.is_user_online(uid))
}

/// The connections of user `uid`.
pub fn connections(uid: &str) -> Vec<Connection> {
    host::with_host(|h| h.connections_of_user(uid))
        .into_iter()
        .map(Connection::new)
        .collect()
}
