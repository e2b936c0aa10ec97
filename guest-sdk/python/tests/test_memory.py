"""The mock's history and storage keep the contract's rules, as the gateway's stores and the Rust SDK's mock do:
offsets and epochs, retention and `complete`, compare-and-set and revisions, time to live, quotas, refusals in the
contract's order, and when the events come (or do not)."""

import pytest

import wssgate
from wssgate import Refused, StorageError, StorageRequest, history, storage
from wssgate.history import HistoryPage, Position
from wssgate.storage import StoredValue
from wssgate.testing import HistoryConfig, MockHost, StorageConfig


class Recorder(wssgate.Plugin):
    """Records every history and storage event as (event, request id, result); tests make calls with `host.call`."""

    def __init__(self):
        self.events = []

    def on_appended(self, request, result, connections):
        self.events.append(("appended", request.id, result))

    def on_history(self, request, result, connections):
        self.events.append(("history", request.id, result))

    def on_read(self, request, result, connections):
        self.events.append(("read", request.id, result))

    def on_written(self, request, result, connections):
        self.events.append(("written", request.id, result))


def mock(history_config=None, storage_config=None, **options):
    return MockHost(Recorder, history=history_config or HistoryConfig(),
                    storage=storage_config or StorageConfig(), **options)


def events(host):
    taken, host.plugin.events = host.plugin.events, []
    return taken


def append(host, group, text):
    """Appends through the plugin and returns the one on_appended's result."""
    request = host.call(lambda: history.append(group, text))
    got = events(host)
    assert [(e, i) for e, i, _ in got] == [("appended", request.id)], got
    return got[0][2]


def read(host, group, since=None, limit=100) -> HistoryPage:
    host.call(lambda: history.read(group, since, limit))
    (event, _, page), = events(host)
    assert event == "history" and isinstance(page, HistoryPage), page
    return page


def offsets(page):
    return [e.offset for e in page.entries]


def write(host, call):
    """Writes through the plugin and returns the one on_written's result."""
    host.call(call)
    (event, _, result), = events(host)
    assert event == "written"
    return result


def get(host, key):
    host.call(lambda: storage.get(key))
    (event, _, result), = events(host)
    assert event == "read" and not isinstance(result, StorageError), result
    return result


def refusal(host, call):
    with pytest.raises(Refused) as refused:
        host.call(call)
    return refused.value.reason


# History.

def test_offsets_are_consecutive_from_1_per_group_and_events_come_after_the_event_in_order():
    host = mock()

    def three():
        requests = [history.append(g, "m") for g in ("a", "b", "a")]
        # Nothing is delivered while the event runs.
        assert host.plugin.events == []
        return requests

    requests = host.call(three)
    got = events(host)
    assert [(i, p.offset) for _, i, p in got] == [(requests[0].id, 1), (requests[1].id, 1), (requests[2].id, 2)]
    epoch = host.history_epoch("a")
    assert epoch and epoch != host.history_epoch("b")
    assert append(host, "a", "m") == Position(3, epoch)
    page = read(host, "a", limit=10)
    assert (offsets(page), page.complete, page.entries[0].message) == ([1, 2, 3], True, "m")


def test_size_retention_makes_pages_incomplete_and_limit_pages_through_what_is_kept():
    host = mock(HistoryConfig(size=3))
    for text in "12345":
        append(host, "g", text)
    epoch = host.history_epoch("g")
    latest = read(host, "g")
    assert (offsets(latest), latest.complete, latest.epoch) == ([3, 4, 5], True, epoch)
    # Offset 2 was dropped after 1: the page starts at the oldest kept, and says so.
    assert (lambda p: (offsets(p), p.complete))(read(host, "g", Position(1, epoch))) == ([3, 4, 5], False)
    assert (lambda p: (offsets(p), p.complete))(read(host, "g", Position(2, epoch))) == ([3, 4, 5], True)
    assert (lambda p: (offsets(p), p.complete))(read(host, "g", Position(3, epoch), 1)) == ([4], True)
    assert (lambda p: (offsets(p), p.complete))(read(host, "g", Position(5, epoch))) == ([], True)
    # A position this stream never had, or another epoch's, is not a place to continue from.
    assert (lambda p: (offsets(p), p.complete))(read(host, "g", Position(9, epoch))) == ([], False)
    assert (lambda p: (offsets(p), p.complete))(read(host, "g", Position(4, "another"))) == ([3, 4, 5], False)
    # A limit of 0 reads one; the latest page without a position is the newest messages.
    assert offsets(read(host, "g", limit=0)) == [5]
    assert offsets(read(host, "g", limit=2)) == [4, 5]


