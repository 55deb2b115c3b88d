"""`sse-perf history`: list, show, import and export the runs of the history database."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..config import ConfigError
from ..exit_codes import EXIT_OK, EXIT_USAGE
from .common import Parser, positive_int


HISTORY_EXAMPLES = """\
examples:
  sse-perf history                          the runs recorded in report/history.db, newest first
  sse-perf history --model qwen --since 7d --limit 20
  sse-perf history --wide                   every column (flavour, duration, each latency p95)
  sse-perf history --json                   {"runs": [{"id", "started_at", "model_name", ...}]}
  sse-perf history show 12                  one run's summary
  sse-perf history import /data/20261120-101500-qwen7b
                                            add a run folder made elsewhere (a killed run's
                                            summary is rebuilt from its records.jsonl first)
  sse-perf history export 12 --format csv -o run12.csv
"""


def build_history_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sse-perf history", description="Every run is recorded in a SQLite database "
                "(default report/history.db). List them, show one, import a run folder, export one.",
                epilog=HISTORY_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=("list", "show", "import", "export"), default="list",
                   help="list (default), show ID, import RUN_DIR..., export ID")
    p.add_argument("targets", nargs="*", metavar="ID|RUN_DIR")
    p.add_argument("--history", metavar="PATH", help="the database (default: OUTPUT_DIR/history.db)")
    p.add_argument("--output-dir", default="report", help="where run folders and history.db live (default: ./report)")
    p.add_argument("--model", help="only runs whose model label contains this")
    p.add_argument("--since", metavar="WHEN", help="only runs started since: 2026-11-01, 2026-11-01T09:00, 7d, 12h, 30m")
    p.add_argument("--limit", type=positive_int, metavar="N", help="at most N runs (newest first)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--wide", action="store_true",
                   help="the runs table with every column (by default it fits 80 columns and says what it left out)")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="export format (default: csv)")
    p.add_argument("-o", "--output", metavar="PATH", help="export to this file (default: standard output)")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    return p


def _history_fail(message: str) -> int:
    print(f"sse-perf history: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def resolve_run_id(db, text: str) -> int:
    """A run id that exists in `db`; ConfigError naming the closest known ids otherwise."""
    known = db.ids()
    try:
        run_id = int(text)
    except ValueError:
        run_id = None
    if run_id is not None and run_id in known:
        return run_id
    if not known:
        raise ConfigError(f"unknown run id {text!r}: the history has no runs yet")
    target = run_id if run_id is not None else max(known)
    closest = sorted(known, key=lambda k: (abs(k - target), k))[:3]
    raise ConfigError(f"unknown run id {text!r} (closest known: {', '.join(map(str, sorted(closest)))})")


def history_main(argv: Sequence[str]) -> int:
    args = build_history_parser().parse_args(argv)
    from ..history import History, HistoryError, default_history_path, since_to_timestamp
    from .. import history_view as view

    path = args.history or default_history_path(args.output_dir)
    if args.action != "import" and not Path(path).is_file():
        if args.action == "list":
            print(json.dumps({"runs": []}) if args.json else f"no runs recorded yet ({path} does not exist)")
            return EXIT_OK
        return _history_fail(f"no history database at {path}")
    since = None
    if args.since:
        try:
            since = since_to_timestamp(args.since)
        except ValueError:
            return _history_fail(f"--since must be a date (2026-11-01), a date and time, or 7d / 12h / 30m (got {args.since!r})")
    try:
        db = History(path)
    except HistoryError as exc:
        return _history_fail(str(exc))
    try:
        return _history_action(args, db, view, since)
    except ConfigError as exc:
        return _history_fail(str(exc))
    except HistoryError as exc:
        return _history_fail(str(exc))
    finally:
        db.close()


def _import(args, db) -> int:
    """Run folders into the database. A folder whose run did not finish (records.jsonl, no
    summary.json) has its summary and time series rebuilt first (rebuild.py, written into the
    folder) and imports as `killed`; the run's own row, when this database has it, is completed."""
    from ..rebuild import RebuildError, find_history_row, needs_rebuild, rebuild_folder

    if not args.targets:
        raise ConfigError("history import needs one or more run folders")
    for target in args.targets:
        folder = Path(target)
        if not folder.is_dir() or not (folder / "records.jsonl").is_file():
            raise ConfigError(f"{target} is not a run folder (needs records.jsonl, and summary.json unless "
                              "the run did not finish)")
    imports = []
    for target in args.targets:
        folder = Path(target)
        summary = rows = None
        if needs_rebuild(folder):
            row = db.find_run(folder) or find_history_row(folder)
            try:
                rebuilt = rebuild_folder(folder, row)
            except (RebuildError, OSError) as exc:
                raise ConfigError(str(exc)) from None
            if rebuilt.still_running:
                raise ConfigError(f"{target}: the run is still running (pid {row.get('pid')} on {row.get('host')}); "
                                  "import it once it has ended")
            print(f"sse-perf history: {target}: {rebuilt.line()}", file=sys.stderr)
            summary, rows = rebuilt.summary, rebuilt.timeseries
        imports.append((target, folder, summary, rows))
    for target, folder, summary, rows in imports:
        already = db.find_run(folder)
        if already is not None and already["summary"] is not None:  # imported (or recorded) before
            print(f"{target} is already in the history as run #{already['id']}: not imported again")
            continue
        known = set(db.ids())
        run_id = db.import_run_dir(folder, summary, rows)
        print(f"imported {target} as run #{run_id}" + (" (the killed run's own row, its summary and requests "
                                                        "filled in; its status stays killed)"
                                                        if run_id in known else ""))
    return EXIT_OK


def _history_action(args, db, view, since) -> int:
    if args.action == "list":
        runs = db.list_runs(model=args.model, since=since, limit=args.limit)
        if args.json:
            print(json.dumps({"runs": [view.run_json(r) for r in runs]}, ensure_ascii=False, indent=1))
        elif not runs:
            print("no runs match" if (args.model or since) else "no runs recorded yet")
        else:
            for line in view.runs_table(runs, wide=args.wide):
                print(line)
        return EXIT_OK
    if args.action == "import":
        return _import(args, db)
    if len(args.targets) != 1:
        raise ConfigError(f"history {args.action} needs exactly one run id")
    run_id = resolve_run_id(db, args.targets[0])
    run = db.get_run(run_id)
    if args.action == "show":
        if args.json:
            print(json.dumps(dict(view.run_json(run), summary=run.get("summary")), ensure_ascii=False, indent=1))
        else:
            for line in view.show_lines(run, db.count_records(run_id), args.lang):
                print(line)
        return EXIT_OK
    text = (view.export_csv(db.records(run_id)) if args.format == "csv"
            else view.export_json(run, db.records(run_id)))
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"exported run #{run_id} ({args.format}) to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK
