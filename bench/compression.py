#!/usr/bin/env python3
"""permessage-deflate on the release gateway, compression off / shared / dedicated, in one run: what BENCHMARKS.md's
compression table reports.

Per mode, one worker, raw clients that offer what browsers offer (`permessage-deflate; client_max_window_bits`)
and compress and inflate with Python's zlib (their CPU is not counted):
- echo: one connection sends 2 KiB chat JSON messages and reads each echo; the gateway's CPU time (user + system,
  from /proc) per message, which covers inflating, the plugin and compressing, and the bytes on the wire each way;
- memory: RSS per connection with 2,000 connections open and idle, just opened, then after one such exchange each
  (so that a `dedicated` one holds its contexts);
- fan-out: MEMBERS connections join a group of the probe plugin and one more publishes 2 KiB JSON to it; the
  gateway's CPU time per publish and the bytes each member receives.

Usage: python3 bench/compression.py [--gateway target/release/wssgate] [--members 10000] [--json FILE]
Build first: `cargo build --release -p wssgate` and `cargo build --release --target wasm32-wasip2 -p echo -p probe`.
"""

import argparse
import base64
import json
import os
import resource
import socket
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from languages import ROOT, Serving, free_port  # noqa: E402

PLUGINS = ROOT / "target/wasm32-wasip2/release"
MODES = ["off", "shared", "dedicated"]
ECHOES = 20000
IDLE = 2000
PUBLISHES = 10


def chat_json(n: int) -> bytes:
    return json.dumps([{"from": f"user{i % 5}", "room": "lobby", "text": f"message number {i}"} for i in range(n)],
                      separators=(",", ":")).encode()


MESSAGE = chat_json(35)  # about 2 KiB


def config(port: int, mode: str) -> str:
    text = f'workers = 1\n[[listener]]\naddress = "127.0.0.1:{port}"\ntls = false\n'
    setting = f'compression = "{mode}"\n' if mode != "off" else ""
    text += f'[[route]]\npath = "/echo"\nplugin = "{PLUGINS / "echo.wasm"}"\n{setting}'
    text += f'[[route]]\npath = "/probe"\nplugin = "{PLUGINS / "probe.wasm"}"\n{setting}'
    return text


class Client:
    """A raw WebSocket client that offers permessage-deflate and speaks it when the gateway agrees."""

    def __init__(self, port: int, path: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("closed during the upgrade")
            head += chunk
        head = head.decode()
        assert head.startswith("HTTP/1.1 101"), head
        agreed = next((l.split(":", 1)[1].strip() for l in head.split("\r\n")
                       if l.lower().startswith("sec-websocket-extensions:")), "")
        self.deflate = agreed.startswith("permessage-deflate")
        # Context takeover on our side unless the gateway asked for none; windows as agreed.
        self.client_takeover = "client_no_context_takeover" not in agreed
        self.server_takeover = "server_no_context_takeover" not in agreed
        bits = 15
        for param in agreed.split(";"):
            if param.strip().startswith("client_max_window_bits="):
                bits = int(param.split("=")[1])
        self.bits = bits
        self.compress = zlib.compressobj(1, zlib.DEFLATED, -bits)
        self.inflate = zlib.decompressobj(-15)
        self.buffer = b""
        self.wire_in = 0

    def send(self, payload: bytes):
        first = 0x81
        if self.deflate:
            data = self.compress.compress(payload) + self.compress.flush(zlib.Z_SYNC_FLUSH)
            payload = data[:-4]
            first |= 0x40
            if not self.client_takeover:
                self.compress = zlib.compressobj(1, zlib.DEFLATED, -self.bits)
        n = len(payload)
        header = bytes([first])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(header + b"\0\0\0\0" + payload)  # a zero mask key leaves the payload as it is

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self) -> bytes:
        first, second = self._read(2)
        n = second & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        payload = self._read(n)
        self.wire_in += n
        if first & 0x40:
            payload = self.inflate.decompress(payload + b"\0\0\xff\xff")
            if not self.server_takeover:
                self.inflate = zlib.decompressobj(-15)
        return payload


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(gateway: str, mode: str, members: int, work: Path) -> dict:
    port = free_port()
    path = work / f"{mode}.toml"
    path.write_text(config(port, mode))
    serving = Serving(gateway, path)
    try:
        pid = serving.process.pid
        # Echo.
        client = Client(port, "/echo")
        wire_out = 0
        client.send(MESSAGE)
        assert client.recv() == MESSAGE
        started = cpu_seconds(pid)
        wire_before = client.wire_in
        for _ in range(ECHOES):
            client.send(MESSAGE)
            assert client.recv() == MESSAGE
        echo_cpu = cpu_seconds(pid) - started
        wire_out = (client.wire_in - wire_before) / ECHOES
        client.sock.close()
        # Memory of idle connections: just opened, then after one exchange each.
        time.sleep(0.5)
        rss_before = serving.rss_kib()
        idle = [Client(port, "/echo") for _ in range(IDLE)]
        time.sleep(0.5)
        rss_open = serving.rss_kib()
        for c in idle:
            c.send(MESSAGE)
            assert c.recv() == MESSAGE
        time.sleep(0.5)
        fresh = (rss_open - rss_before) * 1024 / IDLE
        per_connection = (serving.rss_kib() - rss_before) * 1024 / IDLE
        for c in idle:
            c.sock.close()
        # Fan-out.
        group = []
        for _ in range(members):
            c = Client(port, "/probe")
            c.send(b"join room")
            assert c.recv() == b"joined"
            group.append(c)
        sender = Client(port, "/probe")
        started = cpu_seconds(pid)
        wire_before = sum(c.wire_in for c in group)
        for i in range(PUBLISHES):
            sender.send(b"publish room " + MESSAGE)
            for c in group:
                assert c.recv() == MESSAGE
            assert sender.recv() == f"published {members}".encode()
        fanout_cpu = cpu_seconds(pid) - started
        member_bytes = (sum(c.wire_in for c in group) - wire_before) / members / PUBLISHES
        for c in group:
            c.sock.close()
    finally:
        serving.stop()
    return {
        "mode": mode,
        "message_bytes": len(MESSAGE),
        "echo_cpu_us_per_message": echo_cpu / ECHOES * 1e6,
        "wire_bytes_per_echo": wire_out,
        "idle_bytes_per_connection": fresh,
        "idle_bytes_per_connection_after_a_message": per_connection,
        "members": members,
        "publish_cpu_ms": fanout_cpu / PUBLISHES * 1e3,
        "wire_bytes_per_member_message": member_bytes,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default=str(ROOT / "target/release/wssgate"))
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--json")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.members + IDLE + 1000)), hard))
    rows = []
    with tempfile.TemporaryDirectory(prefix="wssgate-compression-") as work:
        for mode in MODES:
            rows.append(measure(args.gateway, mode, args.members, Path(work)))
            print(f"measured {mode}", flush=True)
    print(f"| Compression | Gateway CPU per {len(MESSAGE)} B echo | Bytes on the wire per echo | "
          f"Memory per idle connection: opened / after one message | Publish to {args.members:,} members: gateway CPU | Bytes per member |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['echo_cpu_us_per_message']:.1f} µs | {r['wire_bytes_per_echo']:.0f} B "
              f"| {r['idle_bytes_per_connection'] / 1024:.1f} / {r['idle_bytes_per_connection_after_a_message'] / 1024:.1f} KiB "
              f"| {r['publish_cpu_ms']:.1f} ms "
              f"| {r['wire_bytes_per_member_message']:.0f} B |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