def test_a_page_holds_at_most_4_mib_of_messages_as_in_the_gateway():
    host = mock(HistoryConfig(max_message_bytes=800_000, size=10))
    host.call(lambda: [history.append("big", bytes([i]) * 700_000) for i in range(6)])
    assert len(events(host)) == 6, "the appends' events"
    epoch = host.history_epoch("big")
    # Six would be 4.2 MB, past 4 MiB: a page since a position ends early, the latest page keeps the newest.
    assert offsets(read(host, "big", Position(0, epoch), 10)) == [1, 2, 3, 4, 5]
    assert offsets(read(host, "big", limit=10)) == [2, 3, 4, 5, 6]


def test_ttl_expires_messages_on_the_mocks_clock_and_an_emptied_group_starts_a_new_epoch():
    host = mock(HistoryConfig(ttl=10))
    first = append(host, "g", "old")
    host.advance(6)
    append(host, "g", "new")
    assert host.history("g")[0].appended_at_ms == 0
    host.advance(4)
    # 10 s after the first: it is gone, the second (6 s old) is kept.
    page = read(host, "g", Position(0, first.epoch))
    assert (offsets(page), page.complete, page.entries[0].appended_at_ms) == ([2], False, 6000)
    host.advance(6)
    assert host.history("g") == [] and host.history_epoch("g") is None
    gone = read(host, "g", Position(2, first.epoch))
    assert (gone.epoch, gone.complete) == ("", False)
    none = read(host, "g")
    assert (none.epoch, none.complete) == ("", True)
    again = append(host, "g", "again")
    assert again.offset == 1 and again.epoch != first.epoch


def test_history_quotas_refuse_a_group_too_many_and_bytes_past_max_bytes_but_size_retention_frees_room():
    host = mock(HistoryConfig(size=2, max_groups=2, max_bytes=10))
    append(host, "a", "1234")
    append(host, "b", "1234")
    assert append(host, "c", "1") == StorageError.quota_exceeded()
    assert append(host, "b", "123") == StorageError.quota_exceeded()
    assert append(host, "b", "12").offset == 2
    # 10 of 10 bytes, b is full: its next message drops its oldest (4 bytes), which makes room for 4.
    assert append(host, "b", "12345") == StorageError.quota_exceeded()
    assert append(host, "b", "1234").offset == 3
    assert host.history("c") == [] and len(host.history("b")) == 2


def test_text_and_binary_messages_come_back_as_they_went_and_weigh_their_utf8_bytes():
    host = mock(HistoryConfig(max_message_bytes=4))
    append(host, "g", "éé")
    append(host, "g", b"\x00\xff")
    assert [e.message for e in read(host, "g").entries] == ["éé", b"\x00\xff"]
    assert refusal(host, lambda: history.append("g", "ééé")) == "too-large"


def test_a_reset_history_starts_every_group_again_in_a_new_epoch():
    host = mock()
    before = append(host, "g", "one")
    host.reset_history()
    after = append(host, "g", "two")
    assert after.offset == 1 and after.epoch != before.epoch
    page = read(host, "g", before)
    assert (offsets(page), page.complete) == ([1], False)


def test_history_calls_are_refused_as_the_gateway_refuses_them():
    host = mock(HistoryConfig(max_message_bytes=4), max_storage_requests=2)
    conn = host.open("/t")
    assert refusal(host, lambda: history.append("", "m")) == "invalid-name"
    assert refusal(host, lambda: history.read("g" * 257)) == "invalid-name"
    assert refusal(host, lambda: history.append("g", "12345")) == "too-large"
    assert refusal(host, lambda: history.append("g", "m", owner=wssgate.Connection(99))) == "unknown-connection"

    def third():
        history.append("g", "m", owner=conn)
        storage.get("k", owner=conn)
        with pytest.raises(Refused, match="too-many-pending"):
            history.read("g", owner=conn)

    host.call(third)
    assert len(events(host)) == 2, "a refused request gets no event"
    unconfigured = MockHost(Recorder)
    assert refusal(unconfigured, lambda: history.append("g", "m")) == "not-configured"
    assert refusal(unconfigured, lambda: storage.get("k")) == "not-configured"


