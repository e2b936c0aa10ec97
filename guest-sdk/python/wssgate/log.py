"""Lines for the gateway's log, tagged by the gateway with the route and plugin that wrote them.

The gateway takes at most `max_plugin_log_lines_per_sec` lines a second from one instance (100 by default) and
drops the rest, counting them in its metrics: `info()` and its siblings drop such a line silently, `try_log()`
raises `Refused("rate-limited")`. The standard `logging` module is bridged to it too (from the instance's start,
with the root logger at DEBUG), so ``logging.getLogger(__name__).info(...)`` reaches the gateway's log. What a
plugin prints reaches the log as well, as the plugin's stdout and stderr lines.

    from wssgate import log
    log.info("started")
"""

import logging

from . import _host
from .errors import Refused

#: The gateway's levels, lowest first.
LEVELS = ("trace", "debug", "info", "warn", "error")


def try_log(level: str, message: str) -> None:
    """Writes `message` at `level` (one of `LEVELS`); raises `Refused("rate-limited")` when the line was dropped."""
    if level not in LEVELS:
        raise ValueError(f"a log level is one of {', '.join(LEVELS)}, not {level!r}")
    _host.current().log(level, message)


def log(level: str, message: str) -> None:
    """Writes `message` at `level`; a line past the instance's rate is dropped silently."""
    try:
        try_log(level, message)
    except Refused:
        pass


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)


class _Bridge(logging.Handler):
    """Sends `logging` records to the gateway's log while a host takes calls (outside one they have nowhere to
    go)."""

    def emit(self, record):
        if _host._current is None:
            return
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        elif record.levelno >= logging.INFO:
            level = "info"
        else:
            level = "debug"
        log(level, self.format(record))


def install_bridge() -> None:
    """Routes the `logging` module to the gateway's log; a second call changes nothing."""
    root = logging.getLogger()
    if not any(isinstance(h, _Bridge) for h in root.handlers):
        root.addHandler(_Bridge())
        root.setLevel(logging.DEBUG)
