#!/usr/bin/env python3
"""Runs the test command as a subreaper and says plainly what ran, what did not, and what was left running.

Usage: guard.py COMMAND [ARGS...]   (test.sh runs `cargo test --workspace ... -- --include-ignored` through it)

- Output passes through unchanged; libtest's lines are read on the way to total every suite's results and to
  name each failed and each ignored test in the closing lines.
- The guard marks itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so a process the tests started and
  then lost (an nginx worker whose master was killed, a browser whose driver died) is re-parented to the guard
  instead of to init. When the command ends, any such process still alive fails the run, named with its command
  line, and is killed.
"""

import ctypes
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
# How long processes may take to finish exiting after the command ended before they count as left running.
LINGER_SECONDS = 5.0

RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
OUTCOME = re.compile(r"^test (.+?) \.\.\. (FAILED|ignored)(?:, (.*))?$")
SUITE = re.compile(r"^\s*(?:Running|Doc-tests) (\S+)")


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"guard: prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(ctypes.get_errno())}")


def children():
    """Our live children (after the command ended: the processes the tests left behind), as (pid, command line)."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            # The command name is in parentheses and may hold spaces; the fields after it are space separated.
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) != me or state == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            found.append((int(entry), cmdline or stat.split("(", 1)[1].split(")")[0]))
        except (OSError, IndexError, ValueError):
            continue
    return found


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: guard.py COMMAND [ARGS...]")
    become_subreaper()
    passed = failed = ignored = suites = 0
    failures, skipped = [], []
    suite = "?"
    started = time.monotonic()
    command = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = queue.Queue()

    def pump():
        # A process the tests left running may hold the pipe open after the command exits, so the pipe is read
        # on a thread of its own and the main thread goes by the command's exit.
        for raw in command.stdout:
            lines.put(raw)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    status = None
    drained_by = None
    while True:
        try:
            raw = lines.get(timeout=0.2)
        except queue.Empty:
            raw = b""
        if raw is None:
            break
        if status is None:
            status = command.poll()
            if status is not None:
                drained_by = time.monotonic() + LINGER_SECONDS
        elif time.monotonic() > drained_by:
            break
        if not raw:
            continue
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        line = raw.decode(errors="replace").rstrip("\n")
        if m := SUITE.match(line):
            suite = m.group(1)
        elif m := OUTCOME.match(line):
            name = f"{suite}: {m.group(1)}"
            if m.group(2) == "FAILED":
                failures.append(name)
            else:
                skipped.append(name + (f" ({m.group(3)})" if m.group(3) else ""))
        elif m := RESULT.match(line):
            suites += 1
            passed += int(m.group(1))
            failed += int(m.group(2))
            ignored += int(m.group(3))
    status = command.wait()

    deadline = time.monotonic() + LINGER_SECONDS
    left = children()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        reap()
        left = children()
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    reap()

    minutes = (time.monotonic() - started) / 60
    print(f"\n==== guard: {suites} test suites in {minutes:.1f} min ====")
    for name in failures:
        print(f"FAILED:     {name}")
    for name in skipped:
        print(f"DID NOT RUN: {name}")
    for pid, cmdline in left:
        print(f"LEFT RUNNING by the tests (killed now): pid {pid}: {cmdline}")
    if status != 0 and not failures:
        print(f"the test command exited with status {status} before every test could run (see above)")
    if passed + failed == 0:
        print("no test ran")
    print(f"tests: {passed} passed, {failed} failed, {ignored} skipped")
    ok = status == 0 and not left and passed > 0
    sys.exit(0 if ok else (status or 1))


if __name__ == "__main__":
    main()