@pytest.mark.parametrize("options,call,reason", [
    # not-configured comes first, then too-large, invalid-name, not-now, unknown-connection, too-many-pending.
    ({"history": None}, lambda c: history.append("", "12345", owner=c), "not-configured"),
    ({}, lambda c: history.append("", "12345", owner=c), "too-large"),
    ({}, lambda c: history.append("", "m", owner=c), "invalid-name"),
    ({}, lambda c: history.read("", owner=c), "invalid-name"),
    ({"storage": None}, lambda c: storage.set("", b"12345", owner=c), "not-configured"),
    ({}, lambda c: storage.set("", b"12345", owner=c), "too-large"),
    ({}, lambda c: storage.set("", b"1", owner=c), "invalid-name"),
    ({}, lambda c: storage.remove("", owner=c), "invalid-name"),
    ({}, lambda c: storage.get("k", owner=c), "unknown-connection"),
    ({"max_storage_requests": 0}, lambda c: storage.get("k", owner=c), "unknown-connection"),
    ({"max_storage_requests": 0}, lambda c: storage.get("k"), "too-many-pending"),
])
def test_when_several_refusals_apply_the_first_in_the_contracts_order_is_given(options, call, reason):
    settings = {"history": HistoryConfig(max_message_bytes=4), "storage": StorageConfig(max_value_bytes=4)}
    settings.update(options)
    host = MockHost(Recorder, **settings)
    gone = host.open("/t")
    host.client_close(gone)
    assert refusal(host, lambda: call(gone)) == reason


def test_requests_are_refused_in_init_with_not_now_before_an_unknown_owner():
    class Early(Recorder):
        def init(self, settings):
            self.early = []
            for call in (lambda: history.append("g", "m"), lambda: storage.set("k", "v"),
                         lambda: storage.get("k", owner=wssgate.Connection(7))):
                try:
                    call()
                except Refused as refused:
                    self.early.append(refused.reason)

    host = MockHost(Early, history=HistoryConfig(), storage=StorageConfig())
    assert host.init() is None
    assert host.plugin.early == ["not-now", "not-now", "not-now"] and host.plugin.events == []


# When events come.

class Owned(Recorder):
    """Appends and writes for the connection that sends a message, then closes it when the message says so."""

    def on_message(self, conn, state, message):
        history.append("g", "kept", owner=conn)
        storage.set("k", "kept", owner=conn)
        history.append("g", "unowned")
        if message == "close":
            conn.close(1000, "bye")

    def on_close(self, conn, state, close):
        self.events.append(("close", conn.id, close.code))


def test_an_owners_close_drops_its_events_but_keeps_the_writes_and_on_close_comes_first():
    host = MockHost(Owned, history=HistoryConfig(), storage=StorageConfig())
    conn = host.open("/t")
    host.message(conn, "close")
    got = events(host)
    assert [e[0] for e in got] == ["close", "appended"] and got[1][2].offset == 2
    assert len(host.history("g")) == 2 and host.stored("k").value == b"kept"


def test_the_event_carries_an_equal_request_with_its_owner_and_the_owners_state():
    class Owner(wssgate.Plugin):
        def on_connect(self, conn, request):
            return wssgate.accept({"name": "ann"})

        def on_message(self, conn, state, message):
            self.request = storage.set("k", message, owner=conn)

        def on_written(self, request, result, connections):
            assert request == self.request and hash(request) == hash(self.request)
            request.owner.send(f"{connections[request.owner]['name']} wrote revision {result}")

    host = MockHost(Owner, storage=StorageConfig())
    conn = host.open("/o")
    host.message(conn, "v")
    assert host.take_sent(conn) == ["ann wrote revision 1"]
    assert host.plugin.request.owner == conn and isinstance(host.plugin.request, StorageRequest)


