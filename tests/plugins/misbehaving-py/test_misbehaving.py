"""The misbehaving plugin on the mock host: what can be shown without the gateway (the loop and the bomb only end
under the gateway's limits, so they are not run here)."""

import pytest
from wssgate.testing import MockHost

from misbehaving import Misbehaving


def test_everything_is_accepted_and_echoed_text_and_binary():
    host = MockHost(Misbehaving)
    conn = host.open("/m?anything")
    host.message(conn, "tom")
    host.message(conn, b"\x00\xff")
    assert host.take_sent(conn) == ["tom", b"\x00\xff"]


def test_throw_raises_out_of_the_event_and_others_are_still_served():
    host = MockHost(Misbehaving)
    bad = host.open("/m")
    good = host.open("/m")
    with pytest.raises(RuntimeError, match="asked to throw"):
        host.message(bad, "throw")
    host.message(good, "still here")
    assert host.take_sent(good) == ["still here"]
