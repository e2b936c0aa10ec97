"""The route's ``[route.settings]`` table from the gateway config, as string keys and values. `init` receives them
as a dict; any event can read them with `get` and `all`."""

from typing import Dict, Optional

from . import _host


def get(key: str) -> Optional[str]:
    """The value of `key`, if the route sets it."""
    return _host.current().setting(key)


def all() -> Dict[str, str]:
    """Every setting (in key order)."""
    return dict(_host.current().settings())