def test_a_restart_drops_every_event_still_due():
    class Restarting(Recorder):
        def on_message(self, conn, state, message):
            history.append("g", "lost")
            raise RuntimeError("trap")

    host = MockHost(Restarting, history=HistoryConfig())
    conn = host.open("/t")
    with pytest.raises(RuntimeError, match="trap"):
        host.message(conn, "x")
    # The request made in the event that failed: in the gateway, the instance is replaced before its answer.
    assert len(host._state.answers) == 1
    host.restart()
    assert host.plugin.events == [] and len(host.history("g")) == 1


def test_an_answer_can_make_the_next_request_and_its_event_follows_in_the_same_step():
    class Chain(Recorder):
        def on_message(self, conn, state, message):
            storage.set("n", "1")

        def on_written(self, request, result, connections):
            super().on_written(request, result, connections)
            if result < 3:
                storage.set("n", str(result + 1))

    host = MockHost(Chain, storage=StorageConfig())
    host.message(host.open("/c"), "go")
    assert [r for _, _, r in events(host)] == [1, 2, 3] and host.stored("n").value == b"3"


def test_a_plugin_that_answers_every_answer_with_a_request_is_stopped():
    class Loop(Recorder):
        def on_message(self, conn, state, message):
            storage.get("k")

        def on_read(self, request, result, connections):
            storage.get("k")

    host = MockHost(Loop, storage=StorageConfig())
    with pytest.raises(AssertionError, match="a loop"):
        host.message(host.open("/l"), "go")


def test_a_failing_store_answers_unavailable_and_changes_nothing():
    host = mock()
    append(host, "g", "one")
    host.fail_store("broker away")
    unavailable = StorageError.unavailable("broker away")
    assert append(host, "g", "two") == unavailable
    assert write(host, lambda: storage.set("k", "v")) == unavailable
    host.call(lambda: (history.read("g"), storage.get("k")))
    assert [r for _, _, r in events(host)] == [unavailable, unavailable]
    host.fail_store(None)
    assert append(host, "g", "three").offset == 2
    assert host.stored("k") is None


def test_an_answer_whose_event_the_plugin_does_not_define_is_dropped():
    class AppendsOnly(wssgate.Plugin):
        def on_appended(self, request, result, connections):
            self.position = result

    host = MockHost(AppendsOnly, history=HistoryConfig())
    host.call(lambda: (history.read("g"), history.append("g", "m")))
    assert host.plugin.position.offset == 1


@pytest.mark.parametrize("call,events_needed", [
    (lambda: history.append("g", "m"), "history-events"),
    (lambda: storage.get("k"), "storage-events"),
])
def test_a_plugin_using_history_or_storage_without_its_events_is_refused_as_the_gateway_refuses_to_load_it(
        call, events_needed):
    class Forgetful(wssgate.Plugin):
        pass

    host = MockHost(Forgetful, history=HistoryConfig(), storage=StorageConfig())
    with pytest.raises(RuntimeError, match=f"does not export `wssgate:plugin/{events_needed}`"):
        host.call(call)


# Storage.

def test_revisions_grow_with_every_write_of_the_route_and_compare_and_set_checks_them():
    host = mock()
    assert get(host, "k") is None
    one = write(host, lambda: storage.set("k", "a", if_revision=0))
    assert one > 0
    assert write(host, lambda: storage.set("k", "b", if_revision=0)) == StorageError.conflict(one)
    other = write(host, lambda: storage.set("j", "x"))
    two = write(host, lambda: storage.set("k", b"b", if_revision=one))
    assert one < other < two
    assert get(host, "k") == StoredValue(b"b", two, None)
    assert write(host, lambda: storage.remove("k", if_revision=one)) == StorageError.conflict(two)
    removed = write(host, lambda: storage.remove("k", if_revision=two))
    assert removed > two, "a removal is a write with a revision"
    assert get(host, "k") is None
    # Removing what does not exist succeeds; compare-and-set sees it as revision 0.
    assert write(host, lambda: storage.remove("k")) > removed
    assert isinstance(write(host, lambda: storage.remove("k", if_revision=0)), int)
    assert write(host, lambda: storage.remove("j", if_revision=0)) == StorageError.conflict(other)


