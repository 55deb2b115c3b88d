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
        description="Render report.html again from a run folder's records.jsonl, timeseries.csv and summary.json.\n"
        "A run that did not finish (killed, crashed) has only records.jsonl: its summary and time series are\n"
        "rebuilt from the records first, written into the folder, and the report says it is incomplete.",
        epilog="example:\n  sse-perf report report/20261121-101500 -o /tmp/run.html --lang zh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", metavar="PATH", help="where to write the report (default: RUN_DIR/report.html)")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    p.add_argument("--history", metavar="PATH", help="the history database that recorded the run, for what the "
                   "records of a run that did not finish do not tell (default: history.db beside RUN_DIR)")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"sse-perf report: error: not a folder: {run_dir}", file=sys.stderr)
        return EXIT_USAGE
    if not (run_dir / "records.jsonl").is_file():
        missing = [n for n in ("summary.json", "timeseries.csv", "records.jsonl") if not (run_dir / n).is_file()]
        print(f"sse-perf report: error: {run_dir} is not a run folder (missing {', '.join(missing)})", file=sys.stderr)
        return EXIT_USAGE
    from ..rebuild import RebuildError, needs_rebuild, rebuild_folder
    from ..report import write_report

    target = Path(args.output) if args.output else None
    try:
        rebuilt = rebuild_folder(run_dir, history_path=args.history) if needs_rebuild(run_dir) else None
        if rebuilt is not None:
            print(f"sse-perf report: {rebuilt.line()}", file=sys.stderr)
        if rebuilt is not None and not all(n in rebuilt.written for n in rebuilt.rebuilt):
            path = _write_from_memory(rebuilt, target or run_dir / "report.html", args.lang)
        else:
            path = write_report(run_dir, target, lang=args.lang)
    except (OSError, ValueError, RebuildError) as exc:
        print(f"sse-perf report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {path}")
    return EXIT_OK


def _write_from_memory(rebuilt, target: Path, lang: str) -> Path:
    """The report of a summary rebuilt in memory (the run still running, or a folder that cannot be
    written): the records streamed from the folder as write_report does."""
    from ..report import render_report
    from ..report_records import RecordStream
    from ..storage import write_atomic

    html = render_report(rebuilt.summary, rebuilt.timeseries, RecordStream(rebuilt.run_dir / "records.jsonl"),
                         lang=lang)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(target, html)
