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
//! broadcasts and sessions work as in the gateway (with one worker and one route); timers run on a clock that only
//! [`MockHost::advance`] moves.
//!
//! It refuses calls as the gateway does, with the same [`Refusal`]s and the gateway's default caps, which its
//! `with_max_*` builders change: names (groups, user ids, session keys) longer than 256 bytes
//! ([`MockHost::with_max_name_bytes`]), a 65th group for one connection
//! ([`MockHost::with_max_groups_per_connection`]), a 1025th running timer ([`MockHost::with_max_timers`]), and
//! sessions past 64 KiB ([`MockHost::with_max_session_bytes`]). Joins, bindings, session values and owned timers
//! of a connection that is not open are refused with [`Refusal::UnknownConnection`]. Log lines are never rate
//! limited.
//!
//! ```
//! use wssgate_sdk::testing::MockHost;
//! use wssgate_sdk::{Connection, Message, Plugin, Refusal};
//!
//! #[derive(Default)]
//! struct Rooms;
//! impl Plugin for Rooms {
//!     fn on_message(&mut self, conn: Connection, message: Message) {
//!         let answer = match conn.join(message.as_text().unwrap_or("")) {
//!             Ok(()) => "joined".to_owned(),
//!             Err(refusal) => refusal.to_string(),
//!         };
//!         let _ = conn.send(answer);
//!     }
//! }
//!
//! let host = MockHost::new().with_max_groups_per_connection(1);
//! let mut plugin = Rooms;
//! let conn = host.connect(&mut plugin, "/rooms").unwrap();
//! host.message(&mut plugin, conn, "a");
//! host.message(&mut plugin, conn, "b");
//! assert_eq!(
//!     host.take_sent(conn),
//!     vec![Message::from("joined"), Message::from(Refusal::TooManyGroups.to_string())]
//! );
//! ```

use crate::log::Level;
use crate::{
    CloseFrame, Connection, ConnectionInfo, Message, Plugin, Refusal, Request, SendError, Timer,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

/// The caps the gateway enforces, with its defaults.
struct Limits {
    /// `max_name_bytes`: group names, user ids and session keys.
    name_bytes: usize,
    /// `max_groups_per_connection`.
    groups_per_connection: usize,
    /// `max_timers_per_instance`: running timers.
    timers: usize,
    /// A session's keys and values together.
    session_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            name_bytes: 256,
            groups_per_connection: 64,
            timers: 1024,
            session_bytes: 64 * 1024,
        }
    }
}

/// What the mock host records while a plugin runs.
#[derive(Default)]
pub(crate) struct MockState {
    /// The caps calls are refused past.
    limits: Limits,
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

    pub(crate) fn log(&mut self, level: Level, message: &str) -> Result<(), Refusal> {
        self.logs.push((level, message.to_owned()));
        Ok(())
    }

    /// Refuses a call on a connection that is not open.
    fn check_open(&self, connection: u64) -> Result<(), Refusal> {
        if self.open.contains(&connection) {
            Ok(())
        } else {
            Err(Refusal::UnknownConnection)
        }
    }

    /// Refuses a group name, user id or session key past `max_name_bytes`.
    fn check_name(&self, name: &str) -> Result<(), Refusal> {
        if name.len() > self.limits.name_bytes {
            Err(Refusal::NameTooLong)
        } else {
            Ok(())
        }
    }

    pub(crate) fn join_group(&mut self, connection: u64, group: &str) -> Result<(), Refusal> {
        self.check_open(connection)?;
        self.check_name(group)?;
        if self
            .groups
            .get(group)
            .is_some_and(|m| m.contains(&connection))
        {
            return Ok(());
        }
        let joined = self
            .groups
            .values()
            .filter(|m| m.contains(&connection))
            .count();
        if joined >= self.limits.groups_per_connection {
            return Err(Refusal::TooManyGroups);
        }
        self.groups
            .entry(group.to_owned())
            .or_default()
            .insert(connection);
        Ok(())
    }

