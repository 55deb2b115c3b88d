"""Capacity: can sse-perf keep up with a fast server, and how much does it add to TTFT?

The mock server runs in its own process streaming TOKENS tokens at ITL ms intervals; sse-perf's
runner and testers run here with THREADS threads for DURATION seconds. Both processes read the
same monotonic clock (CLOCK_MONOTONIC), so the client's first-token instant minus the server's
first-token send instant is sse-perf's TTFT overhead for that request.

usage: python benchmarks/bench_capacity.py [--threads 64] [--tokens 200] [--itl-ms 2] [--duration 15]
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.runner import RunPlan, Runner
from sse_perf_tool.stats import distribution
from sse_perf_tool.tester import SSETester, TesterSettings
from sse_perf_tool.tokens import TokenCounter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--itl-ms", type=float, default=2.0)
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--api", default="openai-chat")
    ap.add_argument("--switch-interval-ms", type=float, help="sys.setswitchinterval for this process")
    args = ap.parse_args()
    if args.switch_interval_ms:
        sys.setswitchinterval(args.switch_interval_ms / 1000)

    dump = Path(tempfile.mkdtemp()) / "server.json"
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_mock_process.py")), str(args.ttft_ms), str(args.itl_ms),
         str(args.tokens), str(dump)], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    flavor = get_flavor(args.api)
    settings = TesterSettings(url=f"http://127.0.0.1:{port}/v1{flavor.path}", timeout_s=30, request_id_prefix="b-")
    counter = TokenCounter()
    records = []
    lock = threading.Lock()

    def sink(rec):
        with lock:
            records.append(rec)

    runner = Runner(RunPlan(threads=args.threads, duration_s=args.duration, grace_s=30),
                    make_tester=lambda i: SSETester(flavor, settings, counter),
                    next_query=lambda: Query("hello"), next_key=lambda: None, sink=sink)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    data = json.loads(dump.read_text())

    sent = data["stats"]["events_sent"]
    received = sum(r.chunks for r in records)
    overhead = []
    for r in records:
        sent_at = data["first_token_sent_at"].get(f"b-{r.request_id}")
        if r.ok and sent_at is not None and r.first_token_ns is not None:
            overhead.append(r.first_token_ns / 1e6 - sent_at * 1e3)
    dist = distribution(overhead)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    ok = sum(r.ok for r in records)
    print(f"threads={args.threads} tokens={args.tokens} itl={args.itl_ms}ms duration={args.duration}s api={args.api}")
    print(f"requests: {len(records)} ok={ok}")
    print(f"events sent by server: {sent}  received: {received}  ratio: {100.0 * received / max(1, sent):.2f}%")
    print(f"events/s received: {received / wall:.0f}  (wall {wall:.1f} s)")
    print(f"TTFT overhead ms (client first token - server send): p50={dist['p50']:.2f} p99={dist['p99']:.2f} "
          f"max={dist['max']:.2f} n={dist['count']}")
    print(f"client CPU: {cpu_s:.1f} s = {1000 * cpu_s / max(1, received):.3f} CPU-s per 1000 events")


if __name__ == "__main__":
    main()
