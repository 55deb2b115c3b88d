"""What the live view (--live) costs a run: the CPU seconds of the sse-perf process for the same
load without --live, with --live and nobody watching, and with --live and WATCHERS browsers
reading /events plus a Prometheus scrape of /metrics every second. The mock server runs in a
process of its own (benchmarks/_stream_server.py); the modes alternate, REPEATS times each.

usage: python benchmarks/bench_live.py [--threads 64] [--duration 20] [--repeats 3] [--watchers 2]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _server(tokens: int, itl_ms: float, ttft_ms: float):
    prefix = str(Path(tempfile.mkdtemp(prefix="bench-live-")) / "server")
    proc = subprocess.Popen([sys.executable, str(HERE / "_stream_server.py"), str(ttft_ms), str(itl_ms), str(tokens),
                             prefix, "1"], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def _watch(port: int, token: str, stop: threading.Event, counts: dict, metrics: bool) -> None:
    """A browser on /events (and, for one of them, a scraper of /metrics every second)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/events", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    next_scrape = time.monotonic()
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            return
        if line.startswith(b"id: "):
            counts["events"] += 1
        if metrics and time.monotonic() >= next_scrape:
            next_scrape += 1.0
            scrape = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            scrape.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
            counts["scraped_bytes"] += len(scrape.getresponse().read())
            scrape.close()


def run_once(args, mode: str) -> dict:
    server, port = _server(args.tokens, args.itl_ms, args.ttft_ms)
    out_dir = tempfile.mkdtemp(prefix="bench-live-out-")
    cmd = [sys.executable, "-m", "sse_perf_tool", "--base-url", f"http://127.0.0.1:{port}/v1", "--api", "openai-chat",
           "--threads", str(args.threads), "--duration", str(args.duration), "--quiet", "--no-history",
           "--output-dir", out_dir]
    if mode != "off":
        cmd += ["--live", "127.0.0.1:0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    stop = threading.Event()
    counts = {"events": 0, "scraped_bytes": 0}
    watchers = []
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", line)
        if found and mode == "watched":
            for i in range(args.watchers):
                thread = threading.Thread(target=_watch, args=(int(found[1]), found[2], stop, counts, i == 0),
                                          daemon=True)
                thread.start()
                watchers.append(thread)
        if line.startswith("run folder"):
            break
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    return {"mode": mode, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024,
            "events": counts["events"], "scraped_bytes": counts["scraped_bytes"], "exit": proc.returncode}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--watchers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--itl-ms", type=float, default=10.0)
    ap.add_argument("--ttft-ms", type=float, default=100.0)
    args = ap.parse_args()
    modes = ("off", "live", "watched")
    runs: dict = {mode: [] for mode in modes}
    print(f"{args.threads} threads for {args.duration:g} s, {args.tokens} tokens at {args.itl_ms:g} ms after "
          f"{args.ttft_ms:g} ms; watched = {args.watchers} readers of /events and a /metrics scrape a second")
    for repeat in range(args.repeats):
        for mode in modes[repeat % 3:] + modes[:repeat % 3]:
            row = run_once(args, mode)
            runs[mode].append(row)
            print(f"  #{repeat + 1} {mode:8s} CPU {row['cpu_s']:6.2f} s  peak {row['peak_mib']:6.1f} MiB  "
                  f"events read {row['events']}  exit {row['exit']}")
    base = statistics.median(r["cpu_s"] for r in runs["off"])
    for mode in modes:
        cpu = statistics.median(r["cpu_s"] for r in runs[mode])
        print(f"median {mode:8s} CPU {cpu:6.2f} s ({100 * (cpu - base) / base:+.1f} % against off), "
              f"{1000 * (cpu - base) / args.duration:+.1f} ms of CPU per second of the run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
