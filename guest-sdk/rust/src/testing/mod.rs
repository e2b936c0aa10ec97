//! A mock of the gateway for native unit tests of a plugin: no wasm, no sockets.
//!
//! ```
//! use wssgate_sdk::testing::MockHost;
//! use wssgate_sdk::{Connection, Message, Plugin};
//!
//! #[derive(Default)]
//! struct Shout;
//! impl Plugin for Shout {
//!     type State = ();
//!     fn on_message(&mut self, conn: Connection, _: &mut (), message: Message) {
//!         let _ = conn.send(message.as_text().unwrap_or("").to_uppercase());
//!     }
//! }
//! wssgate_sdk::export_plugin!(Shout);
//!
//! let host = MockHost::<Shout>::new();
//! let conn = host.connect("/shout").unwrap();
//! host.message(conn, "hi");
//! assert_eq!(host.take_sent(conn), vec![Message::from("HI")]);
//! ```
//!
//! The mock runs the plugin through the same code as the gateway's glue (the SDK's runtime: `init`, per-connection
//! state, the optional timer events) and answers its host calls through the same trait as the wasm imports, with
//! the gateway's rules:
//!
//! - `init` runs before the first event ([`MockHost::init`] runs it explicitly and returns its refusal);
//! - `on_connect` may accept, reject or defer; a deferred connection waits ([`Status::Waiting`]) until the plugin
//!   calls `accept` or `reject`, or until the accept timeout (10 s, [`MockHost::with_accept_timeout`]) answers 504
//!   as the mock's clock passes it; it ends with `on_close` (code 1006) when it never opens;
//! - `on_close` follows a close the plugin asked for, with the close code made sendable (1008 for 1005, 1006, 1015
//!   or anything outside 1000–4999) and the reason cut to 123 bytes; sends to closed connections fail;
//! - a connection's outbound queue holds what the test has not taken yet: a send past 1 MiB
//!   ([`MockHost::with_max_outbound_bytes`]) fails with `QueueFull` and closes the connection with 1008;
//! - [`MockHost::restart`] replaces the instance as the gateway does after a trap: a fresh plugin value, `init`,
//!   `on_connect` replayed with `restored = true` for every connection, and the old instance's timers and requests
//!   gone (cancelled, no event);
//! - a plugin that starts timers without exporting their events is refused (the test panics with the gateway's
//!   load error);
//! - groups, users, broadcasts and sessions work as in the gateway (one worker, one route); timers run on a clock
//!   that only [`MockHost::advance`] moves;
//! - outbound HTTP requests wait until the test answers them ([`MockHost::respond`], [`MockHost::fail`]) and are
//!   refused as the gateway refuses them: an upstream the route does not grant ([`MockHost::with_upstream`]
//!   grants one), a 1025th request in flight, a body over 1 MiB, a bad method, path or header, an unknown owner,
//!   a call from `init`; a request owned by a connection is cancelled when it closes;
//! - history and storage (contract 1.2) are kept in memory for the route, with the contract's rules, once a test
//!   gives the route its tables ([`MockHost::with_history`], [`MockHost::with_storage`]; without, calls are refused
//!   with `NotConfigured`): the store answers each request at once, and its event follows when the current event
//!   returns — after the `on_close` calls it caused — in the order the requests were made. A request owned by a
//!   connection loses its event when that connection closes first (the write is kept), and
//!   [`MockHost::restart`] drops every event still due. Retention and time to live follow the mock's clock,
//!   which starts at 0 ms; [`MockHost::fail_store`] makes the store fail (`Unavailable`), and
//!   [`MockHost::reset_history`] loses the history as a store that lost its data.
//!
//! It refuses calls as the gateway does, with the same [`crate::Refusal`]s and the gateway's default caps, which its
//! `with_max_*` builders change: names (groups, user ids, session keys) longer than 256 bytes
//! ([`MockHost::with_max_name_bytes`]), a 65th group for one connection
//! ([`MockHost::with_max_groups_per_connection`]), a 1025th running timer ([`MockHost::with_max_timers`]),
//! sessions past 64 KiB ([`MockHost::with_max_session_bytes`]) and a 1025th history or storage request waiting
//! ([`MockHost::with_max_storage_requests`]); the history and storage caps are the fields of [`HistoryConfig`] and
//! [`StorageConfig`]. Log lines are never rate limited.
//!
//! ```
//! use wssgate_sdk::testing::MockHost;
//! use wssgate_sdk::{Connection, Message, Plugin, Refusal};
//!
//! #[derive(Default)]
//! struct Rooms;
//! impl Plugin for Rooms {
//!     type State = ();
//!     fn on_message(&mut self, conn: Connection, _: &mut (), message: Message) {
//!         let answer = match conn.join(message.as_text().unwrap_or("")) {
//!             Ok(()) => "joined".to_owned(),
//!             Err(refusal) => refusal.to_string(),
//!         };
//!         let _ = conn.send(answer);
//!     }
//! }
//! wssgate_sdk::export_plugin!(Rooms);
//!
//! let host = MockHost::<Rooms>::new().with_max_groups_per_connection(1);
//! let conn = host.connect("/rooms").unwrap();
//! host.message(conn, "a");
//! host.message(conn, "b");
//! assert_eq!(
//!     host.take_sent(conn),
//!     vec![Message::from("joined"), Message::from(Refusal::TooManyGroups.to_string())]
//! );
//! ```

