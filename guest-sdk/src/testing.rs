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
//! Like the real host, the mock runs `on_close` after a plugin closes a connection, refuses sends to closed
//! connections, and forgets a closed connection's groups, user, session and owned timers. Groups, users,
//! broadcasts and sessions work as in the gateway (with one worker); timers run on a clock that only
//! [`MockHost::advance`] moves.

use crate::log::Level;
use crate::{
    CloseFrame, Connection, ConnectionInfo, Message, Plugin, Request, SendError, SessionError,
    Timer,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

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
    /// The request each open connection arrived with, for `Connection::info`.
    requests: HashMap<u64, Request>,
    /// Members of each group.
    groups: BTreeMap<String, BTreeSet<u64>>,
    /// The user each bound connection belongs to.
    users: BTreeMap<u64, String>,
    /// Each connection's session.
    sessions: HashMap<u64, BTreeMap<String, String>>,
    /// Running timers by id.
    timers: BTreeMap<u64, MockTimer>,
    /// The mock's clock, moved only by [`MockHost::advance`].
    now: Duration,
    /// The last timer id handed out.
    last_timer: u64,
}

/// A simulated timer.
struct MockTimer {
    due: Duration,
    period: Option<Duration>,
    owner: Option<u64>,
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

    pub(crate) fn join_group(&mut self, connection: u64, group: &str) {
        if self.open.contains(&connection) {
            self.groups
                .entry(group.to_owned())
                .or_default()
                .insert(connection);
        }
    }

