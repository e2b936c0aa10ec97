"""The deferred plugin on the mock host: every shared scenario (tests/scenarios/deferred.json, which the gateway
runs too), and what only the mock shows directly."""

from pathlib import Path

import pytest
from wssgate.testing import MockHost, load_scenarios, run_scenario

from deferred import Deferred

SCENARIOS = load_scenarios(Path(__file__).resolve().parents[2] / "scenarios" / "deferred.json")


def test_the_scenario_file_has_the_scenarios():
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario_passes_on_the_mock(scenario):
    run_scenario(Deferred, scenario)


def test_a_deferred_connection_gets_no_message_and_ends_with_on_close_when_it_never_opens():
    host = MockHost(Deferred, accept_timeout=0.1)
    opened = host.open("/d")
    waiting = host.connect("/d?wait")
    assert waiting.kind == "deferred" and host.status(waiting.conn) == "waiting"
    assert host.states() == 2
    with pytest.raises(AssertionError, match="waits for its accept"):
        host.message(waiting.conn, "hi")
    host.advance(0.1)
    assert host.rejection(waiting.conn)[0] == 504
    assert host.states() == 1, "its state ended with on_close"
    host.message(opened, "live")
    assert host.take_sent(opened) == ["live 1"]


def test_a_client_that_leaves_while_deferred_ends_like_a_close():
    host = MockHost(Deferred)
    conn = host.connect("/d?accept=1000").conn
    assert host.running_timers() == 1
    host.client_close(conn, 1000)
    assert host.states() == 0
    assert host.running_timers() == 0, "the timer it owned died with it"


def test_a_restart_rebuilds_state_through_on_connect_and_drops_the_old_timers():
    host = MockHost(Deferred)
    opened = host.open("/d")
    later = host.connect("/d?accept=1000").conn
    denied = host.open("/d?deny-on-restore")
    host.message(opened, "x")
    host.take_sent(opened)
    host.restart()
    assert host.running_timers() == 0, "the old instance's timers died with it"
    assert host.status(later) == "open", "replayed as restored, the waiting connection was accepted"
    assert host.closed(denied).code == 1008 and host.closed(denied).reason == "denied on restore"
    assert host.states() == 2
    host.message(opened, "count")
    assert host.take_sent(opened) == ["count 0"], "the state was rebuilt, not kept"


def test_logging_reaches_the_gateway_log():
    host = MockHost(Deferred)
    conn = host.open("/d")
    host.message(conn, "log")
    assert host.take_sent(conn) == ["logged"]
    assert ("info", "deferred logs through the logging module") in host.logs()


def test_host_calls_from_init_are_answered_and_init_can_refuse():
    host = MockHost(Deferred, settings={"init": "host-calls"})
    assert host.init() is None
    assert host.running_timers() == 1
    assert ("info", "init made every host call") in host.logs()
    assert MockHost(Deferred, settings={"init": "refuse"}).init() == "init was told to refuse"


def test_panic_raises_into_the_test():
    host = MockHost(Deferred)
    conn = host.open("/d")
    with pytest.raises(RuntimeError, match="asked to panic"):
        host.message(conn, "panic")


def test_close_takes_its_code_from_the_message_and_a_bad_one_is_1000():
    host = MockHost(Deferred)
    for text, code in [("close 4001", 4001), ("close 1005", 1008), ("close ²", 1000), ("close 70000", 1000)]:
        conn = host.open("/d")
        host.message(conn, text)
        assert host.closed(conn).code == code, text
