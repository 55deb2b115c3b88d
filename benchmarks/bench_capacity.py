"""Capacity: can sse-perf keep up with a fast server, and how much does it add to TTFT?

For each number of concurrent streams (--streams) a fresh mock server runs in its own process,
streaming TOKENS tokens at ITL ms intervals, and each client takes its turn for DURATION seconds
(closed loop, one stream per thread or coroutine):

  sse-perf, P processes  sse-perf's own Runner and SSETesters (--processes 1: threads in this
                         process; 2 or more: the WorkerPool of `sse-perf --processes P`)
  asyncio                a minimal aiohttp client of the kind vLLM's `bench serve` uses: one
                         coroutine per stream, lines read with `async for`, JSON per line
                         (needs aiohttp: pip install -e '.[bench]'; skipped without it)

Printed per run: events/s the server sent and the client received, the share received, the TTFT
overhead (the client's first-token instant minus the server's own first-token send instant: both
read CLOCK_MONOTONIC, so they compare directly), and CPU seconds per 1,000 events (this process,
plus the worker processes for sse-perf with P > 1), with the system (kernel) part of them apart:
a thread per stream wakes once per event, an event loop once per batch of ready sockets. Then, per stream count, sse-perf's events per
CPU-second as a ratio of the asyncio client's.

usage: python benchmarks/bench_capacity.py [--streams 16,64,128,256] [--processes 1,2]
           [--tokens 200] [--itl-ms 2] [--duration 10] [--no-asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.runner import RunPlan, Runner
from sse_perf_tool.stats import distribution
from sse_perf_tool.tester import SSETester, TesterSettings
from sse_perf_tool.tokens import TokenCounter

API = "openai-chat"


@dataclass
class Outcome:
    """One client's run: what it saw per request, and what it cost."""

    client: str
    streams: int
    first_tokens: dict  # request id header -> first-token instant (ns, CLOCK_MONOTONIC)
    events: int
    requests: int
    ok: int
    wall_s: float
    cpu_s: float  # user + system
    sys_s: float  # system (kernel) part: wake-ups, context switches, socket calls


# -- the server ------------------------------------------------------------------------------------


class MockProcess:
    def __init__(self, args):
        self.dump = Path(tempfile.mkdtemp(prefix="bench-capacity-")) / "server.json"
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_mock_process.py")), str(args.ttft_ms), str(args.itl_ms),
             str(args.tokens), str(self.dump)], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        return json.loads(self.dump.read_text())


# -- sse-perf --------------------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> tuple:
    """(utime + stime, stime) of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


def _self_cpu_s() -> tuple:
    """(user + system, system) CPU seconds of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def _cpu_s(pids=()) -> tuple:
    """(user + system, system) CPU seconds of this process and the given ones."""
    total, system = _self_cpu_s()
    for pid in pids:
        more, more_system = _proc_cpu_s(pid)
        total, system = total + more, system + more_system
    return total, system


def run_sse_perf(port: int, streams: int, processes: int, duration_s: float, prefix: str) -> Outcome:
    flavor = get_flavor(API)
    settings = TesterSettings(url=f"http://127.0.0.1:{port}/v1{flavor.path}", timeout_s=30, request_id_prefix=prefix)
    pool = None
    if processes > 1:
        from sse_perf_tool.worker_pool import WorkerPool

        pool = WorkerPool(processes, API, settings, "cl100k_base").start()
        make_tester = pool.tester
    else:
        counter = TokenCounter()
        counter.preload()

        def make_tester(index):
            return SSETester(flavor, settings, counter)

    records = []
    lock = threading.Lock()

    def sink(record):
        with lock:
            records.append(record)

    runner = Runner(RunPlan(threads=streams, duration_s=duration_s, grace_s=30), make_tester=make_tester,
                    next_query=lambda: Query("hello"), next_key=lambda: None, sink=sink)
    workers = [w.process.pid for w in pool.workers] if pool else []
    cpu0, sys0 = _cpu_s(workers)
    t0 = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - t0
    cpu, system = _cpu_s(workers)
    if pool is not None:
        pool.close()
    first = {f"{prefix}{r.request_id:012x}": r.first_token_ns for r in records if r.ok and r.first_token_ns}
    return Outcome(f"sse-perf, {processes} process{'es' if processes > 1 else ''}", streams, first,
                   sum(r.chunks for r in records), len(records), sum(r.ok for r in records), wall, cpu - cpu0,
                   system - sys0)


# -- the asyncio client ----------------------------------------------------------------------------


async def _asyncio_client(port: int, streams: int, duration_s: float, prefix: str) -> tuple:
    import aiohttp

    url = f"http://127.0.0.1:{port}/v1{get_flavor(API).path}"
    body = get_flavor(API).build_body(Query("hello"), RequestSettings())
    first: dict = {}
    counts = {"events": 0, "requests": 0, "ok": 0}
    next_id = iter(range(1, 10**9))
    deadline = time.perf_counter() + duration_s

    async def one_stream(session) -> None:
        while time.perf_counter() < deadline:
            request_id = f"{prefix}{next(next_id)}"
            counts["requests"] += 1
            got_first = False
            async with session.post(url, json=body, headers={"X-Request-Id": request_id}) as response:
                async for line in response.content:
                    now = time.perf_counter_ns()
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        counts["ok"] += 1
                        break
                    chunk = json.loads(data)
                    choices = chunk.get("choices") or []
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        counts["events"] += 1
                        if not got_first:
                            first[request_id] = now
                            got_first = True

    connector = aiohttp.TCPConnector(limit=streams)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one_stream(session) for _ in range(streams)))
    return first, counts


