//! What the mock gateway records while a plugin runs, and its side of every host call: the same [`HostCalls`] trait
//! the wasm imports implement, with the gateway's rules and caps.

use super::history::{Histories, HistoryConfig};
use super::storage::{Keys, StorageConfig};
use crate::history::{HistoryPage, Position};
use crate::host::HostCalls;
use crate::log::Level;
use crate::message::Payload;
use crate::storage::StoredValue;
use crate::{
    CloseFrame, ConnectionInfo, Message, Refusal, Rejection, Request, SendError, StorageError,
    StorageRefusal,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

/// The caps the gateway enforces, with its defaults.
pub(super) struct Limits {
    /// `max_name_bytes`: group names, user ids and session keys.
    pub name_bytes: usize,
    /// `max_groups_per_connection`.
    pub groups_per_connection: usize,
    /// `max_timers_per_instance`: running timers.
    pub timers: usize,
    /// A session's keys and values together.
    pub session_bytes: usize,
    /// `max_outbound_bytes`: what may wait for one client to read it.
    pub outbound_bytes: usize,
    /// The route's `accept_timeout_ms`.
    pub accept_timeout: Duration,
    /// An upstream's `max_in_flight`: requests sent and not answered yet.
    pub requests_in_flight: usize,
    /// An upstream's `max_request_bytes`: body and headers of one request.
    pub request_bytes: usize,
    /// `max_storage_requests_per_instance`: history and storage requests waiting for their events.
    pub store_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            name_bytes: 256,
            groups_per_connection: 64,
            timers: 1024,
            session_bytes: 64 * 1024,
            outbound_bytes: 1 << 20,
            accept_timeout: Duration::from_secs(10),
            requests_in_flight: 1024,
            request_bytes: 1 << 20,
            store_requests: 1024,
        }
    }
}

/// Where a connection is in its life, as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Its `on_connect` is running: the upgrade has no answer yet (`accept` and `reject` are refused).
    Connecting,
    /// Its `on_connect` deferred, and no answer came yet: the client waits for the upgrade's answer.
    Waiting,
    /// The WebSocket is open.
    Open,
    /// The upgrade was answered with an HTTP error (by `on_connect`, by `reject`, or by the accept timeout's 504).
    Rejected(Rejection),
    /// The WebSocket closed with this frame (the plugin's `close`, the client's, or the gateway's own).
    Closed(CloseFrame),
}

/// A simulated timer.
pub(super) struct MockTimer {
    pub due: Duration,
    pub period: Option<Duration>,
    pub owner: Option<u64>,
}

/// The answer a history or storage request gets: the store answers at once, and the mock holds the answer until the
/// current event returns, when it is delivered as an event of its own.
pub(super) enum StoreAnswer {
    Appended(Result<Position, StorageError>),
    History(Result<HistoryPage, StorageError>),
    Read(Result<Option<StoredValue>, StorageError>),
    Written(Result<u64, StorageError>),
}

/// A request the store answered whose event is still due.
pub(super) struct PendingAnswer {
    pub id: u64,
    pub owner: Option<u64>,
    pub answer: StoreAnswer,
}

