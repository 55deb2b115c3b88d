"""`sse-perf compare`: options -> loaded runs -> terminal table / JSON / HTML, and the exit code
(0, 2 bad usage or unknown run, 99 a regression beyond --fail-on-regression).

The command-line layer of compare.py and compare_report.py; the cli package dispatches `compare` here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from ..config import ConfigError
from ..exit_codes import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from .common import Parser
from .history import resolve_run_id

COMPARE_EXAMPLES = """\
examples:
  sse-perf compare 12 13 14
      runs #12, #13 and #14 of report/history.db side by side, changes against #12
  sse-perf compare 12 report/20261121-101500-qwen14b --html compare.html
      a history run and a run folder, with an HTML report (time series, distributions, sweeps)
  sse-perf compare --baseline 12 15 --fail-on-regression 10%
      CI gate: exit 99 when any main metric of #15 is more than 10% worse than #12

A run folder whose run did not finish (killed: records.jsonl, no summary.json) has its summary and
time series rebuilt from its records first (written into the folder, marked incomplete).

exit codes: 0 compared (no regression beyond the threshold), 2 bad usage, unknown run id or
not a run folder, 99 a metric regressed beyond --fail-on-regression.
"""


def _threshold(text: str) -> float:
    from ..compare import parse_threshold

    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_compare_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sse-perf compare",
                description="Compare runs (history ids from `sse-perf history`, or run folders): the main figures\n"
                "side by side with the change against the first run (the baseline), better or worse by each\n"
                "metric's direction; optionally an HTML comparison report and a regression gate.",
                epilog=COMPARE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", metavar="ID|RUN_DIR", help="runs to compare; the first is the baseline")
    p.add_argument("--baseline", metavar="ID|RUN_DIR", help="the run the others are measured against")
    p.add_argument("--fail-on-regression", type=_threshold, metavar="PCT",
                   help="exit 99 when any main metric of a run is worse than the baseline by more than PCT "
                   "percent (10%% or 10)")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML comparison report here")
    p.add_argument("--json", action="store_true", help="machine-readable comparison on standard output")
    p.add_argument("--history", metavar="PATH", help="history database (default: OUTPUT_DIR/history.db)")
    p.add_argument("--output-dir", default="report", help="where history.db lives (default: ./report)")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the table and HTML report")
    return p


def _fail(message: str) -> int:
    print(f"sse-perf compare: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def compare_main(argv: Sequence[str]) -> int:
    """Entry point of `sse-perf compare ...` (argv after the word `compare`); returns the exit code."""
    try:
        args = build_compare_parser().parse_intermixed_args(list(argv))  # `compare 1 --json 2` too
    except SystemExit as exc:  # --help, or argparse's usage error (one line, exit 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    targets = ([args.baseline] if args.baseline else []) + list(args.targets)
    if len(targets) < 2:
        return _fail("compare needs at least two runs: ids from `sse-perf history` or run folders"
                     + (" (--baseline ID plus one or more runs)" if args.baseline else ""))

    from ..compare import compare_runs, load_runs, regression_lines, table_lines
    from ..history import History, HistoryError, default_history_path

    path = args.history or default_history_path(args.output_dir)
    opened: list = []

    def open_history():
        if opened:
            return opened[0]
        if not Path(path).is_file():
            raise ConfigError(f"no history database at {path} to look run ids up in (pass --history PATH, "
                              "or give run folders)")
        try:
            opened.append(History(path))
        except HistoryError as exc:
            raise ConfigError(str(exc)) from None
        return opened[0]

    try:
        _rebuild_folders(targets, args.history)
        runs = load_runs(targets, open_history, resolve_run_id)
        comparison = compare_runs(runs, args.fail_on_regression)
        if args.json:
            print(json.dumps(comparison, ensure_ascii=False, indent=1))
        else:
            colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
            for line in table_lines(comparison, args.lang, colour=colour):
                print(line)
            for line in regression_lines(comparison, args.lang):
                print(line)
        if args.html:
            written = _write_html(args.html, comparison, runs, args.lang)
            print(f"comparison report: {written}", file=sys.stderr if args.json else sys.stdout)
    except (ConfigError, HistoryError) as exc:
        return _fail(str(exc))
    finally:
        for db in opened:
            db.close()
    if args.json and comparison["regressions"]:
        print(f"sse-perf compare: {len(comparison['regressions'])} regression(s) beyond "
              f"{comparison['threshold_pct']:g}%", file=sys.stderr)
    return EXIT_REGRESSION if comparison["regressions"] else EXIT_OK


def _rebuild_folders(targets: list, history_path) -> None:
    """Run folders whose run did not finish (records.jsonl, no summary.json): their summary and time
    series rebuilt from the records and written into the folder (rebuild.py), one line each on
    stderr (standard output stays the table or the JSON)."""
    from ..compare import is_folder_target
    from ..rebuild import RebuildError, needs_rebuild, rebuild_folder

    for text in targets:
        folder = Path(text)
        if not is_folder_target(text) or not folder.is_dir() or not needs_rebuild(folder):
            continue
        try:
            rebuilt = rebuild_folder(folder, history_path=history_path)
        except (RebuildError, OSError) as exc:
            raise ConfigError(str(exc)) from None
        print(f"sse-perf compare: {text}: {rebuilt.line()}", file=sys.stderr)


def _write_html(target: str, comparison: dict, runs: list, lang: str) -> Path:
    from ..compare_report import render_compare

    html = render_compare(comparison, runs, lang=lang)
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    return path
