"""wssgate: write wssgate plugins in Python.

A plugin is a subclass of `Plugin` in a module of its own; `python -m wssgate.build APP_DIR OUT.wasm` makes it a
WebAssembly component the gateway loads, and `wssgate.testing.MockHost` runs it in plain pytest, without wasm:

    import wssgate

    class Greeter(wssgate.Plugin):
        def on_message(self, conn, state, message):
            if message == "tom":
                conn.send("ok")

Calls the gateway refuses raise `Refused`, whose `reason` is the contract's name of the refusal. A route's memory
(contract 1.2) is in `history` (each group's last messages) and `storage` (the route's keys), whose answers arrive
in the optional events `on_appended`, `on_history`, `on_read` and `on_written`. The raw bindings generated from
`wit/plugin.wit` stay inside `wssgate._wasm`: nothing here depends on them. See README.md.
"""

from . import groups, history, http, log, settings, storage, timers, users
from .connection import CloseFrame, Connection, ConnectionInfo, Request
from .errors import Refused, SettingsRefused
from .memory import StorageError, StorageRequest
from .plugin import Connections, Plugin, Verdict, accept, defer, reject
from .timers import Timer

__all__ = [
    "CloseFrame", "Connection", "ConnectionInfo", "Connections", "Plugin", "Refused", "Request", "SettingsRefused",
    "StorageError", "StorageRequest", "Timer", "Verdict", "accept", "defer", "groups", "history", "http", "log",
    "reject", "settings", "storage", "timers", "users",
]