/// What the mock host records while a plugin runs.
#[derive(Default)]
pub(crate) struct MockState {
    /// The caps calls are refused past.
    pub(super) limits: Limits,
    /// The route settings the plugin reads.
    pub(super) settings: BTreeMap<String, String>,
    /// Whether the plugin exports timer events: a plugin that starts timers without them is refused.
    pub(super) timer_events: bool,
    /// Every connection's place in its life.
    pub(super) status: HashMap<u64, Status>,
    /// When each waiting connection's upgrade times out (504).
    pub(super) accept_deadlines: BTreeMap<u64, Duration>,
    /// Messages the plugin sent, per connection, not yet taken by the test (the client has not read them).
    pub(super) sent: HashMap<u64, Vec<Message>>,
    /// Ends the plugin caused during the current callback, for which its on_close is still due.
    pub(super) pending_close: Vec<(u64, CloseFrame)>,
    /// Every log line, in order.
    pub(super) logs: Vec<(Level, String)>,
    /// The request each connection arrived with, for `Connection::info` and replays.
    pub(super) requests: BTreeMap<u64, Request>,
    /// Members of each group.
    pub(super) groups: BTreeMap<String, BTreeSet<u64>>,
    /// The user each bound connection belongs to.
    pub(super) users: BTreeMap<u64, String>,
    /// Each connection's session.
    pub(super) sessions: HashMap<u64, BTreeMap<String, String>>,
    /// Running timers by id.
    pub(super) timers: BTreeMap<u64, MockTimer>,
    /// The mock's clock, moved only by `MockHost::advance`.
    pub(super) now: Duration,
    /// The last timer id handed out.
    pub(super) last_timer: u64,
    /// Whether the plugin exports HTTP events: a plugin that sends requests without them is refused.
    pub(super) http_events: bool,
    /// The upstreams the route grants.
    pub(super) upstreams: BTreeSet<String>,
    /// Requests sent and not yet answered by the test, by id.
    pub(super) outbound: BTreeMap<u64, crate::http::Request>,
    /// The last request id handed out.
    pub(super) last_request: u64,
    /// The plugin's `init` is running (requests are refused).
    pub(super) in_init: bool,
    /// Whether the plugin exports history events: a plugin that uses history without them is refused.
    pub(super) history_events: bool,
    /// Whether the plugin exports storage events: a plugin that uses storage without them is refused.
    pub(super) storage_events: bool,
    /// The route's `[route.history]`, if it has one.
    pub(super) history_config: Option<HistoryConfig>,
    /// The route's `[route.storage]`, if it has one.
    pub(super) storage_config: Option<StorageConfig>,
    /// The route's history: the store's, so it outlives instances.
    pub(super) history: Histories,
    /// The route's keys: the store's, so they outlive instances.
    pub(super) keys: Keys,
    /// History and storage answers whose events are due, oldest first.
    pub(super) answers: VecDeque<PendingAnswer>,
    /// The last history or storage request id handed out.
    pub(super) last_store_request: u64,
    /// Why the store fails every request, while a test makes it fail.
    pub(super) store_failure: Option<String>,
}

/// The close codes a server may put on the wire (RFC 6455 section 7.4); the gateway sends 1008 for any other.
fn sendable(code: u16) -> u16 {
    if matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) {
        code
    } else {
        1008
    }
}

/// The gateway's answer to an upgrade closed before it was answered, and the reason its on_close gets: the
/// gateway's shutdown (1001) is a 503, a trap (1011) a 500, and anything else (the plugin's `close`, a full queue) a
/// 403.
fn refused_by_close(code: u16) -> (Rejection, &'static str) {
    let (status, body, why) = match code {
        1001 => (503, "server shutting down\n", "server shutting down"),
        1011 => (500, "plugin error\n", "plugin error"),
        _ => (403, "rejected\n", "rejected"),
    };
    (
        Rejection {
            status,
            body: body.to_owned(),
        },
        why,
    )
}

/// A close reason as the gateway sends it: at most 123 bytes, cut on a character boundary.
pub(super) fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

impl MockState {
    pub(super) fn is(&self, connection: u64, status: &Status) -> bool {
        self.status.get(&connection) == Some(status)
    }

    /// Whether the plugin may act on the connection: open, or before its upgrade's answer.
    pub(super) fn is_live(&self, connection: u64) -> bool {
        matches!(
            self.status.get(&connection),
            Some(Status::Open | Status::Waiting | Status::Connecting)
        )
    }