mod history;
mod http;
mod scenario;
mod state;
mod storage;

pub use history::HistoryConfig;
pub use scenario::{Expected, SCENARIO_PATH, Scenario, Step};
pub use state::Status;
pub use storage::StorageConfig;

use crate::log::Level;
use crate::runtime::{Answer, Exported, Runtime};
use crate::{CloseFrame, Connection, Message, Rejection, Request, Settings, StorageRequest, Timer};
use state::{MockState, StoreAnswer};
use std::cell::{Cell, Ref, RefCell};
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    /// The mock that host calls on this thread reach; set only while a [`MockHost`] runs a callback.
    static CURRENT: RefCell<Option<Rc<RefCell<MockState>>>> = const { RefCell::new(None) };
}

pub(crate) fn with_mock<R>(f: impl FnOnce(&mut MockState) -> R) -> R {
    try_with_mock(f).expect(
        "a wssgate host call was made outside a MockHost callback: drive the plugin through wssgate_sdk::testing::MockHost",
    )
}

pub(crate) fn try_with_mock<R>(f: impl FnOnce(&mut MockState) -> R) -> Option<R> {
    let state = CURRENT.with(|c| c.borrow().clone())?;
    let mut state = state.borrow_mut();
    Some(f(&mut state))
}

/// How many history and storage events one step of a test delivers at most, answers to answers included.
const MAX_CHAINED_ANSWERS: usize = 100_000;

/// A rejection as the gateway sends it: an HTTP error status (else 500) and at most 1 KiB of body.
fn gateway_rejection(status: u16, body: &str) -> Rejection {
    let mut end = body.len().min(1024);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    Rejection {
        status: if (400..=599).contains(&status) {
            status
        } else {
            500
        },
        body: body[..end].to_owned(),
    }
}

/// How an upgrade was answered by the time [`MockHost::connect`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// Open: the client got its 101.
    Accepted(Connection),
    /// Refused with an HTTP error.
    Rejected(Rejection),
    /// `on_connect` deferred: the client waits (see [`MockHost::status`]).
    Deferred(Connection),
}

impl Upgrade {
    /// The connection, which must have been accepted.
    #[track_caller]
    pub fn unwrap(self) -> Connection {
        match self {
            Upgrade::Accepted(conn) => conn,
            other => panic!("the upgrade was not accepted: {other:?}"),
        }
    }

    /// The connection, which must have been deferred.
    #[track_caller]
    pub fn deferred(self) -> Connection {
        match self {
            Upgrade::Deferred(conn) => conn,
            other => panic!("the upgrade was not deferred: {other:?}"),
        }
    }

    /// The rejection, which there must have been.
    #[track_caller]
    pub fn rejected(self) -> Rejection {
        match self {
            Upgrade::Rejected(rejection) => rejection,
            other => panic!("the upgrade was not rejected: {other:?}"),
        }
    }
}

