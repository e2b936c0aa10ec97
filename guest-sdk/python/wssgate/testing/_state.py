"""What the mock gateway records while a plugin runs, and its side of every host call, with the gateway's rules and
default caps. `MockHost` owns one and installs it as the SDK's host while it runs an event."""

from collections import deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

from ..connection import CloseFrame, ConnectionInfo, Request
from ..errors import Refused
from ._memory import MockMemory


@dataclass
class Limits:
    """The caps the gateway enforces, with its defaults (the `[limits]` keys of its config)."""

    name_bytes: int = 256
    groups_per_connection: int = 64
    timers: int = 1024
    session_bytes: int = 64 * 1024
    outbound_bytes: int = 1 << 20
    accept_timeout_ms: int = 10_000
    requests_in_flight: int = 1024
    request_bytes: int = 1 << 20
    #: `max_storage_requests_per_instance`: history and storage requests waiting for their events.
    store_requests: int = 1024


@dataclass
class MockTimer:
    due: int
    period: Optional[int]
    owner: Optional[int]


def sendable(code: int) -> int:
    """The close codes a server may put on the wire (RFC 6455 7.4); the gateway sends 1008 for any other."""
    return code if 1000 <= code <= 1003 or 1007 <= code <= 1011 or 3000 <= code <= 4999 else 1008


