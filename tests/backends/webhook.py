#!/usr/bin/env python3
"""A test backend for wssgate's webhook route (standard library only). Prints its port on the first line.

/connect: query token=bad -> 401; token=slow -> waits 30 s; else 200 with uid (query `uid`), group lobby, reply
          "welcome" (empty body when the query has `plain`).
/message: "tom" -> reply ok; "pub TEXT" -> publish to lobby; "dm UID TEXT" -> send_to_user; "join G"/"leave G";
          "close" -> close 4000; "bad" -> a malformed answer; "fail" -> 500; "slow" -> answers after 1 s;
          "seq N" -> reply "seq N" (and records N, to check the order); binary -> reply_binary of the same bytes.
GET /state: JSON of connections accepted (uid -> id), disconnects seen, sequence numbers out of order, bad
          signatures, replays refused, and the last signed /message call as it arrived (its signature headers and
          body), for a test to replay.
With --secret, every request's signature (version 2: X-Wssgate-Signature: v2=HMAC-SHA256 of
"v2\nMETHOD\nPATH\nTIMESTAMP\nNONCE\nBODY") is checked, as a backend should: a bad one, or a timestamp more than
5 minutes off, is answered 401 and counted; a nonce seen before is answered 409 and counted (nonces are kept for
the 10 minutes their timestamps can be accepted in).
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
state = {"connections": {}, "disconnects": [], "out_of_order": 0, "sequences": 0, "bad_signatures": 0, "signed": 0,
         "replays": 0, "last_message": None}
last_seq = {}
SECRET = None
WINDOW = 300
# nonce -> when it was seen; forgotten once its timestamp could no longer be accepted.
nonces = {}


def verify(method, path, headers, body):
    """None when the call is the gateway's and new, else (status, reason)."""
    ts = headers.get("x-wssgate-timestamp", "")
    nonce = headers.get("x-wssgate-nonce", "")
    signed = "\n".join(["v2", method, path, ts, nonce]).encode() + b"\n" + body
    expected = "v2=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("x-wssgate-signature", "")):
        return 401, "bad signature"
    if not ts.isdigit() or abs(time.time() - int(ts)) > WINDOW:
        return 401, "stale timestamp"
    now = time.time()
    with lock:
        for old in [n for n, seen in nonces.items() if now - seen > 2 * WINDOW]:
            del nonces[old]
        if nonce in nonces:
            return 409, "replayed nonce"
        nonces[nonce] = now
    return None


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
            refused = verify(self.command, self.path, self.headers, body)
            if refused is not None:
                with lock:
                    state["replays" if refused[0] == 409 else "bad_signatures"] += 1
                return self.reply(refused[0], refused[1].encode())
            with lock:
                state["signed"] += 1
                if self.path == "/message":
                    names = ("x-wssgate-timestamp", "x-wssgate-nonce", "x-wssgate-signature")
                    state["last_message"] = {
                        "headers": {name: self.headers.get(name) for name in names},
                        "body": body.decode(),
                    }
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