/// A simulated gateway running one instance of plugin `P`. Drive the plugin through it and inspect what it did.
pub struct MockHost<P: Exported> {
    state: Rc<RefCell<MockState>>,
    runtime: RefCell<Runtime<P>>,
    /// The id the next connection gets.
    next_id: Cell<u64>,
    /// Whether the instance's `init` ran (and accepted its settings).
    started: Cell<bool>,
}

impl<P: Exported> Default for MockHost<P> {
    fn default() -> Self {
        MockHost::with_plugin(P::default())
    }
}

impl<P: Exported> MockHost<P> {
    /// A mock running `P::default()`, as the gateway creates it.
    pub fn new() -> Self {
        MockHost::default()
    }

    /// A mock running `plugin`.
    pub fn with_plugin(plugin: P) -> Self {
        let state = MockState {
            timer_events: P::TIMER_EVENTS,
            http_events: P::HTTP_EVENTS,
            history_events: P::HISTORY_EVENTS,
            storage_events: P::STORAGE_EVENTS,
            ..MockState::default()
        };
        crate::log::install_bridge();
        MockHost {
            state: Rc::new(RefCell::new(state)),
            runtime: RefCell::new(Runtime::new(plugin)),
            next_id: Cell::new(0),
            started: Cell::new(false),
        }
    }

