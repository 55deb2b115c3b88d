"""Memory: peak RSS of whole `sse-perf` runs (live statistics, records, history, the end-of-run
summary and the HTML report) of 10k, 100k and 1M requests against a fast mock server in its own
process. A flat line means nothing keeps per-request state: the target is less than 20 MB more
at 1M than at 100k. 1M requests take about 20 minutes on 2 cores.

usage: python benchmarks/bench_memory.py [--counts 10000,100000,1000000] [--threads 16]
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10000,100000,1000000")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_mock_process.py")), "0", "0", str(args.tokens),
         str(tmp / "server.json")], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    peaks = {}
    try:
        for count in (int(c) for c in args.counts.split(",")):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "sse_perf_tool", "--host", "127.0.0.1", "--port", str(port),
                 "--api", "openai-chat", "--threads", str(args.threads), "--requests", str(count), "--quiet",
                 "--output-dir", str(tmp / f"runs-{count}")], stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            peaks[count] = usage.ru_maxrss / 1024
            print(f"{count:>8} requests: peak RSS {peaks[count]:.1f} MiB, {wall:.1f} s "
                  f"({count / wall:.0f} req/s), exit {os.waitstatus_to_exitcode(status)}", flush=True)
        if 100_000 in peaks and 1_000_000 in peaks:
            growth = peaks[1_000_000] - peaks[100_000]
            print(f"100k -> 1M requests: {growth:+.1f} MiB (target: within 20 MB)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
