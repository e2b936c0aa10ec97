"""Which host the SDK's calls reach: the gateway (set by `wssgate._wasm` inside a component) or a `MockHost` (set
by `wssgate.testing` while it runs an event). Every public call goes through `current()`, so the user API never
depends on which one it is."""

_current = None


def current():
    """The host that takes calls now; a clear error outside the gateway and outside a mock's event."""
    if _current is None:
        raise RuntimeError(
            "a wssgate host call was made outside an event: inside the gateway calls work from init and the "
            "on_* methods; in tests, drive the plugin through wssgate.testing.MockHost"
        )
    return _current


def install(host):
    """Makes `host` take calls from now on; returns the one it replaces (the mock puts it back after an event)."""
    global _current
    previous, _current = _current, host
    return previous
