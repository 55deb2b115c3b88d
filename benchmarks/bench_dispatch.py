"""Dispatch: how long a closed-loop user waits between two requests, and what a request costs,
with the streams read in this process, in `--processes` workers, or in Ray actors (`--ray local`).

For each mode and repeat (the order rotates), a fresh server starts (benchmarks/_stream_server.py,
TOKENS tokens at ITL ms after TTFT ms: 335 ms a request by default) and a client process runs
sse-perf's Runner closed loop with STREAMS threads for DURATION seconds:

  threads     SSETesters in the client's process
  processes   the WorkerPool of `--processes WORKERS`
  ray         the WorkerPool over the Ray backend, `--ray local --ray-workers WORKERS` (pip install 'sse-perf[ray]')

Per run: requests, the gap between one user's requests (the next request's send instant minus the
end of the one before, on the driver's clock, per thread) at p50 and p99, and the CPU seconds per
request of the client's whole process tree (the driver, its workers, and for Ray the daemons it
started) minus the time it took to start.

usage: python benchmarks/bench_dispatch.py [--modes threads,processes,ray] [--streams 16] [--workers 2]
           [--repeats 2] [--duration 8] [--tokens 64] [--itl-ms 5] [--ttft-ms 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_capacity import Server, _percentile, _proc_cpu_s, _tree, closed_loop  # noqa: E402

MODES = ("threads", "processes", "ray")
API = "openai-chat"


def child(mode: str, port: int, streams: int, workers: int, duration_s: float) -> dict:
    from sse_perf_tool.flavors import get_flavor
    from sse_perf_tool.tester import SSETester, TesterSettings
    from sse_perf_tool.tokens import TokenCounter

    flavor = get_flavor(API)
    settings = TesterSettings(url=f"http://127.0.0.1:{port}/v1{flavor.path}", timeout_s=30)
    pool = None
    if mode == "threads":
        counter = TokenCounter()
        counter.preload()

        def make_tester(index):
            return SSETester(flavor, settings, counter)
    else:
        from sse_perf_tool.worker_pool import WorkerPool

        backend = workers
        if mode == "ray":
            from sse_perf_tool.backends.ray_backend import RayBackend

            backend = RayBackend("local", workers).connect()
        pool = WorkerPool(backend, API, settings, "cl100k_base", workers=workers).start()
        make_tester = pool.tester
    records, runner = closed_loop(make_tester, streams, duration_s)
    cpu0 = sum(_proc_cpu_s(pid) for pid in _tree(os.getpid()))
    runner.run()
    cpu = sum(_proc_cpu_s(pid) for pid in _tree(os.getpid())) - cpu0
    if pool is not None:
        pool.close()
    gaps = []
    by_thread: dict = {}
    for record in sorted(records, key=lambda r: r.sent_ns):
        by_thread.setdefault(record.thread_id, []).append(record)
    for mine in by_thread.values():
        gaps += [(b.sent_ns - a.ended_ns) / 1e6 for a, b in zip(mine, mine[1:]) if a.ended_ns is not None]
    return {"requests": len(records), "ok": sum(r.ok for r in records), "gaps_ms": gaps, "cpu_s": cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--itl-ms", type=float, default=5.0)
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--server-workers", type=int, default=1)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.port, args.streams, args.workers, args.duration)))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    print(f"{args.streams} closed-loop streams, {args.tokens} tokens at {args.itl_ms:g} ms after {args.ttft_ms:g} ms, "
          f"{args.workers} workers, {args.duration:g} s per run; {os.cpu_count()} CPUs")
    print(f"{'mode':<14} {'requests':>8} {'ok':>6} {'gap p50 ms':>10} {'gap p99 ms':>10} {'CPU ms/request':>14}")
    results: dict = {m: [] for m in modes}
    for repeat in range(args.repeats):
        for mode in modes[repeat % len(modes):] + modes[:repeat % len(modes)]:
            server = Server(args)
            try:
                out = subprocess.run([sys.executable, __file__, "--child", mode, "--port", str(server.port),
                                      "--streams", str(args.streams), "--workers", str(args.workers),
                                      "--duration", str(args.duration)], capture_output=True, text=True,
                                     timeout=args.duration + 180)
            finally:
                server.stop()
            if out.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{out.stderr[-2000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["p50"], row["p99"] = _percentile(row["gaps_ms"], 0.5), _percentile(row["gaps_ms"], 0.99)
            row["cpu_ms"] = 1000 * row["cpu_s"] / max(1, row["requests"])
            results[mode].append(row)
            print(f"{mode + ' #' + str(repeat + 1):<14} {row['requests']:>8} {row['ok']:>6} {row['p50']:>10.2f} "
                  f"{row['p99']:>10.2f} {row['cpu_ms']:>14.2f}", flush=True)
            time.sleep(1)
    for mode in modes:
        rows = results[mode]
        print(f"{mode + ' median':<14} {statistics.median(r['requests'] for r in rows):>8.0f} "
              f"{statistics.median(r['ok'] for r in rows):>6.0f} {statistics.median(r['p50'] for r in rows):>10.2f} "
              f"{statistics.median(r['p99'] for r in rows):>10.2f} {statistics.median(r['cpu_ms'] for r in rows):>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
