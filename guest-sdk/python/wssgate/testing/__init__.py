"""A mock of the gateway for plain pytest tests of a plugin: no wasm, no sockets.

    from wssgate.testing import MockHost

    def test_greets():
        host = MockHost(Greeter)
        conn = host.open("/greet")
        host.message(conn, "tom")
        assert host.take_sent(conn) == ["ok"]

It runs the plugin through the same code as the gateway glue (`wssgate._runtime`: init, per-connection state, the
optional events) and answers its calls with the gateway's rules:

- `init` runs before the first event (`MockHost.init()` runs it explicitly and returns its refusal);
- `on_connect` may accept, reject or defer; a deferred connection waits ("waiting") until the plugin calls
  `accept` or `reject`, or until the accept timeout (10 s, `accept_timeout=`) answers 504 as the mock's clock
  passes it; it ends with `on_close` (code 1006) when it never opens;
- `on_close` follows a close the plugin asked for, with the code made sendable (1008 for 1005, 1006, 1015 or
  anything outside 1000-4999) and the reason cut to 123 bytes; sends to closed connections raise `Refused("closed")`;
- what the test has not taken (`take_sent`) waits in the client's queue: a send past 1 MiB raises
  `Refused("queue-full")` and closes the connection with 1008;
- `restart()` replaces the instance as the gateway does after a failure: a fresh plugin object, `init`,
  `on_connect` replayed with `restored=True` for every live connection, the old instance's timers and requests gone;
- timers run on a clock only `advance(seconds)` moves; HTTP requests wait for `respond` or `fail`;
- history and storage (contract 1.2) are kept in memory for the route with the contract's rules, once the test gives
  the route its tables (`history=HistoryConfig(...)`, `storage=StorageConfig(...)`; without, calls are refused with
  "not-configured"). The store answers each request at once, and its event follows when the current event returns
  (after the `on_close` calls it caused), in the order the requests were made. A request owned by a connection
  loses its event when that connection closes first (what it wrote stays written), and `restart()` drops every
  event still due. Retention and time to live follow the mock's clock, which starts at 0 ms; `fail_store(reason)`
  makes the store fail ("unavailable"), and `reset_history()` loses the history as a store that lost its data;
- a plugin that starts timers without `on_timer` (or sends requests without `on_http_response`, or uses history or
  storage without their events) gets the error the gateway would give when loading it;
- calls are refused with the gateway's default caps, which the constructor's keywords change (`max_name_bytes`,
  `max_groups_per_connection`, `max_timers`, `max_session_bytes`, `max_outbound_bytes`,
  `max_requests_in_flight`, `max_storage_requests`); the history and storage caps are the fields of `HistoryConfig`
  and `StorageConfig`. Log lines are never rate limited.

An exception a plugin raises reaches the test (in the gateway it fails the instance: the connection whose event
raised is closed with 1011 and the instance is replaced).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .. import _host
from .._runtime import Runtime, uses_history, uses_storage
from ..connection import CloseFrame, Connection, Request
from ..history import HistoryEntry
from ..http import HttpError, Response, Sent
from ..storage import StoredValue
from ._memory import HistoryConfig, StorageConfig
from ._state import Limits, MockState, gateway_rejection
from .scenarios import load_scenarios, run_scenario

__all__ = ["HistoryConfig", "MockHost", "StorageConfig", "Upgrade", "load_scenarios", "run_scenario"]

#: How many history and storage events one step of a test delivers at most, answers to answers included.
MAX_CHAINED_ANSWERS = 100_000


@dataclass
class Upgrade:
    """How an upgrade was answered by the time `MockHost.connect` returned."""

    #: "accepted" (101), "deferred" (the client waits) or "rejected".
    kind: str
    #: The connection (None when rejected).
    conn: Optional[Connection] = None
    #: The rejection's (status, body) when rejected.
    rejection: Optional[Tuple[int, str]] = None

    @property
    def status(self) -> Optional[int]:
        """101 when accepted, the HTTP status when rejected, None while deferred."""
        if self.kind == "accepted":
            return 101
        return self.rejection[0] if self.rejection else None


class MockHost:
    """A simulated gateway running one instance of `plugin_class`, on one route."""

    def __init__(self, plugin_class, *, settings: Optional[Dict[str, str]] = None, upstreams=(),
                 accept_timeout: float = 10, history: Optional[HistoryConfig] = None,
                 storage: Optional[StorageConfig] = None, max_name_bytes=256, max_groups_per_connection=64,
                 max_timers=1024, max_session_bytes=64 * 1024, max_outbound_bytes=1 << 20,
                 max_requests_in_flight=1024, max_storage_requests=1024):
        self._plugin_class = plugin_class
        self._runtime = Runtime(plugin_class)
        limits = Limits(name_bytes=max_name_bytes, groups_per_connection=max_groups_per_connection,
                        timers=max_timers, session_bytes=max_session_bytes, outbound_bytes=max_outbound_bytes,
                        accept_timeout_ms=round(accept_timeout * 1000), requests_in_flight=max_requests_in_flight,
                        store_requests=max_storage_requests)
        exports = self._runtime.exports
        self._state = MockState(
            limits=limits,
            route_settings=dict(settings or {}),
            upstreams=set(upstreams),
            timer_events=exports["on_timer"],
            http_events=exports["on_http_response"],
            history_events=uses_history(exports),
            storage_events=uses_storage(exports),
            history_config=history,
            storage_config=storage,
        )
        self._next_id = 0
        self._started = False

    # The instance.

    def init(self) -> Optional[str]:
        """Starts the instance: runs `init` with the route settings, once. Returns its refusal's message (with which
        the gateway would refuse the config), or None. Every other method starts the instance first, and raises if
        `init` refuses."""
        if self._started:
            return None
        self._state.in_init = True
        try:
            refusal = self._run(lambda: self._runtime.init(self._state.route_settings))
        finally:
            self._state.in_init = False
        if refusal is None:
            self._started = True
        return refusal

    def _start(self):
        refusal = self.init()
        if refusal is not None:
            raise AssertionError(f"the plugin's init refused the route's settings: {refusal}")

    def restart(self, plugin_class=None) -> None:
        """Replaces the instance as the gateway does after a failure (see the module's notes)."""
        self._runtime = Runtime(plugin_class or self._plugin_class)
        self._state.timers.clear()
        self._state.outbound.clear()
        self._state.answers.clear()
        self._started = False
        self._start()
        state = self._state
        live = [(c, s) for c, s in sorted(state.status.items()) if s in ("open", "waiting")]
        for conn, status in live:
            request = Request(**{**vars(state.requests[conn]), "restored": True})
            verdict = self._run(lambda: self._runtime.connect(conn, request))
            if verdict.kind == "reject":
                if status == "waiting":
                    state.end(conn, CloseFrame(1006, "rejected"), gateway_rejection(verdict.status, verdict.body))
                else:
                    state.end(conn, CloseFrame(1008, verdict.body.encode()[:123].decode(errors="ignore")))
                # The fresh instance holds no state for it, so no on_close is due.
                state.pending_close = [(c, f) for c, f in state.pending_close if c != conn]
                state.forget(conn)
            elif verdict.kind == "accept" and status == "waiting":
                state.accept_deadlines.pop(conn, None)
                state.status[conn] = "open"

    # What clients do.

    def connect(self, target: str = "/", request: Optional[Request] = None) -> Upgrade:
        """A client asks to upgrade at `target` (a path, with ``?query`` if any) or with a full `request`; runs
        `on_connect`."""
        self._start()
        request = request or Request.to(target)
        self._next_id += 1
        conn = self._next_id
        state = self._state
        # Live while on_connect runs, so it can start timers for it and join groups.
        state.status[conn] = "connecting"
        state.requests[conn] = request
        verdict = self._run(lambda: self._runtime.connect(conn, request))
        if state.status[conn] == "rejected":
            # Closed while on_connect ran (the plugin's own close): refused whatever it answered.
            return Upgrade("rejected", rejection=state.rejections[conn])
        if verdict.kind == "accept":
            state.status[conn] = "open"
            return Upgrade("accepted", Connection(conn))
        if verdict.kind == "defer":
            state.status[conn] = "waiting"
            state.accept_deadlines[conn] = state.now + state.limits.accept_timeout_ms
            return Upgrade("deferred", Connection(conn))
        state.status[conn] = "rejected"
        state.rejections[conn] = gateway_rejection(verdict.status, verdict.body)
        state.forget(conn)
        return Upgrade("rejected", rejection=state.rejections[conn])

    def open(self, target: str = "/") -> Connection:
        """Connects, and fails the test unless the upgrade was accepted at once."""
        upgrade = self.connect(target)
        assert upgrade.kind == "accepted", f"the upgrade to {target} was not accepted: {upgrade}"
        return upgrade.conn

    def message(self, conn: Connection, message) -> None:
        """The client sends a message (`str`: text, `bytes`: binary). None arrives before the upgrade is accepted,
        and none on a connection that is gone."""
        self._start()
        status = self.status(conn)
        if status == "waiting":
            raise AssertionError(f"connection {conn.id} waits for its accept: the gateway delivers no message before it")
        if status == "open":
            self._run(lambda: self._runtime.message(conn.id, message))

    def client_close(self, conn: Connection, code: int = 1000, reason: str = "") -> None:
        """The client closes (or leaves while its upgrade waits): runs `on_close`."""
        state = self._state
        status = self.status(conn)
        if status == "open":
            frame = CloseFrame(code, reason)
        elif status == "waiting":
            frame = CloseFrame(1006, "client left")
        else:
            return
        state.status[conn.id] = "closed"
        state.close_frames[conn.id] = frame
        state.accept_deadlines.pop(conn.id, None)
        state.pending_close.append((conn.id, frame))
        self._run(lambda: None)

    def advance(self, seconds: float) -> None:
        """Moves the clock forward, firing every timer and accept timeout that comes due on the way, in order."""
        self._start()
        state = self._state
        until = state.now + round(seconds * 1000)
        # Bounded: each round ends a deferred upgrade or fires a timer, and a repeating one has a period >= 1 ms.
        for _ in range(1_000_000):
            timeouts = [(due, c) for c, due in state.accept_deadlines.items() if due <= until]
            timer_due = [t.due for t in state.timers.values() if t.due <= until]
            if timeouts and (not timer_due or min(timeouts)[0] <= min(timer_due)):
                due, conn = min(timeouts)
                state.now = max(state.now, due)
                rejection = gateway_rejection(504, "the server did not answer the upgrade in time\n")
                state.end(conn, CloseFrame(1006, "accept timed out"), rejection)
                self._run(lambda: None)
            elif timer_due:
                timer, owner = state.next_due_timer(until)
                self._run(lambda: self._runtime.timer(timer, owner))
            else:
                break
        state.now = max(state.now, until)

    # HTTP.

    def http_requests(self) -> List[Tuple[Sent, object]]:
        """The requests the plugin sent that wait for an answer, oldest first, each with the handle its answer
        carries."""
        return [(Sent(i, r.owner), r) for i, r in sorted(self._state.outbound.items())]

    def respond(self, sent: Sent, response: Response) -> None:
        """Answers request `sent`: the plugin's `on_http_response` runs."""
        self._answer(sent, response)

    def fail(self, sent: Sent, error: HttpError) -> None:
        """Fails request `sent` (a timeout, a refused connection, ...): the plugin's `on_http_response` runs."""
        self._answer(sent, error)

    def _answer(self, sent, result):
        request = self._state.outbound.pop(sent.id, None)
        if request is None:
            raise AssertionError(f"request {sent.id} is not waiting for an answer (answered, cancelled, or never sent)")
        owner = None if request.owner is None else request.owner.id
        self._run(lambda: self._runtime.response(sent.id, owner, result))

    # History and storage.

    def fail_store(self, reason: Optional[str]) -> None:
        """Makes the route's store fail: from now on every history and storage request the gateway takes is answered
        with a "unavailable" `StorageError` carrying `reason`, and changes nothing; None makes it work again."""
        self._state.store_failure = reason

    def reset_history(self) -> None:
        """Loses the route's history, as a store whose data was lost or reset: every group starts a new epoch, at
        offset 1, with its next append."""
        self._state.history.reset()

    def history(self, group: str) -> List[HistoryEntry]:
        """The messages `group`'s history keeps now, oldest first."""
        state = self._state
        if state.history_config is None:
            return []
        return state.history.entries(state.history_config, group, state.now)

    def history_epoch(self, group: str) -> Optional[str]:
        """`group`'s current epoch; None when it has no history."""
        state = self._state
        if state.history_config is None:
            return None
        return state.history.read(state.history_config, group, None, 1, state.now).epoch or None

    def stored(self, key: str) -> Optional[StoredValue]:
        """A key's value as the store holds it now; None when it does not exist or has expired."""
        return self._state.keys.get(key, self._state.now)

    # What the test inspects.

    def status(self, conn: Connection) -> Optional[str]:
        """"connecting", "waiting", "open", "rejected" or "closed"; None for a connection the mock never saw."""
        return self._state.status.get(conn.id)

    def rejection(self, conn: Connection) -> Optional[Tuple[int, str]]:
        """The (status, body) a rejected upgrade was answered with."""
        return self._state.rejections.get(conn.id) if self.status(conn) == "rejected" else None

    def closed(self, conn: Connection) -> Optional[CloseFrame]:
        """The close frame an open connection was closed with (by the plugin, the client or the gateway)."""
        return self._state.close_frames.get(conn.id) if self.status(conn) == "closed" else None

    def take_sent(self, conn: Connection) -> list:
        """Takes what the plugin sent to `conn` so far (the client reads it): `str` text, `bytes` binary."""
        return self._state.sent.pop(conn.id, [])

    def logs(self) -> List[Tuple[str, str]]:
        """Every (level, line) the plugin logged, through `wssgate.log` or `logging`."""
        return list(self._state.logs)

    def running_timers(self) -> int:
        return len(self._state.timers)

    def groups_of(self, conn: Connection) -> List[str]:
        return self._state.groups_of(conn.id)

    def group_members(self, group: str) -> List[Connection]:
        return [Connection(c) for c in sorted(self._state.groups.get(group, ()))]

    def user_of(self, conn: Connection) -> Optional[str]:
        return self._state.users.get(conn.id)

    def session(self, conn: Connection, key: str) -> Optional[str]:
        return self._state.session_get(conn.id, key)

    @property
    def plugin(self):
        """The plugin object, to inspect its route-wide state."""
        return self._runtime.plugin

    def state(self, conn: Connection):
        """The state the SDK keeps for `conn` (from its accept or deferral until its on_close); KeyError when none."""
        return self._runtime.connections[conn]

    def states(self) -> int:
        """How many connections the SDK keeps state for."""
        return len(self._runtime.connections)

    def call(self, function):
        """Runs `function` as the plugin would in an event (for tests of the SDK's calls themselves)."""
        self._start()
        return self._run(function)

    def _run(self, callback):
        """Runs one event with this mock as the host, then the on_close calls the gateway would make for the
        connections that ended during it, then the history and storage events that came due, each followed by its
        own on_close calls."""
        previous = _host.install(self._state)
        try:
            result = callback()
            self._deliver_closes()
            # Bounded: a plugin that answers every answer with another request would never let the test go on.
            for _ in range(MAX_CHAINED_ANSWERS):
                if not self._state.answers:
                    break
                due = self._state.answers.popleft()
                self._runtime.stored(due.event, due.id, due.owner, due.result)
                self._deliver_closes()
            if self._state.answers:
                raise AssertionError(f"the plugin made a history or storage request from each of "
                                     f"{MAX_CHAINED_ANSWERS} answers in a row: a loop?")
            return result
        finally:
            _host.install(previous)

    def _deliver_closes(self):
        """Runs on_close for the connections that ended, as the gateway does once the current event returned."""
        # Bounded: each round ends connections that were live, and there are finitely many.
        for _ in range(self._next_id + 1):
            pending, self._state.pending_close = self._state.pending_close, []
            if not pending:
                break
            for conn, frame in pending:
                try:
                    self._runtime.close(conn, frame.code, frame.reason)
                finally:
                    self._state.forget(conn)
