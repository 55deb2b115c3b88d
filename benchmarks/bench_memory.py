"""Memory: peak RSS of whole `sse-perf` runs of 10k and 100k requests against a fast mock server
(in its own process). A flat line means the aggregator does not keep per-request state.

usage: python benchmarks/bench_memory.py [--counts 10000,100000] [--threads 16]
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
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_mock_process.py")), "0", "0", str(args.tokens),
         str(tmp / "server.json")], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    try:
        for count in (int(c) for c in args.counts.split(",")):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "sse_perf_tool", "--host", "127.0.0.1", "--port", str(port),
                 "--api", "openai-chat", "--threads", str(args.threads), "--requests", str(count), "--quiet",
                 "--output-dir", str(tmp / f"runs-{count}")], stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            print(f"{count:>8} requests: peak RSS {usage.ru_maxrss / 1024:.1f} MiB, {wall:.1f} s "
                  f"({count / wall:.0f} req/s), exit {os.waitstatus_to_exitcode(status)}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
