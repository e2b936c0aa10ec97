"""Shared plugin scenarios (`tests/scenarios/*.json`, format in `tests/scenarios/README.md`): scripts of what clients
do and must see, run here against `MockHost` and by the repository's end-to-end tests against the real gateway. A
scenario that passes on one and fails on the other is a difference between the mock and the gateway: a bug."""

import json
from collections import deque

from ..connection import Request

#: The path scenarios connect to.
SCENARIO_PATH = "/scenario"


def load_scenarios(path) -> list:
    """The scenarios of a scenario file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)["scenarios"]


def _message(step: dict):
    if "text" in step:
        return step["text"]
    if "binary" in step:
        return bytes(step["binary"])
    raise ValueError(f"a message step needs `text` or `binary`: {step}")


def run_scenario(plugin_class, scenario: dict) -> None:
    """Runs `scenario` against a fresh mock of `plugin_class`; raises AssertionError at the first step that does not
    go as written."""
    from . import MockHost

    host = MockHost(
        plugin_class,
        settings=scenario.get("settings", {}),
        accept_timeout=scenario.get("accept_timeout_ms", 10_000) / 1000,
    )
    name = scenario["name"]
    clients = {}
    inbox = {}
    for n, step in enumerate(scenario["steps"]):
        where = f"{name}, step {n}"

        def conn(client):
            assert client in clients, f"{where}: client {client} never connected"
            return clients[client]

        if "connect" in step:
            client = step["connect"]
            upgrade = host.connect(request=Request(path=SCENARIO_PATH, query=step.get("query", "")))
            if upgrade.conn is not None:
                clients[client] = upgrade.conn
            got = _await_answer(host, upgrade.conn) if upgrade.kind == "deferred" else upgrade.status
            assert got == step["expect"], f"{where}: client {client}'s upgrade answered {got}, not {step['expect']}"
        elif "send" in step:
            host.message(conn(step["send"]), _message(step))
        elif "receive" in step:
            client = step["receive"]
            queue = inbox.setdefault(client, deque())
            queue.extend(host.take_sent(conn(client)))
            got = queue.popleft() if queue else None
            want = _message(step)
            assert got == want, f"{where}: client {client} received {got!r} next, not {want!r}"
        elif "wait_ms" in step:
            host.advance(step["wait_ms"] / 1000)
        elif "close" in step:
            host.client_close(conn(step["close"]), step["code"], "")
        elif "closed" in step:
            client = step["closed"]
            frame = host.closed(conn(client))
            got = frame and frame.code
            assert got == step["code"], f"{where}: client {client} was closed with {got}, not {step['code']}"
        else:
            raise ValueError(f"{where}: unknown step {step}")


def _await_answer(host, conn) -> int:
    """Lets the clock run 1 ms at a time until the deferred upgrade of `conn` is answered (by the plugin or the
    accept timeout): 101 when it opened (even if it closed again since), else the rejection's status."""
    for _ in range(host._state.limits.accept_timeout_ms + 2):
        status = host.status(conn)
        if status == "waiting":
            host.advance(0.001)
        elif status == "rejected":
            return host.rejection(conn)[0]
        else:
            return 101
    raise AssertionError(f"the deferred upgrade of connection {conn.id} was never answered")