    /// Adds a route setting: `init` receives it, and the plugin can read it with [`crate::settings::get`].
    pub fn with_setting(self, key: &str, value: &str) -> Self {
        self.state
            .borrow_mut()
            .settings
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the longest group name, user id or session key the mock accepts (`max_name_bytes`, default 256 bytes);
    /// longer ones are refused with [`crate::Refusal::NameTooLong`].
    pub fn with_max_name_bytes(self, bytes: usize) -> Self {
        self.state.borrow_mut().limits.name_bytes = bytes;
        self
    }

    /// Sets how many groups one connection may be in (`max_groups_per_connection`, default 64); joining one more
    /// is refused with [`crate::Refusal::TooManyGroups`].
    pub fn with_max_groups_per_connection(self, groups: usize) -> Self {
        self.state.borrow_mut().limits.groups_per_connection = groups;
        self
    }

    /// Sets how many timers may run at once (`max_timers_per_instance`, default 1024); starting one more is
    /// refused with [`crate::Refusal::TooManyTimers`].
    pub fn with_max_timers(self, timers: usize) -> Self {
        self.state.borrow_mut().limits.timers = timers;
        self
    }

    /// Sets how many bytes of keys and values one connection's session may hold (default 64 KiB, the gateway's
    /// fixed limit); a value past it is refused with [`crate::Refusal::TooLarge`].
    pub fn with_max_session_bytes(self, bytes: usize) -> Self {
        self.state.borrow_mut().limits.session_bytes = bytes;
        self
    }

    /// Sets how many bytes may wait for one client (`max_outbound_bytes`, default 1 MiB); what the test has not
    /// taken with [`MockHost::take_sent`] is still waiting.
    pub fn with_max_outbound_bytes(self, bytes: usize) -> Self {
        self.state.borrow_mut().limits.outbound_bytes = bytes;
        self
    }

    /// Sets how many history and storage requests may wait for their events at once
    /// (`max_storage_requests_per_instance`, default 1024); one more is refused with
    /// [`crate::StorageRefusal::TooManyPending`].
    pub fn with_max_storage_requests(self, requests: usize) -> Self {
        self.state.borrow_mut().limits.store_requests = requests;
        self
    }

    /// Makes the route's store fail: from now on every history and storage request the gateway takes is answered
    /// with [`crate::StorageError::Unavailable`] carrying `reason`, and changes nothing — until this is called with
    /// `None`.
    pub fn fail_store(&self, reason: Option<&str>) {
        self.state.borrow_mut().store_failure = reason.map(str::to_owned);
    }

    /// Sets how long a deferred upgrade waits for its answer (the route's `accept_timeout_ms`, default 10 s).
    pub fn with_accept_timeout(self, timeout: Duration) -> Self {
        self.state.borrow_mut().limits.accept_timeout = timeout;
        self
    }

    /// Starts the instance: runs the plugin's `init` with the route settings, once. `Err` is its refusal, with which
    /// the gateway would refuse the config (`check`, `serve` and a reload alike). Every other method starts the
    /// instance first, and panics if `init` refuses.
    pub fn init(&self) -> Result<(), String> {
        if self.started.get() {
            return Ok(());
        }
        let settings = Settings::new(self.state.borrow().settings.clone());
        self.state.borrow_mut().in_init = true;
        let refused = self.run(|r| r.init(&settings));
        self.state.borrow_mut().in_init = false;
        refused?;
        self.started.set(true);
        Ok(())
    }

    #[track_caller]
    fn start(&self) {
        if let Err(refusal) = self.init() {
            panic!("the plugin's init refused the route's settings: {refusal}");
        }
    }

    /// Opens a connection to `target` (a path, with a `?query` if any) and runs `on_connect`.
    #[track_caller]
    pub fn connect(&self, target: &str) -> Upgrade {
        self.connect_with(Request::new(target))
    }

    /// Opens a connection with a full request and runs `on_connect`.
    #[track_caller]
    pub fn connect_with(&self, request: Request) -> Upgrade {
        self.start();
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        {
            let mut state = self.state.borrow_mut();
            // Live while on_connect runs, so it can start timers for it and join groups.
            state.status.insert(id, Status::Connecting);
            state.requests.insert(id, request.clone());
        }
        // The verdict takes effect before anything the event caused is delivered, as in the gateway: an answer that
        // comes due may accept the deferred connection, and a rejected one's requests are cancelled with it.
        self.run_then(
            |r| r.connect(id, &request),
            |answer| {
                let mut state = self.state.borrow_mut();
                if let Some(Status::Rejected(rejection)) = state.status.get(&id) {
                    // Closed while on_connect ran (the plugin's own `close`): refused whatever it answered.
                    return Upgrade::Rejected(rejection.clone());
                }
                match answer {
                    Answer::Accept => {
                        state.status.insert(id, Status::Open);
                        Upgrade::Accepted(Connection::new(id))
                    }
                    Answer::Defer => {
                        let deadline = state.now + state.limits.accept_timeout;
                        state.status.insert(id, Status::Waiting);
                        state.accept_deadlines.insert(id, deadline);
                        Upgrade::Deferred(Connection::new(id))
                    }
                    Answer::Reject { status, body } => {
                        let rejection = gateway_rejection(status, &body);
                        state.status.insert(id, Status::Rejected(rejection.clone()));
                        state.forget(id);
                        Upgrade::Rejected(rejection)
                    }
                }
            },
        )
    }

    /// Delivers a message from the client. The gateway delivers none before the upgrade is accepted.
    #[track_caller]
    pub fn message(&self, conn: Connection, message: impl Into<Message>) {
        self.start();
        let status = self.status(conn);
        match status {
            Some(Status::Open) => {}
            Some(Status::Waiting) => panic!(
                "connection {} waits for its accept: the gateway delivers no message before it",
                conn.id()
            ),
            // A client cannot send on a connection that is gone.
            _ => return,
        }
        let message = message.into();
        self.run(|r| r.message(conn.id(), message));
    }

    /// The client closes the connection with `code` and `reason` (or leaves while its upgrade waits): runs
    /// `on_close`.
    pub fn client_close(&self, conn: Connection, code: u16, reason: &str) {
        let frame = match self.status(conn) {
            Some(Status::Open) => CloseFrame::new(code, reason),
            Some(Status::Waiting) => CloseFrame::new(1006, "client left"),
            _ => return,
        };
        {
            let mut state = self.state.borrow_mut();
            state.accept_deadlines.remove(&conn.id());
            state
                .status
                .insert(conn.id(), Status::Closed(frame.clone()));
            state.pending_close.push((conn.id(), frame));
        }
        self.run(|_| ());
    }

    /// Moves the mock's clock forward by `by`, firing every timer and accept timeout that comes due on the way, in
    /// order.
    pub fn advance(&self, by: Duration) {
        self.start();
        let until = self.state.borrow().now + by;
        // Bounded: a repeating timer has a period of at least 1 ms.
        for _ in 0..1_000_000 {
            let timeout = {
                let state = self.state.borrow();
                state
                    .accept_deadlines
                    .iter()
                    .map(|(id, due)| (*due, *id))
                    .filter(|(due, _)| *due <= until)
                    .min()
            };
            let next_timer = self
                .state
                .borrow()
                .timers
                .values()
                .map(|t| t.due)
                .filter(|due| *due <= until)
                .min();
            match (timeout, next_timer) {
                (Some((due, id)), timer) if timer.is_none_or(|t| due <= t) => {
                    let mut state = self.state.borrow_mut();
                    state.now = state.now.max(due);
                    let rejection =
                        gateway_rejection(504, "the server did not answer the upgrade in time\n");
                    state.end(
                        id,
                        CloseFrame::new(1006, "accept timed out"),
                        Some(rejection),
                    );
                    drop(state);
                    self.run(|_| ());
                }
                (_, Some(_)) => {
                    let fired = self.state.borrow_mut().next_due_timer(until);
                    if let Some((id, owner)) = fired {
                        let timer = Timer::new(id, owner.map(Connection::new));
                        self.run(|r| r.timer(timer));
                    }
                }
                (_, None) => break,
            }
        }
        let mut state = self.state.borrow_mut();
        state.now = state.now.max(until);
    }

    /// Replaces the instance as the gateway does after a trap: the old plugin value and its timers are gone, a fresh
    /// `P::default()` starts with `init`, and `on_connect` is replayed (with `restored = true`) for every connection,
    /// which rebuilds their state. A replayed rejection closes an open connection with 1008.
    pub fn restart(&self) {
        self.restart_with(P::default());
    }

    /// Like [`MockHost::restart`], with the fresh instance running `plugin`.
    pub fn restart_with(&self, plugin: P) {
        *self.runtime.borrow_mut() = Runtime::new(plugin);
        self.state.borrow_mut().timers.clear();
        self.state.borrow_mut().outbound.clear();
        self.state.borrow_mut().answers.clear();
        self.started.set(false);
        self.start();
        let live: Vec<(u64, Status, Request)> = {
            let state = self.state.borrow();
            state
                .status
                .iter()
                .filter(|(_, s)| matches!(s, Status::Open | Status::Waiting))
                .filter_map(|(id, s)| Some((*id, s.clone(), state.requests.get(id)?.clone())))
                .collect()
        };
        for (id, status, mut request) in live {
            request.restored = true;
            self.run_then(
                |r| r.connect(id, &request),
                |answer| {
                    let mut state = self.state.borrow_mut();
                    match (answer, status) {
                        (Answer::Accept, Status::Waiting) => {
                            state.accept_deadlines.remove(&id);
                            state.status.insert(id, Status::Open);
                        }
                        (Answer::Reject { status, body }, Status::Waiting) => {
                            let rejection = gateway_rejection(status, &body);
                            state.end(id, CloseFrame::new(1006, "rejected"), Some(rejection));
                        }
                        (Answer::Reject { body, .. }, _) => {
                            let frame = CloseFrame::new(1008, state::close_reason(&body));
                            state.end(id, frame, None);
                        }
                        _ => {}
                    }
                },
            );
            // The replay rejected it: the fresh instance holds no state for it, so nothing is due.
            self.state
                .borrow_mut()
                .pending_close
                .retain(|(c, _)| *c != id);
            if !matches!(
                self.status(Connection::new(id)),
                Some(Status::Open | Status::Waiting)
            ) {
                self.state.borrow_mut().forget(id);
            }
        }
    }

    /// Where `conn` is in its life; `None` for a connection the mock never saw.
    pub fn status(&self, conn: Connection) -> Option<Status> {
        self.state.borrow().status.get(&conn.id()).cloned()
    }

    /// How many timers are running.
    pub fn running_timers(&self) -> usize {
        self.state.borrow().timers.len()
    }

    /// The groups `conn` is in, sorted.
    pub fn groups_of(&self, conn: Connection) -> Vec<String> {
        use crate::host::HostCalls;
        self.state.borrow_mut().groups_of(conn.id())
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
        use crate::host::HostCalls;
        self.state.borrow_mut().session_get(conn.id(), key)
    }

    /// Takes the messages the plugin sent to `conn` so far (the client reads them).
    pub fn take_sent(&self, conn: Connection) -> Vec<Message> {
        self.state
            .borrow_mut()
            .sent
            .remove(&conn.id())
            .unwrap_or_default()
    }

    /// The close frame `conn` was closed with, if it was (by the plugin, the client or the gateway).
    pub fn closed(&self, conn: Connection) -> Option<CloseFrame> {
        match self.status(conn) {
            Some(Status::Closed(frame)) => Some(frame),
            _ => None,
        }
    }

    /// Every line the plugin logged (with [`crate::log`] or the `log` facade).
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }

