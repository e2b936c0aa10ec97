"""The {name} plugin: echoes every message back, and answers `count` with how many messages this connection sent
before. Test it with `.venv/bin/python -m pytest`, build it with `sh build.sh`, serve it with
`wssgate serve --config config.toml`."""

from dataclasses import dataclass

import wssgate


@dataclass
class Client:
    """What the plugin keeps for each connection."""

    messages: int = 0


class Echo(wssgate.Plugin):
    def on_connect(self, conn, request):
        return wssgate.accept(Client())

    def on_message(self, conn, client, message):
        if message == "count":
            conn.send(f"count {client.messages}")
        else:
            conn.send(message)
        client.messages += 1
