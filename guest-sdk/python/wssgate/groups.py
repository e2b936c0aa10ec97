"""Groups (rooms, channels, topics) and broadcasts, like GatewayWorker's joinGroup / sendToGroup / sendToAll. Join
and leave with `conn.join(group)` and `conn.leave(group)`; a closing connection leaves its groups by itself.

    conn.join("lobby")
    groups.publish("lobby", "hello, lobby", exclude=[conn])   # everyone but the sender
    groups.broadcast("server restarting soon")
"""

from typing import Iterable, List

from . import _host
from .connection import Connection, Outgoing, payload


def _ids(connections: Iterable[Connection]) -> List[int]:
    return [c.id for c in connections]


def publish(group: str, message: Outgoing, exclude: Iterable[Connection] = ()) -> int:
    """Sends `message` to every member of `group` except `exclude`; returns how many it was queued for (members on
    other cluster nodes are sent to but not counted)."""
    return _host.current().publish(group, payload(message), _ids(exclude))


def size(group: str) -> int:
    """How many connections are in `group`."""
    return _host.current().group_size(group)


def broadcast(message: Outgoing, exclude: Iterable[Connection] = ()) -> int:
    """Sends `message` to every open connection of the route except `exclude`; returns how many."""
    return _host.current().broadcast(payload(message), _ids(exclude))