    /// Refuses a call on a connection that is neither open nor waiting.
    fn check_live(&self, connection: u64) -> Result<(), Refusal> {
        if self.is_live(connection) {
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

    /// Ends a live connection as the gateway does: an open one with `frame`; one whose upgrade has no answer yet
    /// with `rejection` (by default the one for a close with `frame`'s code), its `on_close` getting code 1006 and
    /// `frame`'s reason. Its on_close follows when the current callback returns.
    pub(super) fn end(&mut self, connection: u64, frame: CloseFrame, rejection: Option<Rejection>) {
        if !self.is_live(connection) {
            return;
        }
        self.accept_deadlines.remove(&connection);
        let (status, frame) = if self.is(connection, &Status::Open) {
            (Status::Closed(frame.clone()), frame)
        } else {
            let (by_close, why) = refused_by_close(frame.code);
            match rejection {
                Some(rejection) => (
                    Status::Rejected(rejection),
                    CloseFrame::new(1006, frame.reason),
                ),
                None => (Status::Rejected(by_close), CloseFrame::new(1006, why)),
            }
        };
        self.status.insert(connection, status);
        self.pending_close.push((connection, frame));
    }

    pub(super) fn group_members(&self, group: &str) -> Vec<u64> {
        self.groups
            .get(group)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Queues `message` for each of `targets`; returns how many took it.
    fn deliver(&mut self, message: Payload<'_>, targets: Vec<u64>) -> u32 {
        targets
            .into_iter()
            .filter(|t| self.send(*t, message).is_ok())
            .count() as u32
    }

    /// The mock's clock in milliseconds: the time history and storage stamp and expire by.
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX)
    }

    /// Refuses a history or storage request (once its table, names and sizes passed, as the gateway checks them
    /// in that order) from `init`, for an owner this instance does not serve, or past
    /// `max_storage_requests_per_instance` waiting.
    pub(super) fn check_request(&self, owner: Option<u64>) -> Result<(), StorageRefusal> {
        if self.in_init {
            return Err(StorageRefusal::NotNow);
        }
        if owner.is_some_and(|o| !self.is_live(o)) {
            return Err(StorageRefusal::UnknownConnection);
        }
        if self.answers.len() >= self.limits.store_requests {
            return Err(StorageRefusal::TooManyPending);
        }
        Ok(())
    }

    /// Takes a request the store answered with `answer`: its event follows when the current event returns.
    pub(super) fn take_request(&mut self, owner: Option<u64>, answer: StoreAnswer) -> u64 {
        self.last_store_request += 1;
        let id = self.last_store_request;
        self.answers.push_back(PendingAnswer { id, owner, answer });
        id
    }

    /// Everything a connection that ended leaves behind: groups, user, session, owned timers and requests.
    pub(super) fn forget(&mut self, connection: u64) {
        for members in self.groups.values_mut() {
            members.remove(&connection);
        }
        self.groups.retain(|_, m| !m.is_empty());
        self.users.remove(&connection);
        self.sessions.remove(&connection);
        self.timers.retain(|_, t| t.owner != Some(connection));
        self.outbound
            .retain(|_, r| r.owner.map(crate::Connection::id) != Some(connection));
        self.answers.retain(|a| a.owner != Some(connection));
    }

    /// The earliest timer due by `until`, taken off (or rescheduled, when it repeats), with its owner.
    pub(super) fn next_due_timer(&mut self, until: Duration) -> Option<(u64, Option<u64>)> {
        let (&id, timer) = self
            .timers
            .iter_mut()
            .filter(|(_, t)| t.due <= until)
            .min_by_key(|(_, t)| t.due)?;
        self.now = self.now.max(timer.due);
        let owner = timer.owner;
        match timer.period {
            Some(period) => timer.due += period,
            None => {
                self.timers.remove(&id);
            }
        }
        Some((id, owner))
    }
}

impl HostCalls for MockState {
    fn send(&mut self, connection: u64, message: Payload<'_>) -> Result<(), SendError> {
        if !self.is_live(connection) {
            return Err(SendError::Closed);
        }
        let queue = self.sent.entry(connection).or_default();
        let queued: usize = queue.iter().map(|m| m.as_bytes().len()).sum();
        let len = match message {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        };
        if queued > 0 && queued + len > self.limits.outbound_bytes {
            // The gateway drops what waits for a client this slow, and closes it.
            queue.clear();
            self.end(connection, CloseFrame::new(1008, "slow consumer"), None);
            return Err(SendError::QueueFull);
        }
        queue.push(message.to_message());
        Ok(())
    }

    fn close(&mut self, connection: u64, code: u16, reason: &str) {
        let frame = CloseFrame::new(sendable(code), close_reason(reason));
        self.end(connection, frame, None);
    }

    fn accept(&mut self, connection: u64) -> Result<(), Refusal> {
        if !self.is_live(connection) {
            return Err(Refusal::UnknownConnection);
        }
        if !self.is(connection, &Status::Waiting) {
            return Err(Refusal::NotDeferred);
        }
        self.accept_deadlines.remove(&connection);
        self.status.insert(connection, Status::Open);
        Ok(())
    }

    fn reject(&mut self, connection: u64, status: u16, body: &str) -> Result<(), Refusal> {
        if !self.is_live(connection) {
            return Err(Refusal::UnknownConnection);
        }
        if !self.is(connection, &Status::Waiting) {
            return Err(Refusal::NotDeferred);
        }
        let rejection = super::gateway_rejection(status, body);
        self.end(
            connection,
            CloseFrame::new(1006, "rejected"),
            Some(rejection),
        );
        Ok(())
    }

