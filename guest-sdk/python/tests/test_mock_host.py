"""The mock host keeps the gateway's rules: each test here would fail on a mock that drifted from them."""

import pytest

import wssgate
from wssgate import Refused, groups, http, timers, users
from wssgate.testing import MockHost


class Echo(wssgate.Plugin):
    """Echoes, counting messages per connection; `close N` closes with code N."""

    def on_connect(self, conn, request):
        if request.query == "no":
            return wssgate.reject(401, "no token")
        if request.query == "odd-status":
            return wssgate.reject(200, "x" * 2000)
        return wssgate.accept({"n": 0})

    def on_message(self, conn, state, message):
        state["n"] += 1
        if isinstance(message, str) and message.startswith("close "):
            conn.close(int(message[6:]), "bye" * 100)
        else:
            conn.send(message)


def test_state_is_per_connection_and_dropped_after_close():
    host = MockHost(Echo)
    a, b = host.open("/e"), host.open("/e")
    host.message(a, "x")
    host.message(a, "y")
    assert host.state(a) == {"n": 2} and host.state(b) == {"n": 0}
    host.client_close(a, 1000)
    assert host.states() == 1 and host.closed(a).code == 1000
    with pytest.raises(KeyError):
        host.state(a)


def test_rejections_are_sent_as_the_gateway_sends_them():
    host = MockHost(Echo)
    assert host.connect("/e?no").rejection == (401, "no token")
    status, body = host.connect("/e?odd-status").rejection
    assert status == 500 and len(body) == 1024
    assert host.states() == 0


@pytest.mark.parametrize("code,sent", [(1000, 1000), (4000, 4000), (1005, 1008), (1006, 1008), (1015, 1008),
                                       (999, 1008), (5000, 1008), (2000, 1008)])
def test_a_close_code_a_peer_may_not_send_becomes_1008(code, sent):
    host = MockHost(Echo)
    conn = host.open("/e")
    host.message(conn, f"close {code}")
    frame = host.closed(conn)
    assert frame.code == sent and len(frame.reason.encode()) == 123


def test_sends_to_a_closed_connection_are_refused_and_messages_to_it_dropped():
    host = MockHost(Echo)
    conn = host.open("/e")
    host.client_close(conn, 1001)
    with pytest.raises(Refused) as refused:
        host.call(lambda: conn.send("late"))
    assert refused.value.reason == "closed" and str(refused.value) == "closed"
    host.message(conn, "ignored")
    assert host.take_sent(conn) == []


def test_a_slow_client_is_closed_with_1008_when_its_queue_is_full():
    host = MockHost(Echo, max_outbound_bytes=10)
    conn = host.open("/e")
    host.message(conn, "123456")
    with pytest.raises(Refused, match="queue-full"):
        host.message(conn, "789012")
    assert host.closed(conn).code == 1008 and host.closed(conn).reason == "slow consumer"


class Deferring(wssgate.Plugin):
    """Defers every upgrade; a timer accepts `?accept`, rejects `?reject`; `accept` from on_connect is refused."""

    def on_connect(self, conn, request):
        try:
            conn.accept()
        except Refused as refused:
            self.early = refused.reason
        if request.query in ("accept", "reject"):
            timers.after(0.05, owner=conn)
        conn.send("queued while waiting")
        return wssgate.defer(request.query)

    def on_timer(self, timer, connections):
        conn = timer.owner
        if connections[conn] == "accept":
            conn.accept()
            with pytest.raises(Refused, match="not-deferred"):
                conn.accept()
        else:
            conn.reject(429, "slow down")
            with pytest.raises(Refused, match="unknown-connection"):
                conn.accept()

    def on_close(self, conn, state, close):
        self.last_close = close


def test_a_deferred_upgrade_is_accepted_later_and_gets_what_was_queued():
    host = MockHost(Deferring)
    upgrade = host.connect("/d?accept")
    assert upgrade.kind == "deferred" and upgrade.status is None
    assert host.plugin.early == "not-deferred"
    host.advance(0.049)
    assert host.status(upgrade.conn) == "waiting"
    host.advance(0.001)
    assert host.status(upgrade.conn) == "open"
    assert host.take_sent(upgrade.conn) == ["queued while waiting"]


def test_a_deferred_upgrade_rejected_later_ends_with_on_close_1006():
    host = MockHost(Deferring)
    conn = host.connect("/d?reject").conn
    host.advance(1)
    assert host.rejection(conn) == (429, "slow down")
    assert host.plugin.last_close == wssgate.CloseFrame(1006, "rejected")


def test_an_unanswered_upgrade_times_out_with_504():
    host = MockHost(Deferring, accept_timeout=2)
    conn = host.connect("/d?wait").conn
    host.advance(1.999)
    assert host.status(conn) == "waiting"
    host.advance(0.001)
    assert host.rejection(conn)[0] == 504
    assert host.plugin.last_close == wssgate.CloseFrame(1006, "accept timed out")


class Ticker(wssgate.Plugin):
    def init(self, settings):
        if "bad" in settings:
            raise wssgate.SettingsRefused("bad setting")
        self.ticks = []
        self.timer = timers.every(1)

    def on_message(self, conn, state, message):
        if message == "stop":
            conn.send(str(self.timer.cancel()))
        else:
            timers.after(float(message), owner=conn)

    def on_timer(self, timer, connections):
        self.ticks.append((timer.id, timer.owner))


