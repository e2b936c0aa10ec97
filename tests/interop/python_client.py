"""An interop client nobody here wrote the library of: Python `websockets` against the gateway's /echo over wss.

Usage: python_client.py URL CA_PEM. Prints one JSON line with what came back; exits non-zero on any failure.
"""

import asyncio
import json
import ssl
import sys

from websockets.asyncio.client import connect


async def main(url: str, ca: str) -> None:
    context = ssl.create_default_context(cafile=ca)
    async with asyncio.timeout(10):
        async with connect(url, ssl=context, server_hostname="localhost") as ws:
            await ws.send("héllo from python")
            text = await ws.recv()
            await ws.send(bytes([0, 1, 255]))
            binary = await ws.recv()
            pong = await ws.ping(b"are you there")
            await pong
            await ws.close(code=4000, reason="python done")
            print(json.dumps({
                "text": text,
                "binary": list(binary),
                "pong": True,
                "close_code": ws.close_code,
                "close_reason": ws.close_reason,
            }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
