#!/usr/bin/env python3
"""A test upstream for wssgate's outbound-HTTP tests (standard library only).

Listens on 127.0.0.1 on a port the system picks (HTTPS with --cert/--key) and prints it on the first line of stdout.
Any path prefix works, so an upstream URL's base path can be tested; what the last path segment selects:

  /echo          200, JSON of the request (method, target, lower-case headers, body), header x-backend: yes
  /slow?ms=N     200 "slow" after N ms
  /big?bytes=N   200 with an N-byte body
  /heavy?bytes=N 200 "ok" with about N bytes of headers (X-Pad-1, X-Pad-2, … of at most 4000 bytes each)
  /status/N      status N, body "status N"
  /flaky         200 "ok" mostly; 500 or a response cut short (a protocol error) at random
  /cut           a response cut short: a protocol error
  /stats         JSON: requests and TCP connections seen so far
"""
import argparse
import json
import random
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from serving import serve

lock = threading.Lock()
stats = {"requests": 0, "connections": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, each waits for an ACK

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with lock:
            stats["connections"] += 1

    def reply(self, status, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            stats["requests"] += 1
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        last = url.path.rstrip("/").rsplit("/", 1)[-1]
        if last == "echo":
            echo = {
                "method": self.command,
                "target": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(errors="replace"),
            }
            self.reply(200, json.dumps(echo), [("X-Backend", "yes")])
        elif last == "slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            self.reply(200, "slow")
        elif last == "big":
            self.reply(200, b"x" * int(query["bytes"][0]))
        elif last == "heavy":
            left, pads = int(query["bytes"][0]), []
            while left > 0:
                pads.append((f"X-Pad-{len(pads) + 1}", "x" * min(left, 4000)))
                left -= 4000
            self.reply(200, "ok", pads)
        elif url.path.rsplit("/", 2)[-2:-1] == ["status"]:
            self.reply(int(last), f"status {last}")
        elif last == "flaky":
            roll = random.random()
            if roll < 0.1:
                self.reply(500, "failed")
            elif roll < 0.2:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                self.close_connection = True
            else:
                self.reply(200, "ok")
        elif last == "cut":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            self.close_connection = True
        elif last == "stats":
            with lock:
                self.reply(200, json.dumps(stats))
        else:
            self.reply(404, "no such test path")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    wrap = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        wrap = lambda socket: context.wrap_socket(socket, server_side=True)  # noqa: E731
    serve(Handler, wrap)


if __name__ == "__main__":
    sys.exit(main())
