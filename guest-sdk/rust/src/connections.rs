//! The per-connection state the SDK keeps for a plugin: created from what `on_connect` returned, handed to each
//! event of the connection, dropped after its `on_close`. A plugin cannot leak an entry by forgetting a close, and a
//! replacement instance rebuilds the table through the same `on_connect` (replayed with `restored = true`).

use crate::Connection;
use std::collections::BTreeMap;

/// Every connection's state, for the events that are not about one connection (timers).
pub struct Connections<S> {
    states: BTreeMap<u64, S>,
}

impl<S> Default for Connections<S> {
    fn default() -> Self {
        Connections {
            states: BTreeMap::new(),
        }
    }
}

impl<S> Connections<S> {
    /// The state of `conn`, if it is one of this instance's connections (open, or waiting for its accept).
    pub fn get(&self, conn: Connection) -> Option<&S> {
        self.states.get(&conn.id())
    }

    pub fn get_mut(&mut self, conn: Connection) -> Option<&mut S> {
        self.states.get_mut(&conn.id())
    }

    /// Every connection with its state, in the order they connected.
    pub fn iter(&self) -> impl Iterator<Item = (Connection, &S)> {
        self.states.iter().map(|(id, s)| (Connection::new(*id), s))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Connection, &mut S)> {
        self.states
            .iter_mut()
            .map(|(id, s)| (Connection::new(*id), s))
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub(crate) fn insert(&mut self, conn: u64, state: S) {
        self.states.insert(conn, state);
    }

    pub(crate) fn remove(&mut self, conn: u64) -> Option<S> {
        self.states.remove(&conn)
    }

    pub(crate) fn get_mut_by_id(&mut self, conn: u64) -> Option<&mut S> {
        self.states.get_mut(&conn)
    }
}