    fn log(&mut self, level: Level, message: &str) -> Result<(), Refusal> {
        self.logs.push((level, message.to_owned()));
        Ok(())
    }

    fn setting(&mut self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }

    fn settings(&mut self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn join_group(&mut self, connection: u64, group: &str) -> Result<(), Refusal> {
        self.check_live(connection)?;
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

    fn leave_group(&mut self, connection: u64, group: &str) {
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(&connection);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    fn publish(&mut self, group: &str, message: Payload<'_>, exclude: &[u64]) -> u32 {
        let targets = self
            .group_members(group)
            .into_iter()
            .filter(|m| !exclude.contains(m))
            .collect();
        self.deliver(message, targets)
    }

    fn group_size(&mut self, group: &str) -> u32 {
        self.group_members(group).len() as u32
    }

    fn groups_of(&mut self, connection: u64) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, m)| m.contains(&connection))
            .map(|(g, _)| g.clone())
            .collect()
    }

    fn bind_user(&mut self, connection: u64, uid: &str) -> Result<(), Refusal> {
        self.check_live(connection)?;
        self.check_name(uid)?;
        self.users.insert(connection, uid.to_owned());
        Ok(())
    }

    fn unbind_user(&mut self, connection: u64) {
        self.users.remove(&connection);
    }

    fn send_to_user(&mut self, uid: &str, message: Payload<'_>) -> u32 {
        let targets = self.connections_of_user(uid);
        self.deliver(message, targets)
    }

    fn is_user_online(&mut self, uid: &str) -> bool {
        !self.connections_of_user(uid).is_empty()
    }

    fn connections_of_user(&mut self, uid: &str) -> Vec<u64> {
        self.users
            .iter()
            .filter(|(_, u)| *u == uid)
            .map(|(c, _)| *c)
            .collect()
    }

    fn broadcast(&mut self, message: Payload<'_>, exclude: &[u64]) -> u32 {
        let targets: Vec<u64> = self
            .status
            .iter()
            .filter(|(c, s)| **s == Status::Open && !exclude.contains(c))
            .map(|(c, _)| *c)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.deliver(message, targets)
    }

    fn session_set(&mut self, connection: u64, key: &str, value: &str) -> Result<(), Refusal> {
        self.check_live(connection)?;
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

    fn session_get(&mut self, connection: u64, key: &str) -> Option<String> {
        self.sessions
            .get(&connection)
            .and_then(|s| s.get(key).cloned())
    }

    fn session_remove(&mut self, connection: u64, key: &str) {
        if let Some(session) = self.sessions.get_mut(&connection) {
            session.remove(key);
        }
    }

    fn connection_info(&mut self, connection: u64) -> Option<ConnectionInfo> {
        if !self.is_live(connection) {
            return None;
        }
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

    fn set_timer(
        &mut self,
        delay_ms: u64,
        repeat: bool,
        owner: Option<u64>,
    ) -> Result<u64, Refusal> {
        assert!(
            self.timer_events,
            "the plugin starts timers but does not export their events, so the gateway would refuse to load it \
             (\"imports `wssgate:plugin/timers` but does not export `wssgate:plugin/timer-events`\"): implement \
             `TimerEvents` and export it with `export_plugin!(YourPlugin, timers)`"
        );
        if let Some(owner) = owner {
            self.check_live(owner)?;
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

    fn cancel_timer(&mut self, timer: u64) -> bool {
        self.timers.remove(&timer).is_some()
    }

    fn send_request(
        &mut self,
        request: &crate::http::Request,
    ) -> Result<u64, crate::http::RequestRefusal> {
        self.http_send(request)
    }

    fn cancel_request(&mut self, request: u64) -> bool {
        self.outbound.remove(&request).is_some()
    }

    fn history_append(
        &mut self,
        group: &str,
        message: Payload<'_>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        self.append_history(group, message, owner)
    }

    fn history_read(
        &mut self,
        group: &str,
        since: Option<&Position>,
        limit: u32,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        self.read_history(group, since, limit, owner)
    }

    fn storage_get(&mut self, key: &str, owner: Option<u64>) -> Result<u64, StorageRefusal> {
        self.get_key(key, owner)
    }

    fn storage_set(
        &mut self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        self.write_key(key, (Some(value), ttl_ms), if_revision, owner)
    }

    fn storage_remove(
        &mut self,
        key: &str,
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        self.write_key(key, (None, None), if_revision, owner)
    }
}
