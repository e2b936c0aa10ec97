"""Group history (contract 1.2): a route with a ``[route.history]`` table keeps the last messages appended to each of
its groups (the last `size`, for `ttl_secs`), so that a client that was away can ask what it missed. A plugin that
appends or reads defines ``on_appended(self, request, result, connections)`` and/or ``on_history(self, request,
result, connections)``; the build then imports the gateway's history and exports its events.

Appending does not deliver. The plugin publishes the message to the group from `on_appended`, once it is durable
and its `Position` is known, so the position a member sees is never reused for another message after a crash:

    history.append("room:lobby", '{"text":"hi"}', owner=conn)

    def on_appended(self, request, result, connections):
        if isinstance(result, wssgate.StorageError): ...            # result.kind: "quota-exceeded", "unavailable"
        else: groups.publish("room:lobby", f"{result.epoch} {result.offset} hi")

    # A client that comes back asks for what came after the last position it saw:
    history.read("room:lobby", since=history.Position(41, "7f3a"), limit=50, owner=conn)

Offsets are consecutive within an epoch, so a gap is visible; when the store starts a group's stream again (its
data was lost, or every message expired) the epoch changes and offsets start again at 1. A read answers with a
`HistoryPage` whose `complete` says whether anything between the position asked for and the page is missing.
Calls return at once and raise `Refused` when the gateway does not take them (see `wssgate.memory`); exactly one
event follows each one it took, unless its owner connection closes first or the instance is replaced or ends.
Requests cannot be made from `init` (`Refused("not-now")`).
"""

from dataclasses import dataclass, field
from typing import List, Optional, Union

from . import _host
from .connection import Connection, Outgoing, payload
from .memory import StorageRequest, unsigned

#: The largest `limit` the contract carries (a `u32`); the route's `size` caps it long before.
_LIMIT_MAX = 2**32 - 1


@dataclass(frozen=True)
class Position:
    """Where a message sits in its group's history."""

    #: 1 for the first message appended to the group in this epoch, then one more for each message: consecutive, so
    #: a gap is visible.
    offset: int
    #: Names the group's history stream. It changes when the stream starts again, and offsets start again at 1:
    #: offsets of different epochs say nothing about each other.
    epoch: str


@dataclass
class HistoryEntry:
    """One message of a group's history: `message` is `str` for text, `bytes` for binary."""

    offset: int
    message: Union[str, bytes]
    #: When it was appended, in milliseconds since the Unix epoch (the appending node's clock).
    appended_at_ms: int


@dataclass
class HistoryPage:
    """A page of a group's history, oldest first."""

    #: The group's current epoch (empty when the group has no history).
    epoch: str = ""
    entries: List[HistoryEntry] = field(default_factory=list)
    #: True when `entries` starts right after the position asked for (or is the latest page, when none was given):
    #: nothing between them is missing. False when the position's epoch is not the group's current one (also when
    #: the group has no history), when its offset is past the group's last one, or when retention removed messages
    #: after it: the page then starts at the oldest message kept.
    complete: bool = True


def append(group: str, message: Outgoing, *, owner: Optional[Connection] = None) -> StorageRequest:
    """Appends `message` (`str`: text, bytes: binary) to `group`'s history; the group need not have members. Exactly
    one `on_appended` follows, with the message's `Position` (or a `StorageError`). With an `owner`, the event is
    dropped if that connection closes first (the message is appended all the same).

    Raises `Refused`, with no event to follow: ``"not-configured"`` (the route has no ``[route.history]``),
    ``"too-large"`` (past `max_message_bytes`), ``"invalid-name"`` (an empty group, or one past `max_name_bytes`),
    ``"not-now"`` (from `init`), ``"unknown-connection"`` (an owner this instance does not serve),
    ``"too-many-pending"`` (`max_storage_requests_per_instance` requests already waiting)."""
    owner_id = None if owner is None else owner.id
    return StorageRequest(_host.current().history_append(group, payload(message), owner_id), owner)


def read(group: str, since: Optional[Position] = None, limit: int = 100, *,
         owner: Optional[Connection] = None) -> StorageRequest:
    """Reads `group`'s history: with `since`, the messages after that position (at most `limit`, oldest first);
    without, the latest `limit` messages. `limit` is at least 1 (0 reads as 1) and at most the route's `size` (100
    by default). A page holds at most 4 MiB of message bytes, but always one message: a page since a position then
    ends early and the latest page keeps the newest, so read again from the last offset for more. Exactly one
    `on_history` follows, with a `HistoryPage` (or a `StorageError`). Refused like `append`; a negative `limit` or
    offset raises `ValueError`."""
    if since is not None and not isinstance(since, Position):
        raise TypeError(f"since is a history.Position or None, not {type(since).__name__}")
    if since is not None:
        unsigned("since.offset", since.offset)
    limit = min(unsigned("limit", limit), _LIMIT_MAX)
    owner_id = None if owner is None else owner.id
    return StorageRequest(_host.current().history_read(group, since, limit, owner_id), owner)
