#!/usr/bin/env python3
"""A complete backend for wssgate's webhook route, standard library only: the browser sends "tom", gets "ok".

Run it, point an [[upstream]] at http://127.0.0.1:8000 and a route with plugin webhook.wasm at it (see the README,
"Talk to your backend"). Push to a connection any time: POST /api/send to the gateway's admin listener.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
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
