"""The gateway side of the SDK inside a component: the ONE module that touches the bindings componentize-py
generates from `wit/plugin.wit` (`wit_world`). It answers the SDK's host calls through the imports, converting
between the bindings' types and the SDK's, and exports the events, running them through the shared `_runtime`.

Only a component imports it: the entry module `wssgate.build` generates calls `serve(PluginClass)` and names the
export classes below that the plugin's world has. Interfaces the world does not import (`timers`, `http`,
`history`, `storage`) are not in the bindings; the calls that need them then say so.

The contract's `u64` ids (connections, timers, requests) are Python ints on both sides: nothing to convert.
"""

from componentize_py_types import Err, Ok
from wit_world.imports import host as _h
from wit_world.imports import types as _t

from . import _host
from ._runtime import Runtime
from .connection import ConnectionInfo, Request
from .errors import Refused
from .history import HistoryEntry, HistoryPage, Position
from .http import HttpError, Response
from .memory import StorageError
from .storage import StoredValue

try:
    from wit_world.imports import timers as _timers
except ImportError:
    _timers = None
try:
    from wit_world.imports import http as _http
except ImportError:
    _http = None
try:
    from wit_world.imports import history as _history
except ImportError:
    _history = None
try:
    from wit_world.imports import storage as _storage
except ImportError:
    _storage = None

_runtime = None


def _name(case) -> str:
    """An enum case of the bindings by its contract name: ``Refusal.NOT_DEFERRED`` -> ``"not-deferred"``."""
    return case.name.lower().replace("_", "-")


def _refused(call):
    """Runs a host call that returns a `result`, raising its error as `Refused`."""
    try:
        return call()
    except Err as e:
        raise Refused(_name(e.value)) from None


def _message(value):
    return _t.Message_Text(value) if isinstance(value, str) else _t.Message_Binary(value)


class _Gateway:
    """The SDK's host calls, answered by the gateway through the component's imports."""

    def send(self, conn, message):
        _refused(lambda: _h.send(conn, _message(message)))

    def close(self, conn, code, reason):
        _h.close(conn, code, reason)

    def accept(self, conn):
        _refused(lambda: _h.accept(conn))

    def reject(self, conn, status, body):
        _refused(lambda: _h.reject(conn, status, body))

    def log(self, level, message):
        _refused(lambda: _h.log(_t.LogLevel[level.upper()], message))

    def setting(self, key):
        return _h.setting(key)

    def settings(self):
        return _h.settings()

    def join_group(self, conn, group):
        _refused(lambda: _h.join_group(conn, group))

    def leave_group(self, conn, group):
        _h.leave_group(conn, group)

    def publish(self, group, message, exclude):
        return _h.publish(group, _message(message), exclude)

    def group_size(self, group):
        return _h.group_size(group)

    def groups_of(self, conn):
        return _h.groups_of(conn)

    def bind_user(self, conn, uid):
        _refused(lambda: _h.bind_user(conn, uid))

    def unbind_user(self, conn):
        _h.unbind_user(conn)

    def send_to_user(self, uid, message):
        return _h.send_to_user(uid, _message(message))

    def is_user_online(self, uid):
        return _h.is_user_online(uid)

    def connections_of_user(self, uid):
        return _h.connections_of_user(uid)

    def broadcast(self, message, exclude):
        return _h.broadcast(_message(message), exclude)

    def session_set(self, conn, key, value):
        _refused(lambda: _h.session_set(conn, key, value))

    def session_get(self, conn, key):
        return _h.session_get(conn, key)

    def session_remove(self, conn, key):
        _h.session_remove(conn, key)

    def connection_info(self, conn):
        d = _h.connection_info(conn)
        if d is None:
            return None
        return ConnectionInfo(d.path, d.query, list(d.headers), d.remote_address, d.subprotocol, d.connected_at_ms)

    def set_timer(self, delay_ms, repeat, owner):
        if _timers is None:
            raise RuntimeError("this plugin starts a timer but defines no on_timer: add on_timer and rebuild")
        return _refused(lambda: _timers.set_timer(delay_ms, repeat, owner))

    def cancel_timer(self, timer):
        return _timers is not None and _timers.cancel_timer(timer)

    def send_request(self, request):
        if _http is None:
            raise RuntimeError("this plugin sends an HTTP request but defines no on_http_response: add it and rebuild")
        timeout = None if request.timeout is None else max(0, min(round(request.timeout * 1000), 2**32 - 1))
        raw = _http.HttpRequest(
            upstream=request.upstream,
            method=request.method,
            path=request.path,
            headers=list(request.headers),
            body=bytes(request.body),
            timeout_ms=timeout,
            owner=None if request.owner is None else request.owner.id,
        )
        return _refused(lambda: _http.send_request(raw))

    def cancel_request(self, request):
        return _http is not None and _http.cancel_request(request)

    def history_append(self, group, message, owner):
        _needs(_history, "appends to a group's history", "on_appended nor on_history")
        return _refused(lambda: _history.append(group, _message(message), owner))

    def history_read(self, group, since, limit, owner):
        _needs(_history, "reads a group's history", "on_appended nor on_history")
        raw = None if since is None else _history.Position(since.offset, since.epoch)
        return _refused(lambda: _history.read(group, raw, limit, owner))

    def storage_get(self, key, owner):
        _needs(_storage, "reads a key", "on_read nor on_written")
        return _refused(lambda: _storage.get(key, owner))

    def storage_set(self, key, value, ttl_ms, if_revision, owner):
        _needs(_storage, "writes a key", "on_read nor on_written")
        return _refused(lambda: _storage.set(key, value, ttl_ms, if_revision, owner))

    def storage_remove(self, key, if_revision, owner):
        _needs(_storage, "removes a key", "on_read nor on_written")
        return _refused(lambda: _storage.remove(key, if_revision, owner))


