"""Key-value storage (contract 1.2): a route with a ``[route.storage]`` table has keys of its own, kept past a restart
and seen alike by every node, bounded by the table's `max_key_bytes`, `max_value_bytes`, `max_keys` and `max_bytes`.
A plugin that uses them defines ``on_read(self, request, result, connections)`` and/or ``on_written(self, request,
result, connections)``; the build then imports the gateway's storage and exports its events.

    storage.get("topic:lobby", owner=conn)                      # the value arrives in on_read
    storage.set("topic:lobby", "Friday drinks", ttl=3600)       # expires in an hour; on_written gets its revision
    storage.set("counter", "8", if_revision=7, owner=conn)      # compare-and-set (0: only if it does not exist)
    storage.remove("topic:lobby")

    def on_read(self, request, result, connections):
        if isinstance(result, wssgate.StorageError): ...        # "unavailable"
        elif result is None: ...                                # no such key, or it expired
        else: request.owner.send(result.text())

Every write to the route's storage gets a revision larger than any before it (never 0), so a reader can tell two
values of one key apart and a writer can make its write depend on what it read. Calls return at once and raise
`Refused` when the gateway does not take them (see `wssgate.memory`); exactly one event follows each one it took,
unless its owner connection closes first or the instance is replaced or ends (which drops only the event: the
write still happens). Answers are exact: a read sees every write acknowledged before it, on any node. Requests
cannot be made from `init` (`Refused("not-now")`).
"""

from dataclasses import dataclass
from typing import Optional, Union

from . import _host
from .connection import Connection
from .memory import U64_MAX, StorageRequest, unsigned


@dataclass
class StoredValue:
    """A key's value, as the last acknowledged write left it."""

    value: bytes
    #: Grows with every write to the route's storage (so two writes of one key never share one); never 0.
    revision: int
    #: When the value expires, in milliseconds since the Unix epoch, if it was set with a time to live.
    expires_at_ms: Optional[int] = None

    def text(self) -> Optional[str]:
        """The value as text; None when it is not UTF-8."""
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _owner_id(owner: Optional[Connection]) -> Optional[int]:
    return None if owner is None else owner.id


def _revision(if_revision: Optional[int]) -> Optional[int]:
    return None if if_revision is None else unsigned("if_revision", if_revision)


def get(key: str, *, owner: Optional[Connection] = None) -> StorageRequest:
    """Reads `key`; one `on_read` follows, with a `StoredValue`, None when the key does not exist or has expired,
    or a `StorageError`. With an `owner`, the event is dropped if that connection closes first.

    Raises `Refused`, with no event to follow: ``"not-configured"`` (the route has no ``[route.storage]``),
    ``"invalid-name"`` (an empty key, or one past `max_key_bytes`), ``"not-now"`` (from `init`),
    ``"unknown-connection"`` (an owner this instance does not serve), ``"too-many-pending"``
    (`max_storage_requests_per_instance` requests already waiting)."""
    return StorageRequest(_host.current().storage_get(key, _owner_id(owner)), owner)


def set(key: str, value: Union[str, bytes, bytearray, memoryview], *, ttl: Optional[float] = None,
        if_revision: Optional[int] = None, owner: Optional[Connection] = None) -> StorageRequest:
    """Writes `key` (a `str` value is stored as UTF-8), expiring after `ttl` seconds when given (rounded to whole
    milliseconds; 0 expires it at once). With `if_revision`, only when the key's current revision is that one (0:
    only when the key does not exist): compare-and-set, whose event otherwise carries a ``"conflict"``
    `StorageError` with the current revision. One `on_written` follows once the write is durable, with the revision
    it made. Refused like `get`, and with ``"too-large"`` for a value past `max_value_bytes`."""
    if isinstance(value, str):
        value = value.encode()
    elif isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
    else:
        raise TypeError(f"a stored value is str or bytes, not {type(value).__name__}")
    ttl_ms = None
    if ttl is not None:
        if ttl < 0:
            raise ValueError(f"a time to live cannot be negative: {ttl}")
        # Past the u64 of milliseconds (an infinite ttl too) the key never expires in any store's lifetime.
        ttl_ms = U64_MAX if ttl * 1000 >= U64_MAX else round(ttl * 1000)
    return StorageRequest(
        _host.current().storage_set(key, value, ttl_ms, _revision(if_revision), _owner_id(owner)), owner
    )


def remove(key: str, *, if_revision: Optional[int] = None, owner: Optional[Connection] = None) -> StorageRequest:
    """Deletes `key` (`if_revision` as for `set`); deleting a key that does not exist succeeds, and like every write
    it takes a new revision. One `on_written` follows once the deletion is durable. Refused like `get`."""
    return StorageRequest(_host.current().storage_remove(key, _revision(if_revision), _owner_id(owner)), owner)
