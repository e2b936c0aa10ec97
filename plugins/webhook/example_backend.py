#!/usr/bin/env python3
"""A complete backend for wssgate's webhook route, standard library only: the browser sends "tom", gets "ok".

Run it, point an [[upstream]] at http://127.0.0.1:8000 and a route with plugin webhook.wasm at it (see the README,
"Talk to your backend"). Push to a connection any time: POST /api/send to the gateway's admin listener. With the
route setting `secret`, run it with the same secret in WEBHOOK_SECRET: it then refuses calls that are not signed.
"""
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET")
seen_nonces, seen_lock = {}, threading.Lock()  # nonce -> when seen: a replayed call is refused


def signed(method, path, headers, body):
    """Whether a call is the gateway's (signature version 2), recent and not seen before."""
    ts, nonce = headers.get("X-Wssgate-Timestamp", ""), headers.get("X-Wssgate-Nonce", "")
    message = "\n".join(["v2", method, path, ts, nonce]).encode() + b"\n" + body
    expected = "v2=" + hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("X-Wssgate-Signature", "")):
        return False
    now = time.time()
    if not ts.isdigit() or abs(now - int(ts)) > 300:  # older (or newer) than 5 minutes
        return False
    with seen_lock:
        for old in [n for n, when in seen_nonces.items() if now - when > 600]:
            del seen_nonces[old]
        fresh = nonce not in seen_nonces
        seen_nonces[nonce] = now
    return fresh


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses its connections
    disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK

    def answer(self, status, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if SECRET and not signed(self.command, self.path, self.headers, body):
            return self.answer(401, {"error": "not signed by the gateway"})
        event = json.loads(body)
        if self.path == "/connect":  # before the WebSocket opens: 2xx accepts, 4xx refuses
            if "token=bad" in event["query"]:
                return self.answer(401, {"error": "bad token"})
            return self.answer(200, {"uid": "guest-" + event["connection"]})
        if self.path == "/message":  # one at a time per connection, in order
            if event.get("text") == "tom":
                return self.answer(200, {"reply": "ok"})
            return self.answer(200, {})
        return self.answer(204)  # /disconnect

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
server = ThreadingHTTPServer(("127.0.0.1", port), Backend)
print(server.server_address[1], flush=True)
server.serve_forever()
