"""Capacity: how many events per second sse-perf reads from a fast server, how much it adds to
TTFT, and what it costs, side by side with an asyncio client.

For each number of concurrent streams (--streams), each repeat (--repeats), and each client in
turn (the order rotates from repeat to repeat), a fresh server starts (benchmarks/_stream_server.py:
asyncio, --server-workers processes sharing the port, one decode-step loop each writing every
stream's due event every ITL, every event pre-encoded and written with one write) streaming TOKENS
tokens at ITL ms after TTFT ms, and the client runs closed loop for
DURATION seconds, one stream per thread or coroutine, in a process of its own:

  sse-perf             sse-perf's Runner and SSETesters, one process (the shared stream reader)
  sse-perf-threads     the same with SSE_PERF_READER=thread: each tester's thread reads its own body
  sse-perf-2p          the WorkerPool of `sse-perf --processes 2`
  asyncio              a minimal aiohttp client of the kind vLLM's `bench serve` uses: one coroutine
                       per stream, lines read with `async for`, JSON per line (pip install -e '.[bench]')

Per run: the events/s the server sent and the client received over the whole run (start-up and
end included), the steady rate (events read from 1 s after the client began to 0.5 s before it
stopped sending, when every stream of any client is running), the share received, the TTFT error
(the client's first-token instant minus the server's own send instant of that token, both
CLOCK_MONOTONIC) at p50 and p99, the client's CPU seconds per 1,000 events (its processes), its
peak memory (VmHWM summed over its process tree), the server's CPU (% of one core) and its own
lag (how late, on average, it wrote each event after the instant its schedule gave it: near half
an ITL when it keeps up, growing when the server is the limit). Then the median of the repeats per
client.

usage: python benchmarks/bench_capacity.py [--streams 16,64,128,256,512] [--clients sse-perf,asyncio]
           [--repeats 3] [--tokens 200] [--itl-ms 2] [--ttft-ms 20] [--duration 8] [--server-workers 2]
           [--json PATH]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

API = "openai-chat"
CLIENTS = ("sse-perf", "sse-perf-threads", "sse-perf-2p", "asyncio")
HERE = Path(__file__).resolve().parent


# -- the server ------------------------------------------------------------------------------------


class Server:
    def __init__(self, args):
        self.prefix = str(Path(tempfile.mkdtemp(prefix="bench-capacity-")) / "server")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_stream_server.py"), str(args.ttft_ms),
                                      str(args.itl_ms), str(args.tokens), self.prefix, str(args.server_workers)],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def cpu_s(self) -> float:
        return sum(_proc_cpu_s(pid) for pid in _tree(self.proc.pid))

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        merged = {"events_sent": 0, "requests": 0, "lag_s": 0.0, "first_token_sent_at": {}}
        for path in glob.glob(self.prefix + ".*.json"):
            part = json.loads(Path(path).read_text())
            for key in ("events_sent", "requests", "lag_s"):
                merged[key] += part[key]
            merged["first_token_sent_at"].update(part["first_token_sent_at"])
        return merged


def _tree(pid: int) -> list:
    """pid and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return out


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mib(pids) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# -- the clients (each in a process of its own: --child) -------------------------------------------


def closed_loop(make_tester, streams: int, duration_s: float):
    """(the list the records go to, a Runner of `streams` closed-loop threads for `duration_s`)."""
    import threading

    from sse_perf_tool.flavors.base import Query
    from sse_perf_tool.runner import RunPlan, Runner

    records: list = []
    lock = threading.Lock()

    def sink(record):
        with lock:
            records.append(record)

    return records, Runner(RunPlan(threads=streams, duration_s=duration_s, grace_s=30), make_tester=make_tester,
                           next_query=lambda: Query("hello"), next_key=lambda: None, sink=sink)


