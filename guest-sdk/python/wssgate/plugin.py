"""The `Plugin` base class, the verdicts `on_connect` answers with, and the table of every connection's state."""

from collections.abc import Mapping
from typing import Any, Iterator

from .connection import CloseFrame, Connection, Request


class Verdict:
    """How `on_connect` answers an upgrade; make one with `accept`, `defer` or `reject`."""

    __slots__ = ("kind", "state", "status", "body")

    def __init__(self, kind: str, state: Any = None, status: int = 0, body: str = ""):
        self.kind = kind
        self.state = state
        self.status = status
        self.body = body

    def __repr__(self):
        if self.kind == "reject":
            return f"reject({self.status}, {self.body!r})"
        return f"{self.kind}({self.state!r})"


def accept(state: Any = None) -> Verdict:
    """Open the WebSocket (the client gets 101); `state` is what the SDK keeps for the connection and hands to each
    of its later events."""
    return Verdict("accept", state)


def defer(state: Any = None) -> Verdict:
    """Answer later with `conn.accept()` or `conn.reject(...)`, from a timer or another event; the client waits, and
    gets 504 when the route's `accept_timeout_ms` (10 s by default) passes first. No message arrives before the
    accept; `on_close` follows whatever the outcome."""
    return Verdict("defer", state)


def reject(status: int, body: str = "") -> Verdict:
    """Refuse with an HTTP error (400-599; anything else is sent as 500) and a short body (at most 1 KiB is sent);
    no WebSocket, no `on_close`, no state kept."""
    return Verdict("reject", status=status, body=body)


class Connections(Mapping):
    """Every connection of this instance (open, or waiting for its accept) with its state, for the events that are
    not about one connection: `connections[conn]`, `connections.get(conn)`, iteration in connect order, `len`. The
    SDK owns the table: an entry is added by `on_connect` and removed after `on_close`."""

    def __init__(self):
        self._states = {}

    def __getitem__(self, conn: Connection) -> Any:
        return self._states[conn.id]

    def __iter__(self) -> Iterator[Connection]:
        return (Connection(i) for i in list(self._states))

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, conn) -> bool:
        return isinstance(conn, Connection) and conn.id in self._states


class Plugin:
    """Subclass this to write a plugin. One object of the class serves every connection of its route on one
    instance (route-wide state lives on `self`); what it keeps per connection is the state `on_connect` returns in
    its verdict, which the SDK stores and hands to each later event of that connection.

    Override any of `on_connect`, `on_message` and `on_close`; the defaults accept with state None and do nothing.
    The optional methods exist only when a plugin defines them (the build then imports and exports what they need):

    - ``init(self, settings: dict)``: the instance starts, with the route's settings; raise `SettingsRefused` to
      refuse them. Route-wide timers are started here.
    - ``on_timer(self, timer: Timer, connections: Connections)``: a timer fired (needed to start timers).
    - ``on_http_response(self, request: http.Sent, result: http.Response | http.HttpError, connections:
      Connections)``: an HTTP request was answered or failed (needed to send requests).
    - ``on_appended(self, request: StorageRequest, result: history.Position | StorageError, connections)`` and
      ``on_history(self, request, result: history.HistoryPage | StorageError, connections)``: a history append or
      read was answered (one of the two is needed to use `wssgate.history`).
    - ``on_read(self, request: StorageRequest, result: storage.StoredValue | None | StorageError, connections)``
      and ``on_written(self, request, result: int | StorageError, connections)``: a storage get, or a set or
      remove (the revision it made), was answered (one of the two is needed to use `wssgate.storage`).

    The class is created with no arguments, once per instance, before its first event.
    """

    def on_connect(self, conn: Connection, request: Request) -> Verdict:
        """A client asks to upgrade: return `accept(state)`, `defer(state)` or `reject(status, body)`. With
        `request.restored` the gateway replays this into a fresh instance for a connection the old one knew, so
        the plugin can rebuild its state."""
        return accept()

    def on_message(self, conn: Connection, state: Any, message) -> None:
        """A complete message arrived: `str` for text, `bytes` for binary. Mutate `state` in place to keep
        something for the connection's next event."""

    def on_close(self, conn: Connection, state: Any, close: CloseFrame) -> None:
        """The connection is gone; its state is dropped when this returns."""


#: The optional methods and what each needs from the gateway (see `wssgate.build`).
OPTIONAL_METHODS = ("init", "on_timer", "on_http_response", "on_appended", "on_history", "on_read", "on_written")

#: The events of history and of storage: a plugin that defines either of a pair imports the interface and exports
#: both events; an answer whose event the plugin does not define is dropped.
HISTORY_EVENTS = ("on_appended", "on_history")
STORAGE_EVENTS = ("on_read", "on_written")
