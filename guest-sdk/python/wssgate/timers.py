"""Timers, like Workerman's Timer::add: one-shot or repeating, delivered to the plugin's ``on_timer(self, timer,
connections)``, which a plugin that starts timers must define (the build then imports the gateway's timers).

    reminder = timers.after(30, owner=conn)   # fires once in 30 s; dies with `conn`
    tick = timers.every(1.5)                 # route-wide, every 1.5 s
    tick.cancel()

Delays are in seconds (float), rounded to whole milliseconds. A timer belongs to the instance that started it: it
dies with that instance and with the connection that owns it.
"""

from typing import Optional

from . import _host
from .connection import Connection


class Timer:
    """A running timer's handle; the same (equal) value reaches `on_timer` when it fires."""

    __slots__ = ("id", "owner")

    def __init__(self, id: int, owner: Optional[Connection] = None):
        self.id = id
        #: The connection the timer was started for, if any: the timer is cancelled when it closes.
        self.owner = owner

    def __eq__(self, other):
        return isinstance(other, Timer) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"Timer({self.id}, owner={self.owner!r})"

    def cancel(self) -> bool:
        """Stops the timer; False when it had already finished or is not this instance's."""
        return _host.current().cancel_timer(self.id)


def _millis(seconds: float) -> int:
    if seconds < 0:
        raise ValueError(f"a timer's delay cannot be negative: {seconds}")
    return round(seconds * 1000)


def after(seconds: float, owner: Optional[Connection] = None) -> Timer:
    """Fires once after `seconds`. Raises `Refused("unknown-connection")` when `owner` is not a live connection this
    instance serves, and `Refused("too-many-timers")` past `max_timers_per_instance` (1024 by default)."""
    return _start(seconds, False, owner)


def every(seconds: float, owner: Optional[Connection] = None) -> Timer:
    """Fires every `seconds` until cancelled (or its `owner` closes); refused like `after`."""
    return _start(seconds, True, owner)


def _start(seconds: float, repeat: bool, owner: Optional[Connection]) -> Timer:
    owner_id = None if owner is None else owner.id
    return Timer(_host.current().set_timer(_millis(seconds), repeat, owner_id), owner)
