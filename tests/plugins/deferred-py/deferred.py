"""The Python port of the deferred test plugin (`tests/plugins/deferred/src/lib.rs`), behaviour for behaviour: the
1.0 contract's connection life (deferred accept, per-connection state, the close rules). Its scenarios
(`tests/scenarios/deferred.json`) run on the SDK's mock host (test_deferred.py) and on the real gateway.

The upgrade's query decides its answer:
- `accept=MS`: defers, then after MS sends `welcome` and accepts (a timer the connection owns);
- `reject=MS&status=S`: defers, then after MS rejects with status S;
- `wait`: defers and never answers (the route's accept timeout answers 504);
- `deny`: rejects at once with 401;
- `close`: closes the connection from on_connect and accepts it (the close wins: 403);
- `accept-now`: calls `accept` from on_connect (refused: nothing is deferred yet), accepts, and answers `note` with
  what `accept` did (`accepted`, or `refused: ` and the refusal's WIT name);
- `deny-on-restore`: accepts, but rejects (403) when on_connect is replayed into a replacement instance;
- anything else: accepts at once.

With the setting `init = "host-calls"`, `init` makes every kind of host call before any connection exists (each
must be refused or answered, never fail), and with `init = "refuse"` it refuses the settings.

Messages: `count` answers how many messages the connection sent before (its own state); `live` how many connections
the instance holds state for (from on_connect to on_close); `log` writes a line through `logging`; `panic` raises
(the instance is replaced); `close CODE` closes the connection with CODE; anything else is echoed.
"""

import logging
from dataclasses import dataclass
from typing import Optional

import wssgate
from wssgate import Connection, Refused, groups, timers, users

logger = logging.getLogger("deferred")


@dataclass
class Client:
    """What the plugin keeps per connection."""

    #: Messages received so far.
    messages: int = 0
    #: What to do when the connection's timer fires while it is deferred: "accept", or a status to reject with.
    answer: Optional[object] = None
    #: What on_connect noted, for the `note` message.
    note: str = ""


def param(query: str, key: str) -> Optional[str]:
    """The value of `key` in a `k=v&k=v` query."""
    for pair in query.split("&"):
        k, sep, v = pair.partition("=")
        if sep and k == key:
            return v
    return None


def number(text: Optional[str], below: int) -> Optional[int]:
    """`text` as a whole number under `below` (how the Rust plugin parses a u16 or u64), else None."""
    if text is None or not (text.isascii() and text.isdigit()) or int(text) >= below:
        return None
    return int(text)


def millis(value: str) -> float:
    """A query's milliseconds as the SDK's seconds (0 when not a number)."""
    return (number(value, 2**64) or 0) / 1000


def status_of(value: Optional[str]) -> int:
    status = number(value, 2**16)
    return 403 if status is None else status


def quietly(call) -> None:
    """Makes a call whose refusal the plugin does not act on (a send to a client that left, ...)."""
    try:
        call()
    except Refused:
        pass


def host_calls_from_init() -> None:
    """Every kind of host call, made from init: a connection that does not exist yet, an empty route, a timer."""
    nobody = Connection(2**64 - 1)
    for call in (lambda: nobody.send("hello"), nobody.accept, lambda: nobody.reject(401, "no"),
                 lambda: nobody.join("g"), lambda: nobody.bind_user("u"), lambda: nobody.session_set("k", "v")):
        quietly(call)
    nobody.close(1000, "bye")
    nobody.leave("g")
    nobody.groups()
    nobody.unbind_user()
    nobody.session_get("k")
    nobody.session_remove("k")
    nobody.info()
    groups.publish("g", "x")
    groups.size("g")
    groups.broadcast("x")
    users.send("u", "x")
    users.is_online("u")
    users.connections("u")
    wssgate.settings.all()
    wssgate.log.info("init made every host call")
    logger.info("and logged through the logging module")
    timers.every(3600).cancel()
    timers.after(3600)


class Deferred(wssgate.Plugin):
    def __init__(self):
        #: Connections with state: accepted or waiting for their answer.
        self.live = 0

    def init(self, settings):
        if settings.get("init") == "host-calls":
            host_calls_from_init()
        elif settings.get("init") == "refuse":
            raise wssgate.SettingsRefused("init was told to refuse")

    def on_connect(self, conn, request):
        query = request.query
        if query == "deny-on-restore" and request.restored:
            return wssgate.reject(403, "denied on restore")
        if param(query, "accept") is not None:
            delay, answer = millis(param(query, "accept")), "accept"
        elif param(query, "reject") is not None:
            delay, answer = millis(param(query, "reject")), status_of(param(query, "status"))
        elif query == "wait":
            self.live += 1
            return wssgate.defer(Client())
        elif query == "deny":
            return wssgate.reject(401, "no token")
        elif query == "close":
            conn.close(4000, "changed its mind")
            self.live += 1
            return wssgate.accept(Client())
        elif query == "accept-now":
            try:
                conn.accept()
                note = "accepted"
            except Refused as refusal:
                note = f"refused: {refusal.reason}"
            self.live += 1
            return wssgate.accept(Client(note=note))
        else:
            self.live += 1
            return wssgate.accept(Client())
        if request.restored:
            # Replayed into a fresh instance: an open connection stays open.
            self.live += 1
            return wssgate.accept(Client())
        try:
            timers.after(delay, owner=conn)
        except Refused as refusal:
            return wssgate.reject(503, str(refusal))
        self.live += 1
        return wssgate.defer(Client(answer=answer))

    def on_message(self, conn, client, message):
        if message == "count":
            reply = f"count {client.messages}"
        elif message == "live":
            reply = f"live {self.live}"
        elif message == "note":
            reply = client.note
        elif message == "panic":
            raise RuntimeError("deferred was asked to panic")
        elif message == "log":
            logger.info("deferred logs through the logging module")
            reply = "logged"
        elif isinstance(message, str) and message.startswith("close "):
            code = number(message[6:], 2**16)
            conn.close(1000 if code is None else code, "closed by plugin")
            return
        else:
            client.messages += 1
            quietly(lambda: conn.send(message))
            return
        client.messages += 1
        quietly(lambda: conn.send(reply))

    def on_close(self, conn, client, close):
        self.live -= 1

    def on_timer(self, timer, clients):
        conn = timer.owner
        if conn is None or conn not in clients:
            return
        client = clients[conn]
        answer, client.answer = client.answer, None
        if answer == "accept":
            # Queued while the upgrade waits: the client reads it right after its 101.
            quietly(lambda: conn.send("welcome"))
            quietly(conn.accept)
        elif answer is not None:
            quietly(lambda: conn.reject(answer, "rejected later"))