def child_sse_perf(port: int, streams: int, processes: int, duration_s: float, prefix: str) -> dict:
    from sse_perf_tool.flavors import get_flavor
    from sse_perf_tool.tester import SSETester, TesterSettings
    from sse_perf_tool.tokens import TokenCounter

    flavor = get_flavor(API)
    settings = TesterSettings(url=f"http://127.0.0.1:{port}/v1{flavor.path}", timeout_s=30, request_id_prefix=prefix)
    pool = None
    if processes > 1:
        from sse_perf_tool.worker_pool import WorkerPool

        pool = WorkerPool(processes, API, settings, "cl100k_base").start()
        make_tester = pool.tester
    else:
        counter = TokenCounter()
        counter.preload()  # as a run does

        def make_tester(index):
            return SSETester(flavor, settings, counter)

    records, runner = closed_loop(make_tester, streams, duration_s)
    pids = _tree(os.getpid())
    cpu0 = sum(_proc_cpu_s(pid) for pid in pids)
    t0 = time.perf_counter()
    start_ns = time.perf_counter_ns()
    runner.run()
    wall = time.perf_counter() - t0
    w0, w1 = steady_window(start_ns, duration_s)
    end = start_ns + int(duration_s * 1e9)
    steady = sum(1 for r in records for t in r.token_times_ns if w0 <= t < w1)
    in_run = sum(1 for r in records for t in r.token_times_ns if t < end)
    pids = _tree(os.getpid())
    cpu = sum(_proc_cpu_s(pid) for pid in pids) - cpu0
    peak = _peak_mib(pids)
    if pool is not None:
        pool.close()
    first = {f"{prefix}{r.request_id:012x}": r.first_token_ns for r in records if r.ok and r.first_token_ns}
    return {"first": first, "events": sum(r.chunks for r in records), "steady_events": steady,
            "in_run_events": in_run, "requests": len(records),
            "ok": sum(r.ok for r in records), "wall_s": wall, "cpu_s": cpu, "peak_mib": peak}


def child_asyncio(port: int, streams: int, duration_s: float, prefix: str) -> dict:
    import asyncio

    import aiohttp

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "bench", "messages": [{"role": "user", "content": "hello"}], "stream": True}
    first: dict = {}
    counts = {"events": 0, "steady_events": 0, "in_run_events": 0, "requests": 0, "ok": 0}
    start_ns = time.perf_counter_ns()
    w0, w1 = steady_window(start_ns, duration_s)
    end = start_ns + int(duration_s * 1e9)
    next_id = iter(range(1, 10**9))

    async def run() -> None:
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
                            if w0 <= now < w1:
                                counts["steady_events"] += 1
                            if now < end:
                                counts["in_run_events"] += 1
                            if not got_first:
                                first[request_id] = now
                                got_first = True

        connector = aiohttp.TCPConnector(limit=streams)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(one_stream(session) for _ in range(streams)))

    cpu0 = _proc_cpu_s(os.getpid())
    t0 = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - t0
    return {"first": first, "events": counts["events"], "steady_events": counts["steady_events"],
            "in_run_events": counts["in_run_events"],
            "requests": counts["requests"], "ok": counts["ok"],
            "wall_s": wall, "cpu_s": _proc_cpu_s(os.getpid()) - cpu0, "peak_mib": _peak_mib([os.getpid()])}


STEADY_FROM_S, STEADY_BEFORE_END_S = 1.0, 0.5


def steady_window(start_ns: int, duration_s: float) -> tuple:
    """The part of a run in which every stream of both kinds of client is running: from 1 s after
    the client began (its threads or coroutines started, its connections made) to 0.5 s before it
    stops sending (the last requests then end one by one). Events read in it, per second, are the
    steady rate; the whole run's rate counts the start-up and the end too."""
    return start_ns + int(STEADY_FROM_S * 1e9), start_ns + int((duration_s - STEADY_BEFORE_END_S) * 1e9)


def run_child(args) -> int:
    client, port, streams = args.child, args.port, args.child_streams
    prefix = f"b{streams}-{client}-"
    if client == "asyncio":
        result = child_asyncio(port, streams, args.duration, prefix)
    else:
        result = child_sse_perf(port, streams, 2 if client == "sse-perf-2p" else 1, args.duration, prefix)
    print(json.dumps(result))
    return 0


# -- one measurement -------------------------------------------------------------------------------