def test_timers_fire_in_order_on_the_virtual_clock_and_die_with_their_owner():
    host = MockHost(Ticker)
    conn = host.open("/t")
    host.message(conn, "2.5")
    host.advance(3)
    route_timer = host.plugin.timer.id
    assert host.plugin.ticks == [(route_timer, None), (route_timer, None), (2, conn), (route_timer, None)]
    host.message(conn, "10")
    assert host.running_timers() == 2
    host.client_close(conn)
    assert host.running_timers() == 1
    other = host.open("/t")
    host.message(other, "stop")
    assert host.take_sent(other) == ["True"] and host.running_timers() == 0


def test_init_refusal_and_timer_caps():
    assert MockHost(Ticker, settings={"bad": "1"}).init() == "bad setting"
    host = MockHost(Ticker, max_timers=1)
    conn = host.open("/t")
    with pytest.raises(Refused, match="too-many-timers"):
        host.message(conn, "1")


def test_timers_without_on_timer_are_refused_as_the_gateway_refuses_to_load_it():
    class NoTimerEvents(wssgate.Plugin):
        def on_message(self, conn, state, message):
            timers.after(1)

    host = MockHost(NoTimerEvents)
    with pytest.raises(RuntimeError, match="defines no on_timer"):
        host.message(host.open("/"), "x")


class Social(wssgate.Plugin):
    def on_message(self, conn, state, message):
        verb, _, arg = message.partition(" ")
        try:
            if verb == "join":
                conn.join(arg)
            elif verb == "publish":
                conn.send(str(groups.publish(arg, "news", exclude=[conn])))
            elif verb == "user":
                conn.bind_user(arg)
            elif verb == "dm":
                conn.send(str(users.send(arg, "dm")))
            elif verb == "set":
                conn.session_set("k", arg)
            elif verb == "all":
                conn.send(str(groups.broadcast("all")))
        except Refused as refused:
            conn.send(f"refused: {refused}")


def test_groups_users_sessions_and_their_caps():
    host = MockHost(Social, max_name_bytes=4, max_groups_per_connection=1, max_session_bytes=6)
    a, b = host.open("/s"), host.open("/s")
    for conn in (a, b):
        host.message(conn, "join room")
    host.message(a, "join two")
    host.message(a, "join toolong")
    host.message(b, "publish room")
    assert host.take_sent(a) == ["refused: too-many-groups", "refused: name-too-long", "news"]
    assert host.take_sent(b) == ["1"]
    host.message(a, "user al")
    host.message(b, "dm al")
    host.message(a, "set 12345")
    host.message(a, "set 1234567")
    assert host.user_of(a) == "al" and host.session(a, "k") == "12345"
    assert host.take_sent(a) == ["dm", "refused: too-large"]
    assert host.take_sent(b) == ["1"]
    host.client_close(a)
    assert host.group_members("room") == [b] and host.user_of(a) is None
    host.message(b, "all")
    assert host.take_sent(b) == ["all", "1"]


class Fetcher(wssgate.Plugin):
    def init(self, settings):
        try:
            http.get("backend", "/")
        except Refused as refused:
            self.from_init = refused.reason

    def on_message(self, conn, state, message):
        try:
            http.request("GET" if message != "bad" else "BAD METHOD", "backend", "/users/7", owner=conn)
        except Refused as refused:
            conn.send(f"refused: {refused}")

    def on_http_response(self, request, result, connections):
        if isinstance(result, http.HttpError):
            request.owner.send(f"failed: {result}")
        else:
            request.owner.send(f"{result.status} {result.text()}")


def test_http_requests_wait_for_the_test_and_are_refused_as_the_gateway_refuses_them():
    host = MockHost(Fetcher, upstreams=["backend"])
    conn = host.open("/f")
    assert host.plugin.from_init == "not-now"
    host.message(conn, "go")
    host.message(conn, "go")
    host.message(conn, "bad")
    (first, request), (second, _) = host.http_requests()
    assert request.path == "/users/7" and first.owner == conn
    host.respond(first, http.Response(200, body=b"alice"))
    host.fail(second, http.HttpError("connect-failed", "refused"))
    assert host.take_sent(conn) == ["refused: invalid-request", "200 alice", "failed: connect-failed: refused"]
    assert MockHost(Fetcher).init() is None and MockHost(Fetcher).plugin is not None
    ungranted = MockHost(Fetcher)
    other = ungranted.open("/f")
    ungranted.message(other, "go")
    assert ungranted.take_sent(other) == ["refused: not-granted"]


def test_a_host_call_outside_an_event_says_how_to_test():
    with pytest.raises(RuntimeError, match="MockHost"):
        wssgate.Connection(1).send("x")


def test_on_connect_must_return_a_verdict():
    class Forgetful(wssgate.Plugin):
        def on_connect(self, conn, request):
            pass

    with pytest.raises(TypeError, match="must return wssgate.accept"):
        MockHost(Forgetful).connect("/")
