"""Tests of the {name} plugin on the SDK's mock host: no gateway, no wasm."""

from wssgate.testing import MockHost

from plugin import Echo


def test_echoes_text_and_binary():
    host = MockHost(Echo)
    conn = host.open("/{name}")
    host.message(conn, "tom")
    host.message(conn, b"\x01\x02")
    assert host.take_sent(conn) == ["tom", b"\x01\x02"]


def test_counts_per_connection():
    host = MockHost(Echo)
    first, second = host.open("/{name}"), host.open("/{name}")
    host.message(first, "hi")
    host.message(first, "count")
    host.message(second, "count")
    assert host.take_sent(first) == ["hi", "count 1"]
    assert host.take_sent(second) == ["count 0"]
