"""A real `sse-perf --demo --live` run in a process of its own, for the live view's integration
and browser tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from waiting import wait_until


def start_live_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str, list]:
    """`sse-perf --demo --live 127.0.0.1:0` in a process of its own: (the process, the printed URL,
    the stdout lines so far, which a thread keeps appending to)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock",
                             "ttft_ms=100,itl_ms=10,tokens=16", "--threads", "3", "--duration", "60",
                             "--live", "127.0.0.1:0", "--output-dir", str(tmp_path), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list = []

    def pump():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    if not wait_until(lambda: any("live view: " in line for line in lines), timeout_s=30):
        proc.kill()
        raise AssertionError(f"the run printed no live view URL: {proc.stderr.read()}")
    url = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", next(l for l in lines if "live view: " in l)).group(0)
    return proc, url, lines


def start_console(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`sse-perf ui --port 0` over tmp_path (its history.db and run folders): (the process, the
    printed URL with its token)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "ui", "--port", "0", "--output-dir",
                             str(tmp_path), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line)
    if not found:
        proc.kill()
        raise AssertionError(f"the console printed no URL: {line!r} {proc.stderr.read()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # its further lines, so it never blocks
    return proc, found.group(0)