    /// The plugin value, to inspect its route-wide state.
    pub fn plugin(&self) -> Ref<'_, P> {
        Ref::map(self.runtime.borrow(), |r| &r.plugin)
    }

    /// The state the SDK keeps for `conn`: `Some` from its accept (or deferral) until its `on_close` returned.
    pub fn state(&self, conn: Connection) -> Option<Ref<'_, P::State>> {
        Ref::filter_map(self.runtime.borrow(), |r| r.connections.get(conn)).ok()
    }

    /// How many connections the SDK keeps state for.
    pub fn states(&self) -> usize {
        self.runtime.borrow().connections.len()
    }

    /// Makes host calls as the plugin would in an event (for tests of the SDK's calls themselves).
    pub fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        self.start();
        self.run(|_| f())
    }

    /// Runs one callback with this mock installed, then the `on_close` calls the gateway would make for the
    /// connections that ended during it, then the history and storage events that came due, each followed by its
    /// own `on_close` calls.
    fn run<R>(&self, callback: impl FnOnce(&mut Runtime<P>) -> R) -> R {
        self.run_then(callback, |result| result)
    }

    /// Like [`MockHost::run`], with `settle` applying the callback's result to the mock (an upgrade's verdict)
    /// before the `on_close` calls and the answers that came due are delivered.
    fn run_then<R, S>(
        &self,
        callback: impl FnOnce(&mut Runtime<P>) -> R,
        settle: impl FnOnce(R) -> S,
    ) -> S {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.state.clone()));
        let result = settle(callback(&mut self.runtime.borrow_mut()));
        self.deliver_closes();
        // Bounded: a plugin that answers every answer with another request would never let the test go on.
        for _ in 0..MAX_CHAINED_ANSWERS {
            let Some(due) = self.state.borrow_mut().answers.pop_front() else {
                break;
            };
            let request = StorageRequest::new(due.id, due.owner.map(Connection::new));
            let mut runtime = self.runtime.borrow_mut();
            match due.answer {
                StoreAnswer::Appended(result) => runtime.appended(request, result),
                StoreAnswer::History(result) => runtime.history(request, result),
                StoreAnswer::Read(result) => runtime.read(request, result),
                StoreAnswer::Written(result) => runtime.written(request, result),
            }
            drop(runtime);
            self.deliver_closes();
        }
        let looping = !self.state.borrow().answers.is_empty();
        CURRENT.with(|c| *c.borrow_mut() = previous);
        assert!(
            !looping,
            "the plugin made a history or storage request from each of {MAX_CHAINED_ANSWERS} answers in a row: a loop?"
        );
        result
    }

    /// Runs `on_close` for the connections that ended, as the gateway does once the current event returned.
    fn deliver_closes(&self) {
        // Bounded: each round ends connections that were live, and there are finitely many.
        for _ in 0..=self.next_id.get() {
            let pending = std::mem::take(&mut self.state.borrow_mut().pending_close);
            if pending.is_empty() {
                break;
            }
            for (id, frame) in pending {
                self.runtime.borrow_mut().close(id, frame);
                self.state.borrow_mut().forget(id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_memory;
