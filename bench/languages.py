#!/usr/bin/env python3
"""Load, reload and memory of one plugin per language, on the release gateway: what BENCHMARKS.md's
per-language table reports (CPU per message comes from benchrun's scenarios ts and py).

For each plugin:
- load, cold: `wssgate check` with `compile_cache = false` (Cranelift compiles the component), median of 3;
- load, cached: `wssgate check` with a compile cache that already holds it, median of 3;
- reload: SIGHUP to a serving gateway (compile cache on) until its log says "reload complete", from the two log
  lines' timestamps, median of 3;
- memory per instance: the linear memory one instance holds at start (`wssgate_plugin_memory_bytes` with one
  instance), and the gateway's resident memory per extra instance (RSS with `instances = 9` minus `instances = 1`,
  over 8), one worker.

Usage: python3 bench/languages.py [--gateway target/release/wssgate] [--json FILE]
Build first: the gateway (`cargo build --release -p wssgate`), the Rust echo
(`cargo build --release --target wasm32-wasip2 -p echo`), `npm run build -w tests/plugins/misbehaving-ts` and
`sh tests/plugins/misbehaving-py/build.sh` (both echo what they do not take as a command).
"""

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = [
    ("Rust (echo)", ROOT / "target/wasm32-wasip2/release/echo.wasm"),
    ("TypeScript (misbehaving-ts)", ROOT / "tests/plugins/misbehaving-ts/dist/misbehaving-ts.wasm"),
    ("Python (misbehaving-py)", ROOT / "tests/plugins/misbehaving-py/dist/misbehaving-py.wasm"),
]
TOKEN = "benchmark-token-not-secret"
# Every wait below is bounded by this.
LIMIT = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(plugin: Path, cache, admin=None, instances=1) -> str:
    cache_line = "compile_cache = false" if cache is None else f'compile_cache = "{cache}"'
    text = f"workers = 1\n{cache_line}\n"
    if admin:
        text += f'[admin]\naddress = "127.0.0.1:{admin}"\ntoken = "{TOKEN}"\n'
    text += f'[[listener]]\naddress = "127.0.0.1:{free_port()}"\ntls = false\n'
    text += f'[[route]]\npath = "/p"\nplugin = "{plugin}"\ninstances = {instances}\n'
    return text


def timed_check(gateway: str, path: Path) -> float:
    started = time.monotonic()
    subprocess.run([gateway, "check", "--config", str(path)], check=True, capture_output=True, timeout=LIMIT)
    return time.monotonic() - started


class Serving:
    """`wssgate serve` on a config, its log collected, stopped when done."""

    def __init__(self, gateway: str, path: Path):
        self.log = path.with_suffix(".log")
        self.out = open(self.log, "w")
        self.process = subprocess.Popen([gateway, "serve", "--config", str(path)], stdout=self.out,
                                        stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "info"})
        self.wait_for("listening on")

    def wait_for(self, needle: str, after: int = 0) -> str:
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if needle in text[after:]:
                return text
            time.sleep(0.02)
        raise TimeoutError(f"no {needle!r} in {self.log}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=LIMIT)
        self.out.close()


def stamp(line: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(line.split()[0].rstrip("Z"))


def reload_seconds(serving: Serving) -> float:
    before = len(serving.log.read_text())
    serving.process.send_signal(signal.SIGHUP)
    text = serving.wait_for("reload complete", after=before)
    lines = text[before:].splitlines()
    start = next(stamp(l) for l in lines if "SIGHUP: reloading" in l)
    done = next(stamp(l) for l in lines if "reload complete" in l)
    return (done - start).total_seconds()


def memory_gauge(admin: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{admin}/metrics",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    body = urllib.request.urlopen(request, timeout=10).read().decode()
    line = next(l for l in body.splitlines() if l.startswith('wssgate_plugin_memory_bytes{route="/p"}'))
    return int(float(line.split()[-1]))


def measure(gateway: str, name: str, plugin: Path, work: Path) -> dict:
    cold_cfg, warm_cfg = work / "cold.toml", work / "warm.toml"
    cache = work / "cache"
    cold_cfg.write_text(config(plugin, None))
    warm_cfg.write_text(config(plugin, cache))
    cold = statistics.median(timed_check(gateway, cold_cfg) for _ in range(3))
    timed_check(gateway, warm_cfg)  # fills the cache
    cached = statistics.median(timed_check(gateway, warm_cfg) for _ in range(3))

    admin = free_port()
    one = work / "one.toml"
    one.write_text(config(plugin, cache, admin=admin, instances=1))
    serving = Serving(gateway, one)
    try:
        linear = memory_gauge(admin)
        rss_one = serving.rss_kib()
        reload = statistics.median(reload_seconds(serving) for _ in range(3))
    finally:
        serving.stop()
    admin = free_port()
    nine = work / "nine.toml"
    nine.write_text(config(plugin, cache, admin=admin, instances=9))
    serving = Serving(gateway, nine)
    try:
        rss_nine = serving.rss_kib()
    finally:
        serving.stop()
    return {
        "plugin": name,
        "component_mib": plugin.stat().st_size / 2**20,
        "load_cold_s": cold,
        "load_cached_s": cached,
        "reload_s": reload,
        "linear_memory_mib": linear / 2**20,
        "rss_per_extra_instance_mib": (rss_nine - rss_one) / 8 / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default=str(ROOT / "target/release/wssgate"))
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for name, plugin in PLUGINS:
        if not plugin.is_file():
            raise SystemExit(f"{plugin} is missing: see the build commands in this script's help")
        with tempfile.TemporaryDirectory(prefix="wssgate-languages-") as work:
            rows.append(measure(args.gateway, name, plugin, Path(work)))
            print(f"measured {name}", flush=True)
    print("| Plugin | Component | Load, compiling | Load, from the compile cache | Reload (SIGHUP) | "
          "Linear memory per instance | RSS per extra instance |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['plugin']} | {r['component_mib']:.1f} MiB | {r['load_cold_s']:.2f} s | {r['load_cached_s']:.3f} s "
              f"| {r['reload_s']:.3f} s | {r['linear_memory_mib']:.1f} MiB | {r['rss_per_extra_instance_mib']:.1f} MiB |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
