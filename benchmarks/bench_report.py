"""Report rendering cost for a one-hour run at 20 threads (issue 3: <= 3 s, <= 5 MB).

Generates the run folder (3,600 s, ~50,000 requests with ~100-gap ITL lists, GPU and
server columns) in a temp dir with tests/report_fixtures.py, then renders it in fresh
child processes (as `sse-perf report` would) and prints the seconds write_report() took,
the HTML size and the child's peak RSS (the fixture's own memory is not counted). Usage:

    .venv/bin/python benchmarks/bench_report.py [--seconds 3600] [--requests 50000] [--threads 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from report_fixtures import make_run_dir  # noqa: E402



CHILD = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from sse_perf_tool.report import write_report
imported = time.perf_counter()
out = write_report(Path(sys.argv[1]))
done = time.perf_counter()
cpu = time.process_time()
try:  # VmHWM: this process's own peak (ru_maxrss would inherit the parent's across exec)
    status = Path("/proc/self/status").read_text()
    peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
print(json.dumps({"render_s": done - imported, "import_s": imported - started, "cpu_s": cpu,
                  "out": str(out), "peak_kib": peak}))
"""


def render_in_child(run_dir: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(run_dir)], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="renders to time (the median is printed)")
    parser.add_argument("--keep", type=Path, help="generate the run folder here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        started = time.perf_counter()
        make_run_dir(run_dir, seconds=args.seconds, requests=args.requests, threads=args.threads,
                     ramp_up_s=30, with_gpu=True, with_datasets=True, errors=True)
        generated_s = time.perf_counter() - started
        records_mb = (run_dir / "records.jsonl").stat().st_size / 1e6
        runs = [render_in_child(run_dir) for _ in range(max(1, args.repeat))]
        timings = [r["render_s"] for r in runs]
        size_mb = Path(runs[-1]["out"]).stat().st_size / 1e6
        peak_mib = max(r["peak_kib"] for r in runs) / 1024

        print(f"run folder: {args.seconds} s, {args.requests:,} requests, {args.threads} threads; "
              f"records.jsonl {records_mb:.1f} MB (generated in {generated_s:.1f} s)")
        print(f"write_report: median {statistics.median(timings):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in timings)}; package import "
              f"{statistics.median(r['import_s'] for r in runs):.2f} s more); "
              f"CPU time of the whole child {statistics.median(r['cpu_s'] for r in runs):.2f} s")
        print(f"report.html: {size_mb:.2f} MB")
        print(f"peak RSS of the rendering process: {peak_mib:.0f} MiB")
        ok = statistics.median(timings) <= 3.0 and size_mb <= 5.0
        print("goal (<= 3 s, <= 5 MB):", "met" if ok else "NOT met")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