def _percentile(values: list, q: float):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(args, streams: int, client: str) -> dict:
    server = Server(args)
    env = dict(os.environ)
    if client == "sse-perf-threads":
        env["SSE_PERF_READER"] = "thread"
    try:
        cpu0 = server.cpu_s()
        out = subprocess.run([sys.executable, __file__, "--child", client, "--port", str(server.port),
                              "--child-streams", str(streams), "--duration", str(args.duration)],
                             capture_output=True, text=True, env=env, timeout=args.duration + 120)
        server_cpu = server.cpu_s() - cpu0
    finally:
        data = server.stop()
    if out.returncode != 0:
        raise SystemExit(f"{client} at {streams} streams failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    sent_at = data["first_token_sent_at"]
    error_ms = [ns / 1e6 - sent_at[rid] * 1e3 for rid, ns in result["first"].items() if rid in sent_at]
    wall, events, sent = result["wall_s"], result["events"], data["events_sent"]
    return {"client": client, "streams": streams, "requests": result["requests"], "ok": result["ok"],
            "sent_per_s": sent / wall, "received_per_s": events / wall, "in_run_per_s": result["in_run_events"] / args.duration,
            "steady_per_s": result["steady_events"] / (args.duration - STEADY_FROM_S - STEADY_BEFORE_END_S),
            "received_pct": 100.0 * events / max(1, sent), "ttft_error_p50_ms": _percentile(error_ms, 0.50),
            "ttft_error_p99_ms": _percentile(error_ms, 0.99),
            "cpu_s_per_1000_events": 1000 * result["cpu_s"] / max(1, events), "peak_mib": result["peak_mib"],
            "server_cpu_pct": 100.0 * server_cpu / wall, "server_lag_ms": 1000 * data["lag_s"] / max(1, sent)}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


HEADER = (f"{'client':<24} {'streams':>7} {'sent ev/s':>10} {'recv ev/s':>10} {'in-run/s':>10} {'steady/s':>10} {'recv %':>7} "
          f"{'TTFTerr p50':>11} "
          f"{'p99 ms':>8} {'CPU-s/1k':>9} {'peak MiB':>9} {'srv CPU%':>8} {'srv lag':>7}")


def print_row(row: dict, label: str = "") -> None:
    print(f"{(label or row['client']):<24} {row['streams']:>7} {row['sent_per_s']:>10.0f} "
          f"{row['received_per_s']:>10.0f} {row['in_run_per_s']:>10.0f} {row['steady_per_s']:>10.0f} {row['received_pct']:>7.1f} {_fmt(row['ttft_error_p50_ms'], '>11.2f')} "
          f"{_fmt(row['ttft_error_p99_ms'], '>8.2f')} {row['cpu_s_per_1000_events']:>9.3f} "
          f"{row['peak_mib']:>9.1f} {row['server_cpu_pct']:>8.0f} {row['server_lag_ms']:>7.2f}", flush=True)


def median_row(rows: list) -> dict:
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and key not in ("streams", "repeat"):
            values = [r[key] for r in rows if r[key] is not None]
            out[key] = statistics.median(values) if values else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default="16,64,128,256,512", help="concurrent streams, comma-separated")
    ap.add_argument("--clients", default=",".join(CLIENTS), help=f"comma-separated, of {', '.join(CLIENTS)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--itl-ms", type=float, default=2.0)
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    ap.add_argument("--server-workers", type=int, default=2, help="server processes sharing the port")
    ap.add_argument("--json", metavar="PATH", help="also write every row (each repeat) here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-streams", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return run_child(args)
    clients = [c for c in args.clients.split(",") if c]
    if "asyncio" in clients:
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            print("aiohttp is not installed (pip install -e '.[bench]'): the asyncio client is skipped")
            clients.remove("asyncio")
    print(f"server: {args.server_workers} asyncio process(es), {args.tokens} tokens at {args.itl_ms:g} ms after "
          f"{args.ttft_ms:g} ms; {args.duration:g} s per run, {args.repeats} repeats, clients alternating; "
          f"{os.cpu_count()} CPUs")
    print(HEADER)
    rows = []
    for streams in (int(s) for s in args.streams.split(",")):
        runs: dict = {c: [] for c in clients}
        for repeat in range(args.repeats):
            order = clients[repeat % len(clients):] + clients[:repeat % len(clients)]
            for client in order:
                row = measure(args, streams, client)
                row["repeat"] = repeat + 1
                runs[client].append(row)
                rows.append(row)
                print_row(row, f"{client} #{repeat + 1}")
        for client in clients:
            print_row(median_row(runs[client]), f"{client} median")
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