def test_a_value_with_a_ttl_expires_on_the_mocks_clock():
    host = mock()
    host.advance(1)
    write(host, lambda: storage.set("k", "v", ttl=5))
    assert get(host, "k").expires_at_ms == 6000
    host.advance(4.999)
    assert get(host, "k") is not None
    host.advance(0.001)
    assert get(host, "k") is None
    # Expired is absent, for compare-and-set too; a ttl of 0 is expired at once.
    assert isinstance(write(host, lambda: storage.set("k", "w", if_revision=0, ttl=0)), int)
    assert get(host, "k") is None


def test_storage_quotas_and_caps_refuse_what_passes_them():
    host = MockHost(Recorder, storage=StorageConfig(max_key_bytes=3, max_value_bytes=4, max_keys=2, max_bytes=10))
    assert refusal(host, lambda: storage.get("")) == "invalid-name"
    assert refusal(host, lambda: storage.remove("abcd")) == "invalid-name"
    assert refusal(host, lambda: storage.get("éé")) == "invalid-name", "a key's bytes count, not its characters"
    assert refusal(host, lambda: storage.set("a", "12345")) == "too-large"
    write(host, lambda: storage.set("a", "1234"))
    write(host, lambda: storage.set("b", "1", ttl=1))
    assert write(host, lambda: storage.set("c", "1")) == StorageError.quota_exceeded()
    # Replacing a key does not add one, and its old bytes make room: 5 + 2 of 10 bytes becomes 5 + 5.
    write(host, lambda: storage.set("b", "1234"))
    write(host, lambda: storage.remove("b"))
    # 5 + 6 bytes: past max_bytes with a key to spare.
    assert write(host, lambda: storage.set("bb", "1234")) == StorageError.quota_exceeded()
    write(host, lambda: storage.set("c", "1", ttl=1))
    # An expired key no longer counts.
    host.advance(1)
    write(host, lambda: storage.set("d", "1"))
    assert host.stored("a").value == b"1234"


def test_a_read_value_is_a_copy_the_plugin_cannot_change_the_store_through():
    host = mock()
    append(host, "g", "m")
    read(host, "g").entries[0].offset = 99
    assert host.history("g")[0].offset == 1


# The API's own checks and values.

@pytest.mark.parametrize("call,error", [
    (lambda: storage.set("k", "v", if_revision=-1), ValueError),
    (lambda: storage.remove("k", if_revision=2**64), ValueError),
    (lambda: storage.set("k", "v", if_revision="3"), TypeError),
    (lambda: storage.set("k", "v", ttl=-0.5), ValueError),
    (lambda: storage.set("k", 3), TypeError),
    (lambda: history.read("g", limit=-1), ValueError),
    (lambda: history.read("g", Position(-1, "e")), ValueError),
    (lambda: history.read("g", (1, "e")), TypeError),
    (lambda: history.append("g", 3), TypeError),
])
def test_numbers_and_values_the_contract_cannot_carry_are_a_clear_error_before_any_request(call, error):
    host = mock()
    with pytest.raises(error):
        host.call(call)
    assert host.plugin.events == [] and host._state.last_store_request == 0


def test_huge_limits_and_ttls_mean_as_much_as_the_contract_carries():
    host = mock(HistoryConfig(size=2))
    for text in "123":
        append(host, "g", text)
    assert offsets(read(host, "g", limit=2**40)) == [2, 3]
    write(host, lambda: storage.set("k", "v", ttl=float("inf")))
    assert host.stored("k").expires_at_ms == 2**64 - 1


def test_errors_and_values_read_as_the_contract_says():
    assert str(StorageError.conflict(7)) == "conflict: the key is at revision 7"
    assert str(StorageError.conflict(0)) == "conflict: the key does not exist"
    assert str(StorageError.quota_exceeded()) == "quota-exceeded"
    assert str(StorageError.unavailable("broker away")) == "unavailable: broker away"
    assert StoredValue(b"caf\xc3\xa9", 1).text() == "café" and StoredValue(b"\xff", 1).text() is None
    assert StorageRequest(3) == StorageRequest(3, wssgate.Connection(1)) and StorageRequest(3) != StorageRequest(4)
