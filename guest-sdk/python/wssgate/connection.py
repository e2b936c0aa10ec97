"""A handle to one client connection, and what the gateway tells about one: the upgrade request, its details, its
close."""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

from . import _host

#: What a plugin can send: text (`str`) goes out as a text message, bytes as a binary one.
Outgoing = Union[str, bytes, bytearray, memoryview]


def payload(message: Outgoing) -> Union[str, bytes]:
    """A message as the host takes it: `str` stays text, anything bytes-like becomes `bytes` (binary)."""
    if isinstance(message, str):
        return message
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError(f"a message is str (text) or bytes (binary), not {type(message).__name__}")


class Connection:
    """A cheap handle naming one connection; equal handles name the same connection. It stays valid as a name after
    the connection closes: calls on a closed connection raise `Refused("unknown-connection")` (a send:
    `Refused("closed")`) or do nothing. A plugin can act only on connections of its own route."""

    __slots__ = ("id",)

    def __init__(self, id: int):
        #: The gateway-wide unique id of the connection.
        self.id = id

    def __eq__(self, other):
        return isinstance(other, Connection) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"Connection({self.id})"

    def send(self, message: Outgoing) -> None:
        """Queues a message (`str`: text, bytes: binary); it is written when the current event returns (for a
        deferred connection, once it is accepted). Raises `Refused("closed")` when the connection is gone, and
        `Refused("queue-full")` when the client reads too slowly (the message is dropped and the gateway closes the
        connection with 1008)."""
        _host.current().send(self.id, payload(message))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Starts the close handshake; `on_close` follows. A code a peer may not send (1005, 1006, 1015, outside
        1000-4999) becomes 1008, and the reason is cut to 123 bytes. For a connection whose upgrade waits for its
        answer this refuses the upgrade instead: 403 (500 for 1011, 503 for 1001)."""
        _host.current().close(self.id, code, reason)

    def accept(self) -> None:
        """Opens a connection whose `on_connect` deferred: the client gets its 101. Raises `Refused("not-deferred")`
        when the connection is not waiting for its answer."""
        _host.current().accept(self.id)

    def reject(self, status: int, body: str = "") -> None:
        """Answers a deferred upgrade with an HTTP error (400-599, else 500; at most 1 KiB of body); `on_close`
        follows. Raises `Refused("not-deferred")` when the connection is not waiting for its answer."""
        _host.current().reject(self.id, status, body)

    def join(self, group: str) -> None:
        """Joins one of the route's groups (joining again changes nothing). Raises `Refused` with
        ``"unknown-connection"``, ``"name-too-long"`` or ``"too-many-groups"``."""
        _host.current().join_group(self.id, group)

    def leave(self, group: str) -> None:
        _host.current().leave_group(self.id, group)

    def groups(self) -> List[str]:
        """The groups this connection is in, sorted."""
        return sorted(_host.current().groups_of(self.id))

    def bind_user(self, uid: str) -> None:
        """Binds the connection to user `uid` (replacing an earlier binding). Raises `Refused` with
        ``"unknown-connection"`` or ``"name-too-long"``."""
        _host.current().bind_user(self.id, uid)

    def unbind_user(self) -> None:
        _host.current().unbind_user(self.id)

    def session_set(self, key: str, value: str) -> None:
        """Stores a value in the connection's session, which the gateway keeps across plugin restarts. Raises
        `Refused` with ``"unknown-connection"``, ``"name-too-long"`` or ``"too-large"`` (64 KiB per session); a
        refused value is not stored."""
        _host.current().session_set(self.id, key, value)

    def session_get(self, key: str) -> Optional[str]:
        return _host.current().session_get(self.id, key)

    def session_remove(self, key: str) -> None:
        _host.current().session_remove(self.id, key)

    def info(self) -> Optional["ConnectionInfo"]:
        """The connection's upgrade request and connect time; None once it is closed."""
        return _host.current().connection_info(self.id)


@dataclass
class Request:
    """What the client's upgrade request carried."""

    #: Path without the query, e.g. ``/wss``.
    path: str = "/"
    #: Raw query string without the leading ``?``; empty when there is none.
    query: str = ""
    #: Headers in the order sent; names are lower-case.
    headers: List[Tuple[str, str]] = field(default_factory=list)
    #: The client's address as ``ip:port``.
    remote_address: str = "127.0.0.1:40000"
    #: The subprotocol the gateway negotiated, if any.
    subprotocol: Optional[str] = None
    #: True when `on_connect` is replayed into a fresh instance (the old one failed) for a connection the old one
    #: knew. An open connection stays open on accept and defer alike, and is closed with 1008 (the rejection's body
    #: as the reason) on reject; one still waiting for its answer gets it as usual.
    restored: bool = False

    @classmethod
    def to(cls, target: str) -> "Request":
        """A request for `target` (a path, with ``?query`` if any), for tests."""
        path, _, query = target.partition("?")
        return cls(path=path, query=query)

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (case-insensitive)."""
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)


@dataclass
class ConnectionInfo:
    """What the gateway knows of a connection (see `Connection.info`)."""

    path: str
    query: str
    headers: List[Tuple[str, str]]
    remote_address: str
    subprotocol: Optional[str]
    #: When the upgrade request arrived, in milliseconds since the Unix epoch.
    connected_at_ms: int


@dataclass(frozen=True)
class CloseFrame:
    """How a connection closed: 1006 when the peer vanished without a close frame, or when a deferred connection
    never opened (the reason says why: "rejected", "accept timed out", "client left", ...)."""

    code: int
    reason: str = ""