    pub(crate) fn leave_group(&mut self, connection: u64, group: &str) {
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(&connection);
            if members.is_empty() {
                self.groups.remove(group);
            }
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

    pub(crate) fn bind_user(&mut self, connection: u64, uid: &str) -> Result<(), Refusal> {
        self.check_open(connection)?;
        self.check_name(uid)?;
        self.users.insert(connection, uid.to_owned());
        Ok(())
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
    ) -> Result<(), Refusal> {
        self.check_open(connection)?;
        self.check_name(key)?;
        let session = self.sessions.entry(connection).or_default();
        let others: usize = session
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if others + key.len() + value.len() > self.limits.session_bytes {
            return Err(Refusal::TooLarge);
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

    pub(crate) fn set_timer(
        &mut self,
        delay_ms: u64,
        repeat: bool,
        owner: Option<u64>,
    ) -> Result<u64, Refusal> {
        if let Some(owner) = owner {
            self.check_open(owner)?;
        }
        if self.timers.len() >= self.limits.timers {
            return Err(Refusal::TooManyTimers);
        }
        self.last_timer += 1;
        let delay = Duration::from_millis(delay_ms);
        let period = repeat.then(|| delay.max(Duration::from_millis(1)));
        self.timers.insert(
            self.last_timer,
            MockTimer {
                due: self.now + delay,
                period,
                owner,
            },
        );
        Ok(self.last_timer)
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

    /// Sets the longest group name, user id or session key the mock accepts (`max_name_bytes`, default 256 bytes);
    /// longer ones are refused with [`Refusal::NameTooLong`].
    pub fn with_max_name_bytes(self, bytes: usize) -> Self {
        self.state.borrow_mut().limits.name_bytes = bytes;
        self
    }

    /// Sets how many groups one connection may be in (`max_groups_per_connection`, default 64); joining one more
    /// is refused with [`Refusal::TooManyGroups`].
    pub fn with_max_groups_per_connection(self, groups: usize) -> Self {
        self.state.borrow_mut().limits.groups_per_connection = groups;
        self
    }

    /// Sets how many timers may run at once (`max_timers_per_instance`, default 1024); starting one more is
    /// refused with [`Refusal::TooManyTimers`].
    pub fn with_max_timers(self, timers: usize) -> Self {
        self.state.borrow_mut().limits.timers = timers;
        self
    }

    /// Sets how many bytes of keys and values one connection's session may hold (default 64 KiB, the gateway's
    /// fixed limit); a value past it is refused with [`Refusal::TooLarge`].
    pub fn with_max_session_bytes(self, bytes: usize) -> Self {
        self.state.borrow_mut().limits.session_bytes = bytes;
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

    /// The groups `conn` is in, sorted.
    pub fn groups_of(&self, conn: Connection) -> Vec<String> {
        self.state.borrow().groups_of(conn.id())
    }

    /// The user `conn` is bound to, if any.
    pub fn user_of(&self, conn: Connection) -> Option<String> {
        self.state.borrow().users.get(&conn.id()).cloned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{log, timers};

    /// A plugin that does nothing by itself: the tests make its host calls inside [`MockHost::run`].
    struct Quiet;
    impl Plugin for Quiet {}

    /// Makes host calls as a plugin callback would.
    fn call<R>(host: &MockHost, f: impl FnOnce() -> R) -> R {
        host.run(&mut Quiet, |_| f())
    }

    fn open(host: &MockHost) -> Connection {
        host.connect(&mut Quiet, "/t").unwrap()
    }

    fn closed(host: &MockHost) -> Connection {
        let conn = open(host);
        host.client_close(&mut Quiet, conn, 1000, "bye");
        conn
    }

    #[test]
    fn calls_on_a_closed_or_unknown_connection_are_refused_and_change_nothing() {
        let host = MockHost::new();
        for conn in [closed(&host), Connection::new(999)] {
            assert_eq!(
                call(&host, || conn.join("g")),
                Err(Refusal::UnknownConnection)
            );
            assert_eq!(
                call(&host, || conn.bind_user("ann")),
                Err(Refusal::UnknownConnection)
            );
            assert_eq!(
                call(&host, || conn.session_set("k", "v")),
                Err(Refusal::UnknownConnection)
            );
            assert_eq!(
                call(&host, || timers::after(Duration::from_secs(1), Some(conn))),
                Err(Refusal::UnknownConnection)
            );
            assert_eq!(
                call(&host, || timers::every(Duration::from_secs(1), Some(conn))),
                Err(Refusal::UnknownConnection)
            );
            assert!(host.groups_of(conn).is_empty());
            assert_eq!(host.user_of(conn), None);
            assert_eq!(host.session(conn, "k"), None);
        }
        assert!(host.group_members("g").is_empty());
        assert_eq!(host.running_timers(), 0, "a refused timer is not started");
    }

    #[test]
    fn names_past_max_name_bytes_are_refused() {
        let host = MockHost::new();
        let conn = open(&host);
        let longest = "n".repeat(256);
        let too_long = "n".repeat(257);
        assert_eq!(call(&host, || conn.join(&longest)), Ok(()));
        assert_eq!(
            call(&host, || conn.join(&too_long)),
            Err(Refusal::NameTooLong)
        );
        assert_eq!(call(&host, || conn.bind_user(&longest)), Ok(()));
        assert_eq!(
            call(&host, || conn.bind_user(&too_long)),
            Err(Refusal::NameTooLong)
        );
        assert_eq!(host.user_of(conn), Some(longest.clone()));
        assert_eq!(call(&host, || conn.session_set(&longest, "v")), Ok(()));
        assert_eq!(
            call(&host, || conn.session_set(&too_long, "v")),
            Err(Refusal::NameTooLong)
        );
        // Only keys are names: a long value is fine.
        assert_eq!(call(&host, || conn.session_set("k", &too_long)), Ok(()));
        assert_eq!(host.groups_of(conn), vec![longest]);
        assert_eq!(host.session(conn, &too_long), None);
    }

    #[test]
    fn max_name_bytes_is_configurable() {
        let host = MockHost::new().with_max_name_bytes(4);
        let conn = open(&host);
        assert_eq!(call(&host, || conn.join("abcd")), Ok(()));
        assert_eq!(
            call(&host, || conn.join("abcde")),
            Err(Refusal::NameTooLong)
        );
        assert_eq!(
            call(&host, || conn.bind_user("abcde")),
            Err(Refusal::NameTooLong)
        );
        assert_eq!(
            call(&host, || conn.session_set("abcde", "")),
            Err(Refusal::NameTooLong)
        );
    }

    #[test]
    fn one_group_past_max_groups_per_connection_is_refused() {
        let host = MockHost::new();
        let conn = open(&host);
        let other = open(&host);
        for g in 0..64 {
            assert_eq!(call(&host, || conn.join(&format!("g{g}"))), Ok(()));
        }
        assert_eq!(
            call(&host, || conn.join("one-more")),
            Err(Refusal::TooManyGroups)
        );
        assert_eq!(
            call(&host, || conn.join("g7")),
            Ok(()),
            "re-joining a group is fine"
        );
        assert_eq!(
            call(&host, || other.join("one-more")),
            Ok(()),
            "the cap is per connection"
        );
        call(&host, || conn.leave("g7"));
        assert_eq!(call(&host, || conn.join("one-more")), Ok(()));
        assert_eq!(host.groups_of(conn).len(), 64);
    }

    #[test]
    fn max_groups_per_connection_is_configurable() {
        let host = MockHost::new().with_max_groups_per_connection(2);
        let conn = open(&host);
        assert_eq!(call(&host, || conn.join("a")), Ok(()));
        assert_eq!(call(&host, || conn.join("b")), Ok(()));
        assert_eq!(call(&host, || conn.join("c")), Err(Refusal::TooManyGroups));
        assert_eq!(call(&host, || conn.join("b")), Ok(()));
        assert_eq!(host.groups_of(conn), vec!["a".to_owned(), "b".to_owned()]);
        assert!(host.group_members("c").is_empty());
    }

    #[test]
    fn one_timer_past_max_timers_is_refused_until_one_finishes_or_is_cancelled() {
        let host = MockHost::new();
        let conn = open(&host);
        let mut running = Vec::new();
        for _ in 0..1023 {
            running.push(call(&host, || timers::every(Duration::from_secs(60), None)).unwrap());
        }
        let once = call(&host, || {
            timers::after(Duration::from_millis(10), Some(conn))
        })
        .unwrap();
        assert_eq!(
            call(&host, || timers::after(Duration::from_secs(1), None)),
            Err(Refusal::TooManyTimers)
        );
        assert_eq!(
            call(&host, || timers::every(Duration::from_secs(1), Some(conn))),
            Err(Refusal::TooManyTimers)
        );
        // A finished one-shot timer no longer counts...
        host.advance(&mut Quiet, Duration::from_millis(10));
        assert!(!call(&host, || once.cancel()));
        let again = call(&host, || timers::after(Duration::from_secs(1), None)).unwrap();
        assert_eq!(
            call(&host, || timers::after(Duration::from_secs(1), None)),
            Err(Refusal::TooManyTimers)
        );
        // ...nor does a cancelled one.
        assert!(call(&host, || running[0].cancel()));
        assert!(call(&host, || timers::every(Duration::from_secs(1), None)).is_ok());
        assert_eq!(host.running_timers(), 1024);
        let _ = again;
    }

    #[test]
    fn max_timers_is_configurable_and_timers_of_a_closed_owner_no_longer_count() {
        let host = MockHost::new().with_max_timers(2);
        let conn = open(&host);
        call(&host, || timers::every(Duration::from_secs(1), Some(conn))).unwrap();
        call(&host, || timers::every(Duration::from_secs(1), None)).unwrap();
        assert_eq!(
            call(&host, || timers::after(Duration::from_secs(1), None)),
            Err(Refusal::TooManyTimers)
        );
        host.client_close(&mut Quiet, conn, 1000, "bye");
        assert_eq!(host.running_timers(), 1);
        assert!(call(&host, || timers::after(Duration::from_secs(1), None)).is_ok());
    }

    #[test]
    fn a_session_past_its_limit_is_refused_and_keeps_the_old_value() {
        let host = MockHost::new();
        let conn = open(&host);
        // "k" + value = 64 KiB exactly.
        let fits = "v".repeat(64 * 1024 - 1);
        assert_eq!(call(&host, || conn.session_set("k", &fits)), Ok(()));
        assert_eq!(
            call(&host, || conn.session_set("k2", "x")),
            Err(Refusal::TooLarge)
        );
        assert_eq!(
            call(&host, || conn.session_set("k", &format!("{fits}v"))),
            Err(Refusal::TooLarge)
        );
        assert_eq!(host.session(conn, "k"), Some(fits));
        assert_eq!(host.session(conn, "k2"), None);
        // Replacing a value frees what it held.
        assert_eq!(call(&host, || conn.session_set("k", "small")), Ok(()));
        assert_eq!(call(&host, || conn.session_set("k2", "x")), Ok(()));
    }

    #[test]
    fn max_session_bytes_is_configurable() {
        let host = MockHost::new().with_max_session_bytes(8);
        let conn = open(&host);
        assert_eq!(call(&host, || conn.session_set("key", "12345")), Ok(()));
        assert_eq!(
            call(&host, || conn.session_set("key", "123456")),
            Err(Refusal::TooLarge)
        );
    }

    #[test]
    fn log_lines_are_never_rate_limited_by_the_mock() {
        let host = MockHost::new();
        for n in 0..500 {
            assert_eq!(
                call(&host, || log::try_log(log::Level::Info, &format!("{n}"))),
                Ok(())
            );
        }
        call(&host, || log::warn("last"));
        let logs = host.logs();
        assert_eq!(logs.len(), 501);
        assert_eq!(logs[500], (log::Level::Warn, "last".to_owned()));
    }

    #[test]
    fn refusals_say_what_went_wrong() {
        let all = [
            Refusal::UnknownConnection,
            Refusal::NameTooLong,
            Refusal::TooManyGroups,
            Refusal::TooManyTimers,
            Refusal::TooLarge,
            Refusal::RateLimited,
        ];
        let texts: BTreeSet<String> = all.iter().map(Refusal::to_string).collect();
        assert_eq!(texts.len(), all.len(), "each refusal reads differently");
        let error: Box<dyn std::error::Error> = Box::new(Refusal::TooManyGroups);
        assert_eq!(error.to_string(), "connection is in too many groups");
    }
}