def _needs(interface, what, events) -> None:
    """A clear error for a call whose interface the component does not import (its plugin defines no event of it)."""
    if interface is None:
        raise RuntimeError(f"this plugin {what} but defines neither {events}: add one and rebuild")


def serve(plugin_class) -> None:
    """Makes `plugin_class` the component's plugin; called by the generated entry module at build time (the object
    itself is created at the instance's first call)."""
    global _runtime
    _runtime = Runtime(plugin_class)
    _host.install(_Gateway())


class ConnectionEvents:
    def on_connect(self, connection, request):
        req = Request(request.path, request.query, list(request.headers), request.remote_address,
                      request.subprotocol, request.restored)
        verdict = _runtime.connect(connection, req)
        if verdict.kind == "accept":
            return _t.Verdict_Accept()
        if verdict.kind == "defer":
            return _t.Verdict_Defer()
        return _t.Verdict_Reject(_t.Rejection(verdict.status, verdict.body))

    def on_message(self, connection, message):
        _runtime.message(connection, message.value)

    def on_close(self, connection, code, reason):
        _runtime.close(connection, code, reason)


class Lifecycle:
    def init(self, settings):
        refusal = _runtime.init(dict(settings))
        if refusal is not None:
            raise Err(refusal)


class TimerEvents:
    def on_timer(self, timer, owner):
        _runtime.timer(timer, owner)


class HttpEvents:
    def on_http_response(self, request, owner, response):
        if isinstance(response, Ok):
            r = response.value
            result = Response(r.status, list(r.headers), bytes(r.body))
        else:
            error = response.value
            result = HttpError(_error_kind(error), getattr(error, "value", None) or "")
        _runtime.response(request, owner, result)


def _error_kind(error) -> str:
    """``HttpError_ConnectFailed`` -> ``"connect-failed"``."""
    case = type(error).__name__.split("_", 1)[1]
    return "".join("-" + c.lower() if c.isupper() else c for c in case).lstrip("-")


def _storage_error(error) -> StorageError:
    """``StorageError_Conflict(7)`` -> ``StorageError("conflict", revision=7)``."""
    kind = _error_kind(error)
    if kind == "conflict":
        return StorageError.conflict(error.value)
    if kind == "unavailable":
        return StorageError.unavailable(error.value)
    return StorageError(kind)


class HistoryEvents:
    def on_appended(self, request, owner, answer):
        if isinstance(answer, Ok):
            result = Position(answer.value.offset, answer.value.epoch)
        else:
            result = _storage_error(answer.value)
        _runtime.stored("on_appended", request, owner, result)

    def on_history(self, request, owner, answer):
        if isinstance(answer, Ok):
            page = answer.value
            entries = [HistoryEntry(e.offset, e.message.value, e.appended_at_ms) for e in page.entries]
            result = HistoryPage(page.epoch, entries, page.complete)
        else:
            result = _storage_error(answer.value)
        _runtime.stored("on_history", request, owner, result)


class StorageEvents:
    def on_read(self, request, owner, answer):
        if isinstance(answer, Ok):
            v = answer.value
            result = None if v is None else StoredValue(bytes(v.value), v.revision, v.expires_at_ms)
        else:
            result = _storage_error(answer.value)
        _runtime.stored("on_read", request, owner, result)

    def on_written(self, request, owner, answer):
        result = answer.value if isinstance(answer, Ok) else _storage_error(answer.value)
        _runtime.stored("on_written", request, owner, result)
