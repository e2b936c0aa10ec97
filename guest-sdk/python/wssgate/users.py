"""User ids, like GatewayWorker's bindUid / sendToUid / isUidOnline: one user may have several connections (phone
and desktop). Bind with `conn.bind_user(uid)`.

    conn.bind_user("alice")
    if users.is_online("bob"):
        users.send("bob", "alice says hi")
"""

from typing import List

from . import _host
from .connection import Connection, Outgoing, payload


def send(uid: str, message: Outgoing) -> int:
    """Sends `message` to every connection of user `uid`; returns how many."""
    return _host.current().send_to_user(uid, payload(message))


def is_online(uid: str) -> bool:
    """Whether user `uid` has a connection on this route (open, or waiting for its answer)."""
    return _host.current().is_user_online(uid)


def connections(uid: str) -> List[Connection]:
    """The connections of user `uid`."""
    return [Connection(c) for c in _host.current().connections_of_user(uid)]