    pub(crate) fn leave_group(&mut self, connection: u64, group: &str) {
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(&connection);
        }
    }

    pub(crate) fn group_members(&self, group: &str) -> Vec<u64> {
        self.groups
            .get(group)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn groups_of(&self, connection: u64) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, m)| m.contains(&connection))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Queues `message` for each of `targets`; returns how many took it.
    fn deliver(&mut self, message: Message, targets: Vec<u64>) -> u32 {
        targets
            .into_iter()
            .filter(|t| self.send(*t, message.clone()).is_ok())
            .count() as u32
    }

    pub(crate) fn publish(&mut self, group: &str, message: Message, exclude: &[u64]) -> u32 {
        let targets = self
            .group_members(group)
            .into_iter()
            .filter(|m| !exclude.contains(m))
            .collect();
        self.deliver(message, targets)
    }

    pub(crate) fn bind_user(&mut self, connection: u64, uid: &str) {
        if self.open.contains(&connection) {
            self.users.insert(connection, uid.to_owned());
        }
    }

    pub(crate) fn unbind_user(&mut self, connection: u64) {
        self.users.remove(&connection);
    }

    pub(crate) fn connections_of_user(&self, uid: &str) -> Vec<u64> {
        self.users
            .iter()
            .filter(|(_, u)| *u == uid)
            .map(|(c, _)| *c)
            .collect()
    }

    pub(crate) fn send_to_user(&mut self, uid: &str, message: Message) -> u32 {
        let targets = self.connections_of_user(uid);
        self.deliver(message, targets)
    }

    pub(crate) fn broadcast(&mut self, message: Message, exclude: &[u64]) -> u32 {
        let mut targets: Vec<u64> = self
            .open
            .iter()
            .copied()
            .filter(|c| !exclude.contains(c))
            .collect();
        targets.sort_unstable();
        self.deliver(message, targets)
    }

    pub(crate) fn session_set(
        &mut self,
        connection: u64,
        key: &str,
        value: &str,
    ) -> Result<(), SessionError> {
        if !self.open.contains(&connection) {
            return Err(SessionError::UnknownConnection);
        }
        let session = self.sessions.entry(connection).or_default();
        let others: usize = session
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if others + key.len() + value.len() > 64 * 1024 {
            return Err(SessionError::TooLarge);
        }
        session.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    pub(crate) fn session_get(&self, connection: u64, key: &str) -> Option<String> {
        self.sessions
            .get(&connection)
            .and_then(|s| s.get(key).cloned())
    }

    pub(crate) fn session_remove(&mut self, connection: u64, key: &str) {
        if let Some(session) = self.sessions.get_mut(&connection) {
            session.remove(key);
        }
    }

    pub(crate) fn set_timer(&mut self, delay_ms: u64, repeat: bool, owner: Option<u64>) -> u64 {
        self.last_timer += 1;
        let delay = Duration::from_millis(delay_ms);
        let period = repeat.then(|| delay.max(Duration::from_millis(1)));
        let owner = owner.filter(|o| self.open.contains(o));
        self.timers.insert(
            self.last_timer,
            MockTimer {
                due: self.now + delay,
                period,
                owner,
            },
        );
        self.last_timer
    }

    pub(crate) fn cancel_timer(&mut self, timer: u64) -> bool {
        self.timers.remove(&timer).is_some()
    }

    pub(crate) fn connection_info(&self, connection: u64) -> Option<ConnectionInfo> {
        let request = self.requests.get(&connection)?;
        Some(ConnectionInfo {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            remote_address: request.remote_address.clone(),
            subprotocol: request.subprotocol.clone(),
            connected_at_ms: 0,
        })
    }

    /// Everything a closed connection leaves behind: groups, user, session, owned timers.
    fn forget(&mut self, connection: u64) {
        for members in self.groups.values_mut() {
            members.remove(&connection);
        }
        self.groups.retain(|_, m| !m.is_empty());
        self.users.remove(&connection);
        self.sessions.remove(&connection);
        self.requests.remove(&connection);
        self.timers.retain(|_, t| t.owner != Some(connection));
    }

    /// The earliest timer due by `until`, taken off (or rescheduled, when it repeats).
    fn next_due(&mut self, until: Duration) -> Option<u64> {
        let (&id, timer) = self
            .timers
            .iter_mut()
            .filter(|(_, t)| t.due <= until)
            .min_by_key(|(_, t)| t.due)?;
        self.now = timer.due;
        match timer.period {
            Some(period) => timer.due += period,
            None => {
                self.timers.remove(&id);
            }
        }
        Some(id)
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
        {
            let mut state = self.state.borrow_mut();
            state.open.insert(conn.id());
            state.requests.insert(conn.id(), request.clone());
        }
        let verdict = self.run(plugin, |p| p.on_connect(conn, &request));
        if verdict.is_err() {
            let mut state = self.state.borrow_mut();
            state.open.remove(&conn.id());
            state.forget(conn.id());
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
            self.state.borrow_mut().forget(conn.id());
        }
    }

    /// Moves the mock's clock forward by `by`, firing every timer that comes due on the way, in order.
    pub fn advance<P: Plugin>(&self, plugin: &mut P, by: Duration) {
        let until = self.state.borrow().now + by;
        // Bounded: a repeating timer has a period of at least 1 ms.
        for _ in 0..1_000_000 {
            let due = self.state.borrow_mut().next_due(until);
            match due {
                Some(id) => self.run(plugin, |p| p.on_timer(Timer::new(id))),
                None => break,
            }
        }
        self.state.borrow_mut().now = until;
    }

    /// How many timers are running.
    pub fn running_timers(&self) -> usize {
        self.state.borrow().timers.len()
    }

    /// The members of `group`, by connection.
    pub fn group_members(&self, group: &str) -> Vec<Connection> {
        self.state
            .borrow()
            .group_members(group)
            .into_iter()
            .map(Connection::new)
            .collect()
    }

    /// A session value, as the plugin stored it.
    pub fn session(&self, conn: Connection, key: &str) -> Option<String> {
        self.state.borrow().session_get(conn.id(), key)
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
                self.state.borrow_mut().forget(id);
            }
        }
        CURRENT.with(|c| *c.borrow_mut() = previous);
        result
    }
}
