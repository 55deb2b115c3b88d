"""Start-up: wall time of `sse-perf --help` (best and median of N runs), and which heavy modules
the CLI imports before doing anything (none of tiktoken, jinja2, paramiko, pynvml should be)."""

import statistics
import subprocess
import sys
import time

RUNS = 10


def main() -> None:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sse_perf_tool", "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    print(f"sse-perf --help: best {min(times):.3f} s, median {statistics.median(times):.3f} s over {RUNS} runs")
    probe = ("import sys; from sse_perf_tool import cli; cli.build_run_parser();"
             "print(sorted(m for m in ('tiktoken','jinja2','paramiko','pynvml','requests') if m in sys.modules))")
    heavy = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    print(f"heavy modules imported by the CLI before a run: {heavy}")


if __name__ == "__main__":
    main()
