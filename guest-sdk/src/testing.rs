//! A mock of the gateway for native unit tests of a plugin: no wasm, no sockets.
//!
//! ```
//! use wssgate_sdk::testing::MockHost;
//! use wssgate_sdk::{Connection, Message, Plugin};
//!
//! #[derive(Default)]
//! struct Shout;
//! impl Plugin for Shout {
//!     fn on_message(&mut self, conn: Connection, message: Message) {
//!         let _ = conn.send(message.as_text().unwrap_or("").to_uppercase());
//!     }
//! }
//!
//! let host = MockHost::new();
//! let mut plugin = Shout;
//! let conn = host.connect(&mut plugin, "/shout").unwrap();
//! host.message(&mut plugin, conn, "hi");
//! assert_eq!(host.take_sent(conn), vec![Message::from("HI")]);
//! ```
//!
//! Like the real host, the mock runs `on_close` after a plugin closes a connection, and refuses sends to closed
//! connections.

use crate::log::Level;
use crate::{CloseFrame, Connection, Message, Plugin, Request, SendError};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

/// What the mock host records while a plugin runs.
#[derive(Default)]
pub(crate) struct MockState {
    /// The route settings the plugin reads.
    pub(crate) settings: BTreeMap<String, String>,
    /// Connections that are open, so that sends to others fail as they would in the gateway.
    open: HashSet<u64>,
    /// Messages the plugin sent, per connection, in order.
    sent: HashMap<u64, Vec<Message>>,
    /// Close frames the plugin sent, per connection.
    closed: HashMap<u64, CloseFrame>,
    /// Closes requested during the current callback, for which on_close is still due.
    pending_close: Vec<(u64, CloseFrame)>,
    /// Every log line, in order.
    logs: Vec<(Level, String)>,
}

impl MockState {
    pub(crate) fn send(&mut self, connection: u64, message: Message) -> Result<(), SendError> {
        if !self.open.contains(&connection) {
            return Err(SendError::Closed);
        }
        self.sent.entry(connection).or_default().push(message);
        Ok(())
    }

    pub(crate) fn close(&mut self, connection: u64, code: u16, reason: &str) {
        if self.open.remove(&connection) {
            let frame = CloseFrame::new(code, reason);
            self.closed.insert(connection, frame.clone());
            self.pending_close.push((connection, frame));
        }
    }

    pub(crate) fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_owned()));
    }
}

thread_local! {
    /// The mock that host calls on this thread reach; set only while a [`MockHost`] runs a callback.
    static CURRENT: RefCell<Option<Rc<RefCell<MockState>>>> = const { RefCell::new(None) };
}

pub(crate) fn with_mock<R>(f: impl FnOnce(&mut MockState) -> R) -> R {
    let state = CURRENT.with(|c| c.borrow().clone()).expect(
        "a wssgate host call was made outside a MockHost callback: drive the plugin through wssgate_sdk::testing::MockHost",
    );
    let mut state = state.borrow_mut();
    f(&mut state)
}

/// A simulated gateway. Drive a plugin through it and inspect what the plugin did.
#[derive(Default)]
pub struct MockHost {
    state: Rc<RefCell<MockState>>,
    /// The id the next connection gets.
    next_id: RefCell<u64>,
}

impl MockHost {
    pub fn new() -> Self {
        MockHost::default()
    }

    /// Adds a route setting the plugin can read with [`crate::settings::get`].
    pub fn with_setting(self, key: &str, value: &str) -> Self {
        self.state
            .borrow_mut()
            .settings
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Opens a connection to `path` and runs `on_connect`; `Err` is the plugin's rejection.
    pub fn connect<P: Plugin>(&self, plugin: &mut P, path: &str) -> Result<Connection, CloseFrame> {
        self.connect_with(plugin, Request::new(path))
    }

    /// Opens a connection with a full request and runs `on_connect`.
    pub fn connect_with<P: Plugin>(
        &self,
        plugin: &mut P,
        request: Request,
    ) -> Result<Connection, CloseFrame> {
        let conn = {
            let mut next = self.next_id.borrow_mut();
            *next += 1;
            Connection::new(*next)
        };
        self.state.borrow_mut().open.insert(conn.id());
        let verdict = self.run(plugin, |p| p.on_connect(conn, &request));
        if verdict.is_err() {
            self.state.borrow_mut().open.remove(&conn.id());
        }
        verdict.map(|()| conn)
    }

    /// Delivers a message from the client.
    pub fn message<P: Plugin>(
        &self,
        plugin: &mut P,
        conn: Connection,
        message: impl Into<Message>,
    ) {
        let message = message.into();
        self.run(plugin, |p| p.on_message(conn, message));
    }

    /// The client closes the connection with `code` and `reason`: runs `on_close`.
    pub fn client_close<P: Plugin>(
        &self,
        plugin: &mut P,
        conn: Connection,
        code: u16,
        reason: &str,
    ) {
        if self.state.borrow_mut().open.remove(&conn.id()) {
            self.run(plugin, |p| p.on_close(conn, CloseFrame::new(code, reason)));
        }
    }

    /// Takes the messages the plugin sent to `conn` so far.
    pub fn take_sent(&self, conn: Connection) -> Vec<Message> {
        self.state
            .borrow_mut()
            .sent
            .remove(&conn.id())
            .unwrap_or_default()
    }

    /// The close frame the plugin sent to `conn`, if it closed it.
    pub fn closed(&self, conn: Connection) -> Option<CloseFrame> {
        self.state.borrow().closed.get(&conn.id()).cloned()
    }

    /// Every line the plugin logged.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }

    /// Runs one callback with this mock installed, then the on_close calls the host would make for connections the
    /// plugin closed during it.
    fn run<P: Plugin, R>(&self, plugin: &mut P, callback: impl FnOnce(&mut P) -> R) -> R {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.state.clone()));
        let result = callback(plugin);
        loop {
            let pending = std::mem::take(&mut self.state.borrow_mut().pending_close);
            if pending.is_empty() {
                break;
            }
            for (id, frame) in pending {
                plugin.on_close(Connection::new(id), frame);
            }
        }
        CURRENT.with(|c| *c.borrow_mut() = previous);
        result
    }
}
