"""One plugin instance as the SDK runs it: the plugin object and its connections' state, and the rules that tie the
state to the events. The gateway glue (`wssgate._wasm`) and the mock host (`wssgate.testing`) both drive this same
code, so what a unit test shows is what the gateway does."""

from typing import Optional

from . import log
from .connection import CloseFrame, Connection, Request
from .errors import SettingsRefused
from .http import Sent
from .memory import StorageRequest
from .plugin import HISTORY_EVENTS, OPTIONAL_METHODS, STORAGE_EVENTS, Connections, Plugin, Verdict
from .timers import Timer


def exports_of(plugin_class) -> dict:
    """Which optional events `plugin_class` handles, by method name: what the build exports and imports."""
    return {name: callable(getattr(plugin_class, name, None)) for name in OPTIONAL_METHODS}


def uses_history(exports: dict) -> bool:
    """Whether a plugin with these events imports history (and exports its events)."""
    return any(exports[name] for name in HISTORY_EVENTS)


def uses_storage(exports: dict) -> bool:
    """Whether a plugin with these events imports storage (and exports its events)."""
    return any(exports[name] for name in STORAGE_EVENTS)


class Runtime:
    """The plugin object (created before the first event) and the state of each connection."""

    def __init__(self, plugin_class):
        if not (isinstance(plugin_class, type) and issubclass(plugin_class, Plugin)):
            raise TypeError(f"{plugin_class!r} is not a subclass of wssgate.Plugin")
        self.plugin_class = plugin_class
        self.exports = exports_of(plugin_class)
        self.connections = Connections()
        self._plugin = None

    @property
    def plugin(self):
        if self._plugin is None:
            log.install_bridge()
            self._plugin = self.plugin_class()
        return self._plugin

    def init(self, settings: dict) -> Optional[str]:
        """Runs the plugin's `init`, if it has one; returns its refusal's message, or None."""
        plugin = self.plugin
        if not self.exports["init"]:
            return None
        try:
            plugin.init(dict(settings))
        except SettingsRefused as refusal:
            return str(refusal) or "the plugin refused its settings"
        return None

    def connect(self, connection: int, request: Request) -> Verdict:
        """Runs `on_connect`; keeps the state of an accept or a defer."""
        verdict = self.plugin.on_connect(Connection(connection), request)
        if not isinstance(verdict, Verdict):
            raise TypeError(
                "on_connect must return wssgate.accept(state), wssgate.defer(state) or "
                f"wssgate.reject(status, body), not {verdict!r}"
            )
        if verdict.kind != "reject":
            self.connections._states[connection] = verdict.state
        return verdict

    def message(self, connection: int, message) -> None:
        """Runs `on_message` with the connection's state; a connection without state (the gateway sends none) is
        ignored."""
        states = self.connections._states
        if connection in states:
            self.plugin.on_message(Connection(connection), states[connection], message)

    def close(self, connection: int, code: int, reason: str) -> None:
        """Runs `on_close` with the connection's state, which is dropped first (so it goes even if `on_close`
        raises)."""
        states = self.connections._states
        if connection in states:
            state = states.pop(connection)
            self.plugin.on_close(Connection(connection), state, CloseFrame(code, reason))

    def timer(self, timer: int, owner: Optional[int]) -> None:
        if self.exports["on_timer"]:
            owner_conn = None if owner is None else Connection(owner)
            self.plugin.on_timer(Timer(timer, owner_conn), self.connections)

    def response(self, request: int, owner: Optional[int], result) -> None:
        """Delivers an HTTP answer: `result` is an `http.Response` or an `http.HttpError`."""
        if self.exports["on_http_response"]:
            owner_conn = None if owner is None else Connection(owner)
            self.plugin.on_http_response(Sent(request, owner_conn), result, self.connections)

    def stored(self, event: str, request: int, owner: Optional[int], result) -> None:
        """Delivers a history or storage answer to the plugin's `event` ("on_appended", "on_history", "on_read" or
        "on_written"), if it defines it: `result` is the answer, or a `StorageError`."""
        if self.exports[event]:
            owner_conn = None if owner is None else Connection(owner)
            getattr(self.plugin, event)(StorageRequest(request, owner_conn), result, self.connections)
