"""What `wssgate.history` and `wssgate.storage` share: the handle of a request, why one the gateway took failed, and
the checks on the numbers they pass to it. Both are a route's memory, kept past a restart and across nodes, and both
answer the same way: a call returns at once with a `StorageRequest`, and exactly one event follows with the answer,
unless the request is cancelled first (its owner connection closes, or the instance that made it is replaced or
retired by a reload). Cancelling drops only the event: a write the store took still happens.

A request the gateway does not take raises `Refused` at once, with no event to follow. Its `reason` is one of
`REFUSALS`, and when several apply the first in that order is given.
"""

from dataclasses import dataclass
from typing import Optional

from .connection import Connection

#: Why the gateway did not take a history or storage request, in the order it checks them.
REFUSALS = ("not-configured", "too-large", "invalid-name", "not-now", "unknown-connection", "too-many-pending")

#: The largest number the contract's `u64` holds: offsets, revisions and times to live beyond it cannot be sent.
U64_MAX = 2**64 - 1


def unsigned(name: str, value: int) -> int:
    """`value` checked to be a whole number the contract's `u64` holds, so the gateway's bindings never meet one they
    cannot carry (a number from a client is the plugin's to check; a wrong one here is a plugin bug)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} is an int, not {type(value).__name__}")
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be from 0 to {U64_MAX}, not {value}")
    return value


class StorageRequest:
    """A history or storage request the gateway took; an equal value reaches its event."""

    __slots__ = ("id", "owner")

    def __init__(self, id: int, owner: Optional[Connection] = None):
        #: The gateway-wide unique id of the request.
        self.id = id
        #: The connection the request was made for, if any: its event is dropped if that connection closes first.
        self.owner = owner

    def __eq__(self, other):
        return isinstance(other, StorageRequest) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"StorageRequest({self.id}, owner={self.owner!r})"


#: The ways a request the gateway took can fail, by their contract names.
ERROR_KINDS = ("conflict", "quota-exceeded", "unavailable")


@dataclass(frozen=True)
class StorageError:
    """Why a request the gateway took failed; it arrives in the request's event instead of the answer.

    - ``"conflict"``: a write's `if_revision` did not match; `revision` is the key's current one (0 when the key does
      not exist);
    - ``"quota-exceeded"``: the write would pass one of the route's quotas (`max_bytes`, `max_keys`, `max_groups`):
      nothing was written;
    - ``"unavailable"``: the store could not answer (`message` says why). A write may or may not have happened when
      the store stopped answering in the middle of it.
    """

    kind: str
    revision: int = 0
    message: str = ""

    @classmethod
    def conflict(cls, revision: int) -> "StorageError":
        return cls("conflict", revision=revision)

    @classmethod
    def quota_exceeded(cls) -> "StorageError":
        return cls("quota-exceeded")

    @classmethod
    def unavailable(cls, message: str) -> "StorageError":
        return cls("unavailable", message=message)

    def __str__(self):
        if self.kind == "conflict":
            detail = f"the key is at revision {self.revision}" if self.revision else "the key does not exist"
            return f"conflict: {detail}"
        return f"{self.kind}: {self.message}" if self.message else self.kind