def run_asyncio(port: int, streams: int, duration_s: float, prefix: str) -> Outcome:
    cpu0, sys0 = _cpu_s()
    t0 = time.perf_counter()
    first, counts = asyncio.run(_asyncio_client(port, streams, duration_s, prefix))
    wall = time.perf_counter() - t0
    cpu, system = _cpu_s()
    return Outcome("asyncio (aiohttp)", streams, first, counts["events"], counts["requests"], counts["ok"], wall,
                   cpu - cpu0, system - sys0)


# -- one measurement -------------------------------------------------------------------------------


def measure(args, streams: int, client: str, processes: int = 1) -> dict:
    server = MockProcess(args)
    prefix = f"b{streams}-{client}-{processes}-"
    try:
        if client == "asyncio":
            outcome = run_asyncio(server.port, streams, args.duration, prefix)
        else:
            outcome = run_sse_perf(server.port, streams, processes, args.duration, prefix)
    finally:
        data = server.stop()
    sent_at = data["first_token_sent_at"]
    overhead = [outcome.first_tokens[rid] / 1e6 - sent_at[rid] * 1e3 for rid in outcome.first_tokens if rid in sent_at]
    dist = distribution(overhead)
    sent = data["stats"]["events_sent"]
    return {
        "client": outcome.client, "streams": streams, "requests": outcome.requests, "ok": outcome.ok,
        "sent_per_s": sent / outcome.wall_s, "received_per_s": outcome.events / outcome.wall_s,
        "received_pct": 100.0 * outcome.events / max(1, sent),
        "ttft_overhead_p50_ms": dist["p50"], "ttft_overhead_p99_ms": dist["p99"],
        "cpu_s": outcome.cpu_s, "cpu_s_per_1000_events": 1000 * outcome.cpu_s / max(1, outcome.events),
        "sys_s_per_1000_events": 1000 * outcome.sys_s / max(1, outcome.events),
        "events_per_cpu_s": outcome.events / max(1e-9, outcome.cpu_s),
    }


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_row(row: dict) -> None:
    print(f"{row['client']:<22} {row['streams']:>7} {row['sent_per_s']:>10.0f} {row['received_per_s']:>10.0f} "
          f"{row['received_pct']:>7.1f} {_fmt(row['ttft_overhead_p50_ms'], '>9.2f')} "
          f"{_fmt(row['ttft_overhead_p99_ms'], '>9.2f')} {row['cpu_s_per_1000_events']:>10.3f} "
          f"{row['sys_s_per_1000_events']:>10.3f} "
          f"{row['requests']:>6} {row['ok']:>6}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default="16,64,128,256", help="concurrent streams, comma-separated")
    ap.add_argument("--processes", default="1,2", help="sse-perf worker processes to try, comma-separated")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--itl-ms", type=float, default=2.0)
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--no-asyncio", action="store_true", help="skip the aiohttp client")
    ap.add_argument("--json", metavar="PATH", help="also write every row here")
    args = ap.parse_args()
    try:
        import aiohttp  # noqa: F401
        have_aiohttp = not args.no_asyncio
    except ImportError:
        have_aiohttp = False
        if not args.no_asyncio:
            print("aiohttp is not installed (pip install -e '.[bench]'): the asyncio client is skipped")

    print(f"mock server: {args.tokens} tokens at {args.itl_ms:g} ms, first token after {args.ttft_ms:g} ms; "
          f"{args.duration:g} s per run; {os.cpu_count()} CPUs")
    print(f"{'client':<22} {'streams':>7} {'sent ev/s':>10} {'recv ev/s':>10} {'recv %':>7} "
          f"{'TTFT+p50':>9} {'TTFT+p99':>9} {'CPU-s/1k':>10} {'of it sys':>10} {'reqs':>6} {'ok':>6}")
    rows = []
    for streams in (int(s) for s in args.streams.split(",")):
        per_streams = []
        for processes in (int(p) for p in args.processes.split(",")):
            per_streams.append(measure(args, streams, "sse-perf", processes))
            print_row(per_streams[-1])
        if have_aiohttp:
            baseline = measure(args, streams, "asyncio")
            print_row(baseline)
            for row in per_streams:
                row["events_per_cpu_s_vs_asyncio"] = row["events_per_cpu_s"] / baseline["events_per_cpu_s"]
                print(f"    {row['client']}: events per CPU-second = {row['events_per_cpu_s_vs_asyncio']:.2f} x "
                      f"the asyncio client's ({row['events_per_cpu_s']:.0f} vs {baseline['events_per_cpu_s']:.0f})")
            per_streams.append(baseline)
        rows.extend(per_streams)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
