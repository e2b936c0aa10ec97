"""Python `websockets` with permessage-deflate against a compressed echo route over wss.

Usage: python_deflate.py URL CA_PEM OFFER, where OFFER is `default` (what websockets offers by default) or `bare`
(only `permessage-deflate`, no parameters, as WeChat's client offers). Sends a 20 KiB JSON message and a short one;
prints one JSON line with the negotiated extension and whether both came back intact; exits non-zero on failure.
"""

import asyncio
import json
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


def chat_json() -> str:
    return json.dumps([{"from": f"user{i % 5}", "room": "lobby", "text": f"message {i}"} for i in range(400)])


async def main(url: str, ca: str, offer: str) -> None:
    context = ssl.create_default_context(cafile=ca)
    options = {}
    if offer == "bare":
        options = {
            "compression": None,
            "extensions": [
                ClientPerMessageDeflateFactory(
                    server_no_context_takeover=False,
                    client_no_context_takeover=False,
                    server_max_window_bits=None,
                    client_max_window_bits=None,
                )
            ],
        }
    async with asyncio.timeout(10):
        async with connect(url, ssl=context, server_hostname="localhost", max_size=None, **options) as ws:
            big = chat_json()
            await ws.send(big)
            echoed_big = await ws.recv()
            await ws.send("tom")
            echoed_small = await ws.recv()
            print(json.dumps({
                "offered": ws.request.headers.get("Sec-WebSocket-Extensions"),
                "extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
                "big_len": len(big),
                "big_ok": echoed_big == big,
                "small": echoed_small,
            }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
