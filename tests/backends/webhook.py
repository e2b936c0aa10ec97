#!/usr/bin/env python3
"""A test backend for wssgate's webhook route (standard library only). Prints its port on the first line.

/connect: query token=bad -> 401; token=slow -> waits 30 s; else 200 with uid (query `uid`), group lobby, reply
          "welcome" (empty body when the query has `plain`).
/message: "tom" -> reply ok; "pub TEXT" -> publish to lobby; "dm UID TEXT" -> send_to_user; "join G"/"leave G";
          "close" -> close 4000; "bad" -> a malformed answer; "fail" -> 500; "slow" -> answers after 1 s;
          "seq N" -> reply "seq N" (and records N, to check the order); binary -> reply_binary of the same bytes.
GET /state: JSON of connections accepted (uid -> id), disconnects seen, sequence numbers out of order, bad
          signatures.
With --secret, every request's X-Wssgate-Signature is checked (a bad one is answered 401 and counted).
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from serving import serve

lock = threading.Lock()
state = {"connections": {}, "disconnects": [], "out_of_order": 0, "sequences": 0, "bad_signatures": 0, "signed": 0}
last_seq = {}
SECRET = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, each waits for an ACK

    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self.reply(200, state)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if SECRET is not None:
            ts = self.headers.get("x-wssgate-timestamp", "")
            expected = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("x-wssgate-signature", "")):
                with lock:
                    state["bad_signatures"] += 1
                return self.reply(401, b"bad signature")
            with lock:
                state["signed"] += 1
        event = json.loads(body)
        conn = event["connection"]
        assert isinstance(conn, str), "connection ids are strings"
        if self.path == "/connect":
            query = urllib.parse.parse_qs(event["query"], keep_blank_values=True)
            token = query.get("token", [""])[0]
            if token == "bad":
                return self.reply(401, b"bad token")
            if token == "slow":
                time.sleep(30)
            uid = query.get("uid", [None])[0]
            with lock:
                state["connections"][uid or conn] = conn
            if "plain" in query:
                return self.reply(200)
            return self.reply(200, {"uid": uid, "groups": ["lobby"], "reply": "welcome"})
        if self.path == "/disconnect":
            with lock:
                state["disconnects"].append(event)
            return self.reply(204)
        if "binary" in event:
            return self.reply(200, {"reply_binary": event["binary"]})
        words = event["text"].split(" ", 2)
        if words[0] == "tom":
            return self.reply(200, {"reply": "ok"})
        if words[0] == "pub":
            return self.reply(200, {"publish": [{"group": "lobby", "text": words[1]}]})
        if words[0] == "dm":
            return self.reply(200, {"send_to_user": [{"uid": words[1], "text": words[2]}]})
        if words[0] in ("join", "leave"):
            return self.reply(200, {words[0]: [words[1]], "reply": words[0] + "ed"})
        if words[0] == "close":
            return self.reply(200, {"close": {"code": 4000, "reason": "bye"}})
        if words[0] == "bad":
            return self.reply(200, b"{not json")
        if words[0] == "fail":
            return self.reply(500, b"failed")
        if words[0] == "slow":
            time.sleep(1)
            return self.reply(200, {"reply": "slow"})
        if words[0] == "seq":
            n = int(words[1])
            with lock:
                state["sequences"] += 1
                if last_seq.get(conn, -1) + 1 != n:
                    state["out_of_order"] += 1
                last_seq[conn] = n
            return self.reply(200, {"reply": "seq %d" % n})
        return self.reply(200)


def main():
    global SECRET
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret")
    SECRET = parser.parse_args().secret
    serve(Handler)


if __name__ == "__main__":
    sys.exit(main())