def cut(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8 `text`, cut on a character boundary."""
    return text.encode()[:limit].decode(errors="ignore")


def gateway_rejection(status: int, body: str) -> Tuple[int, str]:
    """A rejection as the gateway sends it: an HTTP error status (else 500) and at most 1 KiB of body."""
    return (status if 400 <= status <= 599 else 500, cut(body, 1024))


def refused_by_close(code: int) -> Tuple[Tuple[int, str], str]:
    """The answer to an upgrade closed before it was answered, and the reason its on_close gets: shutdown (1001) is
    a 503, a trap (1011) a 500, anything else a 403."""
    if code == 1001:
        return (503, "server shutting down\n"), "server shutting down"
    if code == 1011:
        return (500, "plugin error\n"), "plugin error"
    return (403, "rejected\n"), "rejected"


def _is_token(text: str) -> bool:
    """An HTTP token (RFC 9110 5.6.2): what a method and a header name must be."""
    return bool(text) and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in text)


@dataclass
class MockState(MockMemory):
    """Every connection's place in its life, what the plugin did, and the host calls' answers (those of history and
    storage in `MockMemory`)."""

    limits: Limits = field(default_factory=Limits)
    route_settings: Dict[str, str] = field(default_factory=dict)
    upstreams: Set[str] = field(default_factory=set)
    #: Whether the plugin defines on_timer / on_http_response (without them, the gateway would not load it).
    timer_events: bool = False
    http_events: bool = False
    #: "connecting" (its on_connect runs), "waiting" (deferred), "open", "rejected" or "closed".
    status: Dict[int, str] = field(default_factory=dict)
    rejections: Dict[int, Tuple[int, str]] = field(default_factory=dict)
    close_frames: Dict[int, CloseFrame] = field(default_factory=dict)
    accept_deadlines: Dict[int, int] = field(default_factory=dict)
    requests: Dict[int, Request] = field(default_factory=dict)
    #: Messages sent per connection, not yet taken by the test.
    sent: Dict[int, list] = field(default_factory=dict)
    #: Connections that ended during the current event, whose on_close is due when it returns.
    pending_close: List[Tuple[int, CloseFrame]] = field(default_factory=list)
    logs: List[Tuple[str, str]] = field(default_factory=list)
    groups: Dict[str, Set[int]] = field(default_factory=dict)
    users: Dict[int, str] = field(default_factory=dict)
    sessions: Dict[int, Dict[str, str]] = field(default_factory=dict)
    timers: Dict[int, MockTimer] = field(default_factory=dict)
    #: The clock, in milliseconds, moved only by `MockHost.advance`.
    now: int = 0
    last_timer: int = 0
    outbound: dict = field(default_factory=dict)
    last_request: int = 0
    in_init: bool = False

    def is_live(self, conn: int) -> bool:
        return self.status.get(conn) in ("connecting", "waiting", "open")

    def _check_live(self, conn: int) -> None:
        if not self.is_live(conn):
            raise Refused("unknown-connection")

    def _check_name(self, name: str) -> None:
        if len(name.encode()) > self.limits.name_bytes:
            raise Refused("name-too-long")

    def end(self, conn: int, frame: CloseFrame, rejection: Optional[Tuple[int, str]] = None) -> None:
        """Ends a live connection as the gateway does: an open one with `frame`; one whose upgrade has no answer yet
        with `rejection` (by default the one for a close with `frame`'s code), its on_close getting 1006. The
        on_close follows when the current event returns."""
        if not self.is_live(conn):
            return
        self.accept_deadlines.pop(conn, None)
        if self.status[conn] == "open":
            self.status[conn] = "closed"
            self.close_frames[conn] = frame
        else:
            by_close, why = refused_by_close(frame.code)
            self.status[conn] = "rejected"
            if rejection is None:
                self.rejections[conn], frame = by_close, CloseFrame(1006, why)
            else:
                self.rejections[conn], frame = rejection, CloseFrame(1006, frame.reason)
        self.pending_close.append((conn, frame))

    def forget(self, conn: int) -> None:
        """Everything an ended connection leaves behind: groups, user, session, owned timers and requests (HTTP,
        history, storage)."""
        for members in self.groups.values():
            members.discard(conn)
        self.groups = {g: m for g, m in self.groups.items() if m}
        self.users.pop(conn, None)
        self.sessions.pop(conn, None)
        self.timers = {i: t for i, t in self.timers.items() if t.owner != conn}
        self.outbound = {i: r for i, r in self.outbound.items() if (r.owner and r.owner.id) != conn}
        # Its requests' events are dropped; what they wrote stays written.
        self.answers = deque(a for a in self.answers if a.owner != conn)

    def next_due_timer(self, until: int) -> Optional[Tuple[int, Optional[int]]]:
        """The earliest timer due by `until`, taken off (or rescheduled when it repeats), with its owner."""
        due = [(t.due, i) for i, t in self.timers.items() if t.due <= until]
        if not due:
            return None
        _, timer_id = min(due)
        timer = self.timers[timer_id]
        self.now = max(self.now, timer.due)
        if timer.period is None:
            del self.timers[timer_id]
        else:
            timer.due += timer.period
        return timer_id, timer.owner

    def _deliver(self, message, targets) -> int:
        delivered = 0
        for target in targets:
            try:
                self.send(target, message)
                delivered += 1
            except Refused:
                pass
        return delivered

    # The host calls, as `wssgate._wasm` answers them from the gateway.

    def send(self, conn, message):
        if not self.is_live(conn):
            raise Refused("closed")
        queue = self.sent.setdefault(conn, [])
        size = lambda m: len(m.encode()) if isinstance(m, str) else len(m)  # noqa: E731
        queued = sum(size(m) for m in queue)
        if queued > 0 and queued + size(message) > self.limits.outbound_bytes:
            # The gateway drops what waits for a client this slow, and closes it.
            queue.clear()
            self.end(conn, CloseFrame(1008, "slow consumer"))
            raise Refused("queue-full")
        queue.append(message)

    def close(self, conn, code, reason):
        self.end(conn, CloseFrame(sendable(code), cut(reason, 123)))

    def accept(self, conn):
        self._check_live(conn)
        if self.status[conn] != "waiting":
            raise Refused("not-deferred")
        self.accept_deadlines.pop(conn, None)
        self.status[conn] = "open"

    def reject(self, conn, status, body):
        self._check_live(conn)
        if self.status[conn] != "waiting":
            raise Refused("not-deferred")
        self.end(conn, CloseFrame(1006, "rejected"), gateway_rejection(status, body))

    def log(self, level, message):
        self.logs.append((level, message))

    def setting(self, key):
        return self.route_settings.get(key)

    def settings(self):
        return sorted(self.route_settings.items())

    def join_group(self, conn, group):
        self._check_live(conn)
        self._check_name(group)
        if conn in self.groups.get(group, ()):
            return
        if sum(conn in m for m in self.groups.values()) >= self.limits.groups_per_connection:
            raise Refused("too-many-groups")
        self.groups.setdefault(group, set()).add(conn)

    def leave_group(self, conn, group):
        members = self.groups.get(group)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.groups[group]

    def publish(self, group, message, exclude):
        return self._deliver(message, sorted(m for m in self.groups.get(group, ()) if m not in exclude))

    def group_size(self, group):
        return len(self.groups.get(group, ()))

    def groups_of(self, conn):
        return sorted(g for g, m in self.groups.items() if conn in m)

    def bind_user(self, conn, uid):
        self._check_live(conn)
        self._check_name(uid)
        self.users[conn] = uid

    def unbind_user(self, conn):
        self.users.pop(conn, None)

    def send_to_user(self, uid, message):
        return self._deliver(message, self.connections_of_user(uid))

    def is_user_online(self, uid):
        return bool(self.connections_of_user(uid))

    def connections_of_user(self, uid):
        return sorted(c for c, u in self.users.items() if u == uid)

    def broadcast(self, message, exclude):
        return self._deliver(message, sorted(c for c, s in self.status.items() if s == "open" and c not in exclude))

    def session_set(self, conn, key, value):
        self._check_live(conn)
        self._check_name(key)
        session = self.sessions.setdefault(conn, {})
        others = sum(len(k.encode()) + len(v.encode()) for k, v in session.items() if k != key)
        if others + len(key.encode()) + len(value.encode()) > self.limits.session_bytes:
            raise Refused("too-large")
        session[key] = value

    def session_get(self, conn, key):
        return self.sessions.get(conn, {}).get(key)

    def session_remove(self, conn, key):
        self.sessions.get(conn, {}).pop(key, None)

    def connection_info(self, conn):
        if not self.is_live(conn) or conn not in self.requests:
            return None
        r = self.requests[conn]
        return ConnectionInfo(r.path, r.query, list(r.headers), r.remote_address, r.subprotocol, 0)

    def set_timer(self, delay_ms, repeat, owner):
        if not self.timer_events:
            raise RuntimeError(
                "the plugin starts timers but defines no on_timer, so the gateway would not load it (\"imports "
                "`wssgate:plugin/timers` but does not export `wssgate:plugin/timer-events`\"): define on_timer"
            )
        if owner is not None:
            self._check_live(owner)
        if len(self.timers) >= self.limits.timers:
            raise Refused("too-many-timers")
        self.last_timer += 1
        period = max(delay_ms, 1) if repeat else None
        self.timers[self.last_timer] = MockTimer(self.now + delay_ms, period, owner)
        return self.last_timer

    def cancel_timer(self, timer):
        return self.timers.pop(timer, None) is not None

    def send_request(self, request):
        if not self.http_events:
            raise RuntimeError(
                "the plugin sends HTTP requests but defines no on_http_response, so the gateway would not load it "
                "(\"imports `wssgate:plugin/http` but does not export `wssgate:plugin/http-events`\")"
            )
        if self.in_init:
            raise Refused("not-now")
        if request.upstream not in self.upstreams:
            raise Refused("not-granted")
        if request.owner is not None and not self.is_live(request.owner.id):
            raise Refused("unknown-connection")
        header_bytes = sum(len(n.encode()) + len(v.encode()) + 4 for n, v in request.headers)
        if len(request.body) + header_bytes > self.limits.request_bytes:
            raise Refused("too-large")
        # The gateway takes header values of visible ASCII, spaces and tabs.
        valid_headers = all(_is_token(n) and all(c == "\t" or " " <= c < "\x7f" for c in v) for n, v in request.headers)
        if not _is_token(request.method) or not request.path.startswith("/") or not valid_headers:
            raise Refused("invalid-request")
        if len(self.outbound) >= self.limits.requests_in_flight:
            raise Refused("too-many-in-flight")
        self.last_request += 1
        self.outbound[self.last_request] = request
        return self.last_request

    def cancel_request(self, request):
        return self.outbound.pop(request, None) is not None


