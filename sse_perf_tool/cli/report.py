"""`sse-perf report RUN_DIR`: render report.html again from a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..exit_codes import EXIT_OK, EXIT_USAGE
from .common import Parser


def report_main(argv: Sequence[str]) -> int:
    p = Parser(
        prog="sse-perf report",
        description="Render report.html again from a run folder's records.jsonl, timeseries.csv and summary.json.",
        epilog="example:\n  sse-perf report report/20261121-101500 -o /tmp/run.html --lang zh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", metavar="PATH", help="where to write the report (default: RUN_DIR/report.html)")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    missing = [n for n in ("summary.json", "timeseries.csv", "records.jsonl") if not (run_dir / n).is_file()]
    if not run_dir.is_dir():
        print(f"sse-perf report: error: not a folder: {run_dir}", file=sys.stderr)
        return EXIT_USAGE
    if missing:
        print(f"sse-perf report: error: {run_dir} is not a run folder (missing {', '.join(missing)})", file=sys.stderr)
        return EXIT_USAGE
    from ..report import write_report

    try:
        path = write_report(run_dir, Path(args.output) if args.output else None, lang=args.lang)
    except (OSError, ValueError) as exc:
        print(f"sse-perf report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {path}")
    return EXIT_OK
