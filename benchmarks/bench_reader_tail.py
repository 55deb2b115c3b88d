"""Where one process's TTFT error tail comes from: late handovers or a late reader.

One closed-loop run of sse-perf's Runner and SSETesters in this process (the shared stream
reader) against benchmarks/_stream_server.py, as bench_capacity.py's `sse-perf` client runs it.
For every request it notes when its tester handed the body to the reader, and compares that
and the first-token stamp with the server's own send instant of the first token (both
CLOCK_MONOTONIC). A handover after that instant means the tester's thread (which parses the head)
got the interpreter lock back after the token came. Before the reader watched each socket from
the moment its request went out, such a token waited in the socket and was stamped at the
handover (at 256 streams, 55 of the slowest 69 first tokens); now the reader has read and stamped
it already, so a late handover costs the stamp nothing and what is left is the reader's own delay.
It also prints the reader thread's share of the process's CPU time.

usage: python benchmarks/bench_reader_tail.py [--streams 256] [--duration 6] [--itl-ms 2]
           [--ttft-ms 20] [--tokens 200] [--server-workers 2]

Run it at --itl-ms 2 and 2.5 to see what 20 % fewer events per second do to the tail.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_capacity  # noqa: E402  (the server and the closed loop, shared with that benchmark)


def _percentile_ms(values: list, q: float):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 1)


def _cpu_s(path: str) -> float:
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--itl-ms", type=float, default=2.0)
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--server-workers", type=int, default=2)
    args = ap.parse_args()

    from sse_perf_tool import stream_reader
    from sse_perf_tool.flavors import get_flavor
    from sse_perf_tool.tester import SSETester, TesterSettings
    from sse_perf_tool.tokens import TokenCounter

    handed_over: dict = {}
    read = stream_reader.SharedReader.read

    def noting_read(self, sock, stream, body, early, end_event):
        handed_over[id(stream.record)] = time.perf_counter_ns()
        return read(self, sock, stream, body, early, end_event)

    stream_reader.SharedReader.read = noting_read
    server = bench_capacity.Server(args)
    prefix = "tail-"
    flavor = get_flavor(bench_capacity.API)
    settings = TesterSettings(url=f"http://127.0.0.1:{server.port}/v1{flavor.path}", timeout_s=30,
                              request_id_prefix=prefix)
    counter = TokenCounter()
    counter.preload()
    records, runner = bench_capacity.closed_loop(lambda index: SSETester(flavor, settings, counter),
                                                 args.streams, args.duration)
    cpu0 = _cpu_s("/proc/self/stat")
    try:
        runner.run()
    finally:
        data = server.stop()
    process_cpu = _cpu_s("/proc/self/stat") - cpu0
    reader = stream_reader.process_reader()
    reader_cpu = _cpu_s(f"/proc/self/task/{reader._thread.native_id}/stat")  # started by this run

    sent_at = data["first_token_sent_at"]
    in_time, late, lateness = [], [], []
    for record in records:
        truth = sent_at.get(f"{prefix}{record.request_id:012x}")
        at = handed_over.get(id(record))
        if not (record.ok and record.first_token_ns and truth is not None and at is not None):
            continue
        error = record.first_token_ns - truth * 1e9
        lateness.append(at - truth * 1e9)
        (late if at > truth * 1e9 else in_time).append(error)
    every = in_time + late
    events = sum(r.chunks for r in records)
    tagged = sorted([(e, False) for e in in_time] + [(e, True) for e in late])
    tail = tagged[int(0.98 * len(tagged)):]
    late_in_tail = sum(1 for _, was_late in tail if was_late)
    print(f"{args.streams} streams, {args.tokens} tokens at {args.itl_ms:g} ms after {args.ttft_ms:g} ms: "
          f"{len(every)} requests, {events / args.duration:,.0f} events/s")
    print(f"TTFT error ms        p50 {_percentile_ms(every, 0.5)}  p99 {_percentile_ms(every, 0.99)}")
    print(f"  handed over in time: {len(in_time):5d} requests, p50 {_percentile_ms(in_time, 0.5)}  "
          f"p99 {_percentile_ms(in_time, 0.99)}")
    print(f"  handed over late:    {len(late):5d} requests, p50 {_percentile_ms(late, 0.5)}  "
          f"p99 {_percentile_ms(late, 0.99)}")
    print(f"  of the slowest 2 %, handed over late: {late_in_tail} of {len(tail)}")
    print(f"handover minus first-token send, ms: p50 {_percentile_ms(lateness, 0.5)}  "
          f"p90 {_percentile_ms(lateness, 0.9)}  p99 {_percentile_ms(lateness, 0.99)}")
    print(f"CPU: process {process_cpu:.2f} s ({1000 * process_cpu / max(1, events):.4f} s per 1,000 events), "
          f"the reader thread {reader_cpu:.2f} s ({100 * reader_cpu / max(process_cpu, 1e-9):.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
